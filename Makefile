# The README's two commands are `make demo` (the main job) and `make test`.
# Both set everything up first, from a fresh clone. `make check` is the fast lane
# (lint + unit tests, under a minute) for the edit-test loop.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup demo test check lint lint-plugin pytest unit bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"need Python 3.11, got {sys.version}"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/inferstack demo

test: lint lint-plugin pytest

check: lint unit

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The LocalStack executor plugin runs on LocalStack's Python 3.13: type-checked against
# LocalStack's own packages, so it needs .localstack-venv (installed once, then cached).
lint-plugin: setup
	$(VENV)/bin/inferstack localstack install
	$(VENV)/bin/mypy --config-file plugins/localstack-executor/pyproject.toml \
		--python-executable .localstack-venv/bin/python plugins/localstack-executor

pytest: setup
	$(VENV)/bin/python -m pytest

unit: setup
	@# Bytecode and pytest's rewritten test modules cached between runs (some shells set
	@# PYTHONDONTWRITEBYTECODE, which makes every run rewrite ~200 test modules again).
	PYTHONDONTWRITEBYTECODE= $(VENV)/bin/python -m pytest tests/unit -q -p no:schemathesis -n auto

bench: setup
	$(VENV)/bin/python -m benchmarks.runtime

clean:
	rm -rf build
