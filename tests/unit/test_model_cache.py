"""The test artifact cache (tests/support/model_cache.py): built once, reused while it
verifies and its build record is current, rebuilt otherwise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from model_build.spec import ModelDeclaration, ModelSpec
from model_runtime.manifest import MODEL_FILE, Manifest, QuantizationReport
from tests.support import model_cache
from tests.support.tiny_model import build_tiny_model


def _factory() -> ModelSpec:
    raise AssertionError("the cache calls only the build function it is given")


DECLARATION = ModelDeclaration("tests.support.tiny_model:tiny", _factory, "ab" * 32)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(model_cache, "CACHE", tmp_path / "test-models")
    return tmp_path / "test-models"


class Builder:
    def __init__(self) -> None:
        self.built: list[Path] = []

    def __call__(self, out: Path) -> None:
        self.built.append(out)
        build_tiny_model(out)


def test_the_second_session_reuses_what_the_first_built(cache: Path) -> None:
    build = Builder()
    first = model_cache.cached_artifact(DECLARATION, "tiny", build)
    again = model_cache.cached_artifact(DECLARATION, "tiny", build)
    assert first == again == cache / "abababababab" / "tiny"
    assert build.built == [first]
    model_cache.check_untouched(first)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / MODEL_FILE).write_bytes(b"tampered"),
        lambda d: (d / "manifest.json").unlink(),
        lambda d: (d / "stray.txt").write_text("a file no manifest lists"),
    ],
    ids=["tampered", "no-manifest", "stray-file"],
)
def test_a_damaged_artifact_is_rebuilt_and_named_at_the_end(
    cache: Path, damage: Callable[[Path], object]
) -> None:
    build = Builder()
    directory = model_cache.cached_artifact(DECLARATION, "tiny", build)
    damage(directory)

    with pytest.raises(AssertionError, match="a test that modifies an artifact must copy it"):
        model_cache.check_untouched(directory)
    assert not directory.exists()
    assert model_cache.cached_artifact(DECLARATION, "tiny", build) == directory
    assert len(build.built) == 2


def test_other_build_code_rebuilds_everything_of_the_declaration(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = Builder()
    tiny = model_cache.cached_artifact(DECLARATION, "tiny", build)
    other = model_cache.cached_artifact(DECLARATION, "other", build)
    monkeypatch.setattr(model_cache, "build_code_hash", lambda: "changed")

    model_cache.cached_artifact(DECLARATION, "tiny", build)

    assert build.built == [tiny, other, tiny]
    assert not other.exists()


def test_an_int8_artifact_is_rebuilt_when_its_fp32_source_changes(
    cache: Path, tmp_path: Path
) -> None:
    fp32 = build_tiny_model(tmp_path / "fp32")
    quantized: list[str] = []

    def quantize(out: Path) -> None:
        source = Manifest.load(fp32).files[MODEL_FILE].sha256
        quantized.append(source)
        manifest = Manifest.load(build_tiny_model(out))
        report = QuantizationReport(method="dynamic-int8", per_channel=False, source_sha256=source)
        manifest.model_copy(update={"quantization": report}).write(out)

    model_cache.cached_artifact(DECLARATION, "tiny-int8", quantize, quantized_from=fp32)
    model_cache.cached_artifact(DECLARATION, "tiny-int8", quantize, quantized_from=fp32)
    build_tiny_model(fp32, seed=8)  # the fp32 artifact was built again, differently
    model_cache.cached_artifact(DECLARATION, "tiny-int8", quantize, quantized_from=fp32)

    assert len(quantized) == 2
    assert quantized[0] != quantized[1]
