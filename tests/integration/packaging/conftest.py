"""Packaging fixtures. Layers are built into the repository's build/package cache, so
only the first run on a machine downloads wheels and builds; later runs reuse them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from layers.archive import Built
from layers.errors import InterpreterNotFoundError
from layers.interpreters import find_python
from layers.package import project_root
from layers.runtime import build_runtime_layer
from layers.targets import Target

RUNTIME = "python3.12"


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return project_root() / "build" / "package"


@pytest.fixture(scope="session")
def python312() -> Path:
    try:
        return find_python("3.12")
    except InterpreterNotFoundError as exc:
        message = f"isolated Lambda runs need python3.12: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="session")
def runtime_layer(cache_dir: Path) -> Built:
    return build_runtime_layer(Target.of(RUNTIME, "x86_64"), project_root(), cache_dir)


@pytest.fixture(scope="session")
def runtime_layer_arm64(cache_dir: Path) -> Built:
    return build_runtime_layer(Target.of(RUNTIME, "arm64"), project_root(), cache_dir)
