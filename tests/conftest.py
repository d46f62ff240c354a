"""Shared fixtures: the tiny ONNX model unit tests serve; the reference models' artifacts,
built once per declaration and cached across sessions; LocalStack, started once per
session for every test directory that needs it."""

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
from model_build.reference_models.digits import load_split
from model_build.spec import ModelSpec, resolve
from model_runtime.engine import Engine
from tests.support.model_cache import cached_artifact, check_untouched
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


# The reference models, built into build/test-models/ (tests/support/model_cache.py):
# a session after the first only verifies their hashes. They are shared: a test that
# modifies one copies it first (checked at the end of the session).
@pytest.fixture(scope="session")
def digits_spec() -> ModelSpec:
    """The trained torch module (tens of seconds): only for tests of the module itself."""
    return resolve("digits").factory()


@pytest.fixture(scope="session")
def digits_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    def build(out: Path) -> None:
        export_model(request.getfixturevalue("digits_spec"), out)

    directory = cached_artifact(resolve("digits"), "digits", build)
    yield directory
    check_untouched(directory)


@pytest.fixture(scope="session")
def digits_int8_dir(request: pytest.FixtureRequest, digits_dir: Path) -> Iterator[Path]:
    def build(out: Path) -> None:
        quantize_artifact(digits_dir, out, request.getfixturevalue("digits_spec"))

    directory = cached_artifact(resolve("digits"), "digits-int8", build, quantized_from=digits_dir)
    yield directory
    check_untouched(directory)


@pytest.fixture(scope="session")
def digits_v2_dir() -> Iterator[Path]:
    """`digits` model version "2": the same network trained from another seed."""

    def build(out: Path) -> None:
        export_model(resolve("digits-v2").factory(), out)

    directory = cached_artifact(resolve("digits-v2"), "digits-v2", build)
    yield directory
    check_untouched(directory)


@pytest.fixture(scope="session")
def digits_engine(digits_dir: Path) -> Engine:
    return Engine.load(digits_dir)


@pytest.fixture(scope="session")
def digits_images() -> np.ndarray:
    """Real held-out digit images, (N, 1, 8, 8) float32: the ones digits_spec.eval_data
    holds, read from scikit-learn's data set without training."""
    _, held_out, _, _ = load_split()
    return held_out


# all-MiniLM-L6-v2 (text in, sentence embeddings out), exported and quantized once.
@pytest.fixture(scope="session")
def minilm_spec() -> ModelSpec:
    return resolve("minilm").factory()


@pytest.fixture(scope="session")
def minilm_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    def build(out: Path) -> None:
        export_model(request.getfixturevalue("minilm_spec"), out)

    directory = cached_artifact(resolve("minilm"), "minilm", build)
    yield directory
    check_untouched(directory)


@pytest.fixture(scope="session")
def minilm_int8_dir(request: pytest.FixtureRequest, minilm_dir: Path) -> Iterator[Path]:
    def build(out: Path) -> None:
        quantize_artifact(minilm_dir, out, request.getfixturevalue("minilm_spec"))

    directory = cached_artifact(resolve("minilm"), "minilm-int8", build, quantized_from=minilm_dir)
    yield directory
    check_untouched(directory)


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
FOLDER_MARKERS = ("unit", "integration", "gpu", "aws")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        folder = item.path.resolve().relative_to(tests_dir).parts[0]
        if folder not in FOLDER_MARKERS:
            folders = ", ".join(f"tests/{name}" for name in FOLDER_MARKERS)
            raise pytest.UsageError(f"{item.nodeid}: tests live under one of {folders}")
        item.add_marker(folder)
