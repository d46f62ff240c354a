# The README's two commands are `make demo` (the main job) and `make test`.
# Both set everything up first, from a fresh clone. `make check` is the fast lane
# (lint + unit tests, under a minute) for the edit-test loop.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: setup demo test check lint pytest unit bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"need Python 3.11, got {sys.version}"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/inferstack demo

test: lint pytest

check: lint unit

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

pytest: setup
	$(VENV)/bin/python -m pytest

unit: setup
	$(VENV)/bin/python -m pytest -m unit -q

bench: setup
	$(VENV)/bin/python benchmarks/runtime.py

clean:
	rm -rf build
