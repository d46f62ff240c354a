"""Packaging fixtures. Layers are built into the repository's build/package cache, so
only the first run on a machine downloads wheels and builds; later runs reuse them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from layers.archive import Built
from layers.bytecode import find_interpreter
from layers.package import project_root
from layers.runtime import build_runtime_layer
from layers.targets import Target

RUNTIME = "python3.12"


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return project_root() / "build" / "package"


@pytest.fixture(scope="session")
def python312() -> Path:
    interpreter = find_interpreter("3.12")
    if interpreter is None:
        message = "no python3.12 here (pyenv versions or PATH): isolated Lambda runs need it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return interpreter


@pytest.fixture(scope="session")
def runtime_layer(cache_dir: Path) -> Built:
    return build_runtime_layer(Target.of(RUNTIME, "x86_64"), project_root(), cache_dir)


@pytest.fixture(scope="session")
def runtime_layer_arm64(cache_dir: Path) -> Built:
    return build_runtime_layer(Target.of(RUNTIME, "arm64"), project_root(), cache_dir)
