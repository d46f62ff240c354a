"""Shared fixtures: the digits reference model, trained and exported once per session, and
LocalStack, started once per session for every test directory that needs it."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from localdev.localstack import manager
from model_build.export import export_model
from model_build.quantize import quantize_artifact
from model_build.spec import ModelSpec, resolve
from model_runtime.engine import Engine
from tests.support.tiny_model import build_tiny_model, tiny_images


# The tiny digits-shaped ONNX model (tests/support/tiny_model.py): what unit tests serve.
@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_engine(tiny_dir: Path) -> Engine:
    return Engine.load(tiny_dir)


@pytest.fixture(scope="session")
def tiny_inputs() -> np.ndarray:
    """Deterministic (32, 1, 8, 8) float32 inputs in the digits value range."""
    return tiny_images(32)


@pytest.fixture(scope="session")
def digits_spec() -> ModelSpec:
    return resolve("digits").factory()


@pytest.fixture(scope="session")
def digits_dir(digits_spec: ModelSpec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "digits"
    export_model(digits_spec, out)
    return out


@pytest.fixture(scope="session")
def digits_int8_dir(
    digits_spec: ModelSpec, digits_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("models") / "digits-int8"
    quantize_artifact(digits_dir, out, digits_spec)
    return out


@pytest.fixture(scope="session")
def digits_engine(digits_dir: Path) -> Engine:
    return Engine.load(digits_dir)


@pytest.fixture(scope="session")
def digits_images(digits_spec: ModelSpec) -> np.ndarray:
    """Real held-out digit images, (N, 1, 8, 8) float32."""
    assert digits_spec.eval_data is not None
    return digits_spec.eval_data.inputs["image"]


# all-MiniLM-L6-v2 (text in, sentence embeddings out), exported and quantized once.
@pytest.fixture(scope="session")
def minilm_spec() -> ModelSpec:
    return resolve("minilm").factory()


@pytest.fixture(scope="session")
def minilm_dir(minilm_spec: ModelSpec, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models") / "minilm"
    export_model(minilm_spec, out)
    return out


@pytest.fixture(scope="session")
def minilm_int8_dir(
    minilm_spec: ModelSpec, minilm_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("models") / "minilm-int8"
    quantize_artifact(minilm_dir, out, minilm_spec)
    return out


@pytest.fixture(scope="session")
def localstack() -> Iterator[manager.Status]:
    """LocalStack through our manager, stopped by PID at the end of the session (also on
    failure); a LocalStack that was already running is reused and left running."""
    started = time.monotonic()
    status = manager.start(echo=lambda message: print(message, file=sys.stderr))
    print(
        f"LocalStack ready in {time.monotonic() - started:.1f} s (pid {status.pid}, "
        f"reused={status.reused})",
        file=sys.stderr,
    )
    try:
        yield status
    finally:
        if not status.reused:  # leave a LocalStack someone else started alone
            manager.stop()


# Each top-level test folder is one marker: `-m unit` is the fast lane (make check).
FOLDER_MARKERS = ("unit", "integration", "gpu")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        folder = item.path.resolve().relative_to(tests_dir).parts[0]
        if folder not in FOLDER_MARKERS:
            raise pytest.UsageError(
                f"{item.nodeid}: tests live under tests/unit, tests/integration or tests/gpu"
            )
        item.add_marker(folder)
