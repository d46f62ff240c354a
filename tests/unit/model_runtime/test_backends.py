"""Backends behind one Engine: onnxruntime (default, no torch import) and torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_runtime.backends import BackendOptions
from model_runtime.engine import Engine
from model_runtime.errors import ArtifactError, BackendUnavailable
from model_runtime.manifest import Manifest, hash_files

TORCH = BackendOptions(backend="torch", device="cpu")


def test_export_records_both_backends_and_their_parity(digits_dir: Path) -> None:
    manifest = Manifest.load(digits_dir)
    assert [(a.backend, a.file, a.format) for a in manifest.backend_artifacts()] == [
        ("onnxruntime", "model.onnx", "onnx"),
        ("torch", "model.pt2", "torch_export"),
    ]
    torch_parity = manifest.backend_artifact("torch").parity  # type: ignore[union-attr]
    assert torch_parity is not None and torch_parity.passed
    assert torch_parity.reference == "onnxruntime"
    assert torch_parity.max_abs_error < 1e-5
    assert torch_parity.outputs["label"].mismatches == 0
    assert "model.pt2" in manifest.files


def test_torch_backend_matches_onnxruntime(digits_dir: Path, digits_images: np.ndarray) -> None:
    onnx = Engine.load(digits_dir)
    torch = Engine.load(digits_dir, options=TORCH)
    for size in (1, 7, 64):
        batch = {"image": digits_images[:size]}
        want, got = onnx.infer(batch), torch.infer(batch)
        np.testing.assert_array_equal(got["label"], want["label"])
        np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-5)
        assert got["probabilities"].dtype == np.float32


def test_torch_backend_in_bf16_answers_in_the_manifest_dtype(
    digits_dir: Path, digits_images: np.ndarray
) -> None:
    engine = Engine.load(digits_dir, options=BackendOptions("torch", "cpu", "bf16"))
    got = engine.infer({"image": digits_images[:32]})
    want = Engine.load(digits_dir).infer({"image": digits_images[:32]})
    assert got["probabilities"].dtype == np.float32
    # bf16 keeps 8 bits of mantissa: probabilities agree to ~1e-2, labels nearly always.
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=5e-2)
    assert np.mean(got["label"] == want["label"]) >= 0.9


def test_a_manifest_from_before_backends_still_loads(
    digits_dir: Path, tmp_path: Path, digits_images: np.ndarray
) -> None:
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    shutil.copy(digits_dir / "model.onnx", legacy)
    data = json.loads((digits_dir / "manifest.json").read_text())
    del data["backends"]
    data["files"] = {"model.onnx": data["files"]["model.onnx"]}
    (legacy / "manifest.json").write_text(json.dumps(data))

    engine = Engine.load(legacy)
    assert engine.infer({"image": digits_images[:2]})["label"].shape == (2,)
    with pytest.raises(ArtifactError, match=r"has no torch artifact .*supports: onnxruntime"):
        Engine.load(legacy, options=TORCH)


def test_onnxruntime_does_not_need_the_torch_file(digits_dir: Path, tmp_path: Path) -> None:
    """The Lambda model layer ships model.onnx alone."""
    lean = tmp_path / "lean"
    shutil.copytree(digits_dir, lean)
    (lean / "model.pt2").unlink()
    Engine.load(lean)
    with pytest.raises(ArtifactError, match=r"model\.pt2 is listed in the manifest but missing"):
        Engine.load(lean, options=TORCH)


def test_a_bad_torch_file_fails_naming_it(digits_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(digits_dir, broken)
    (broken / "model.pt2").write_bytes(b"not a zip archive")
    manifest = Manifest.load(broken)
    files = {**manifest.files, **hash_files(broken, ["model.pt2"])}
    manifest.model_copy(update={"files": files}).write(broken)
    with pytest.raises(ArtifactError, match=r"cannot load model file .*broken/model\.pt2"):
        Engine.load(broken, options=TORCH)


def test_int8_artifacts_are_onnxruntime_only(digits_int8_dir: Path) -> None:
    manifest = Manifest.load(digits_int8_dir)
    assert [a.backend for a in manifest.backend_artifacts()] == ["onnxruntime"]
    assert "model.pt2" not in manifest.files
    assert not (digits_int8_dir / "model.pt2").exists()


@pytest.mark.parametrize(
    ("options", "option", "message"),
    [
        (dict(backend="onnxruntime", dtype="fp16"), "dtype", "needs the torch backend"),
        (dict(device="gpu"), "device", "allowed: auto, cpu, cuda, cuda:N"),
        (dict(backend="tensorrt"), "backend", "allowed: onnxruntime, torch"),
    ],
)
def test_backend_options_are_checked(options: dict[str, str], option: str, message: str) -> None:
    with pytest.raises(BackendUnavailable, match=message) as error:
        BackendOptions(**options)  # type: ignore[arg-type]
    assert error.value.option == option


def test_a_missing_device_is_refused_at_load(digits_dir: Path) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(BackendUnavailable, match="CUDAExecutionProvider") as error:
            Engine.load(digits_dir, options=BackendOptions(device="cuda"))
        assert error.value.option == "device"
    with pytest.raises(BackendUnavailable, match="'cuda:63' is not available") as error:
        Engine.load(digits_dir, options=BackendOptions("torch", "cuda:63"))
    assert error.value.option == "device"


def test_the_serving_path_never_imports_torch() -> None:
    code = (
        "import sys, model_runtime.server, model_runtime.app, model_runtime.engine,"
        " model_runtime.backends.onnxruntime_backend, model_runtime.batcher;"
        " print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
