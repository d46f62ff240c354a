"""Backends behind one Engine: onnxruntime (the default) and torch, and their options.

The tiny model stands in for an exported one; where a test needs the manifest to list a
torch artifact, `tiny_torch_dir` adds one (a placeholder file, never a real program: the
tests here stop before torch would run it, or check that a bad one is refused).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from model_runtime.backends import BackendOptions
from model_runtime.backends.options import DEVICES
from model_runtime.engine import Engine
from model_runtime.errors import ArtifactError, BackendUnavailable, OptionNotAllowed
from model_runtime.manifest import BackendArtifact, Manifest, hash_files

TORCH = BackendOptions(backend="torch", device="cpu")


def with_torch_artifact(source: Path, out: Path, content: bytes) -> Path:
    """A copy of `source` whose manifest also lists a torch artifact, model.pt2 = `content`."""
    shutil.copytree(source, out)
    (out / "model.pt2").write_bytes(content)
    manifest = Manifest.load(out)
    backends = [
        BackendArtifact(backend="onnxruntime", file="model.onnx", format="onnx"),
        BackendArtifact(backend="torch", file="model.pt2", format="torch_export"),
    ]
    files = {**manifest.files, **hash_files(out, ["model.pt2"])}
    manifest.model_copy(update={"files": files, "backends": backends}).write(out)
    return out


@pytest.fixture
def tiny_torch_dir(tiny_dir: Path, tmp_path: Path) -> Path:
    return with_torch_artifact(tiny_dir, tmp_path / "tiny-torch", b"placeholder")


def test_a_manifest_from_before_backends_still_loads(
    tiny_torch_dir: Path, tmp_path: Path, tiny_inputs: np.ndarray
) -> None:
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    shutil.copy(tiny_torch_dir / "model.onnx", legacy)
    data = json.loads((tiny_torch_dir / "manifest.json").read_text())
    del data["backends"]
    data["files"] = {"model.onnx": data["files"]["model.onnx"]}
    (legacy / "manifest.json").write_text(json.dumps(data))

    engine = Engine.load(legacy)
    assert engine.infer({"image": tiny_inputs[:2]})["label"].shape == (2,)
    with pytest.raises(ArtifactError, match=r"has no torch artifact .*supports: onnxruntime"):
        Engine.load(legacy, options=TORCH)


def test_onnxruntime_does_not_need_the_torch_file(tiny_torch_dir: Path, tmp_path: Path) -> None:
    """The Lambda model layer ships model.onnx alone."""
    lean = tmp_path / "lean"
    shutil.copytree(tiny_torch_dir, lean)
    (lean / "model.pt2").unlink()
    Engine.load(lean)
    with pytest.raises(ArtifactError, match=r"model\.pt2 is listed in the manifest but missing"):
        Engine.load(lean, options=TORCH)


def test_a_bad_torch_file_fails_naming_it(tiny_dir: Path, tmp_path: Path) -> None:
    broken = with_torch_artifact(tiny_dir, tmp_path / "broken", b"not a zip archive")
    with pytest.raises(ArtifactError, match=r"cannot load model file .*broken/model\.pt2"):
        Engine.load(broken, options=TORCH)


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


@pytest.mark.parametrize(
    ("backend", "device", "dtype", "message", "allowed", "needs_backend"),
    [
        (
            "tensorrt", "cpu", "fp32",
            "backend 'tensorrt' is unknown; allowed: onnxruntime, torch",
            ("onnxruntime", "torch"), None,
        ),
        (
            "torch", "cuda:N", "fp32",
            "device 'cuda:N' is unknown; allowed: auto, cpu, cuda, cuda:N", DEVICES, None,
        ),
        (
            "torch", "cuda:", "fp32",
            "device 'cuda:' is unknown; allowed: auto, cpu, cuda, cuda:N", DEVICES, None,
        ),
        (
            "torch", "cpu", "int4",
            "dtype 'int4' is unknown; allowed: fp32, fp16, bf16", ("fp32", "fp16", "bf16"), None,
        ),
        (
            "onnxruntime", "cpu", "bf16",
            "dtype 'bf16' needs the torch backend; onnxruntime runs the model as exported"
            " (fp32, or int8 when quantized)",
            ("fp32",), "torch",
        ),
    ],
)  # fmt: skip
def test_a_refused_option_says_what_is_allowed(
    backend: str,
    device: str,
    dtype: str,
    message: str,
    allowed: tuple[str, ...],
    needs_backend: str | None,
) -> None:
    with pytest.raises(OptionNotAllowed) as error:
        BackendOptions.parse(backend, device, dtype)
    assert str(error.value) == message
    assert (error.value.allowed, error.value.needs_backend) == (allowed, needs_backend)
    assert error.value.value in (backend, device, dtype)


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_devices_that_are_allowed(device: str) -> None:
    assert BackendOptions.parse("torch", device, "bf16") == BackendOptions("torch", device, "bf16")


def test_a_missing_device_is_refused_at_load(tiny_dir: Path, tiny_torch_dir: Path) -> None:
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(BackendUnavailable, match="CUDAExecutionProvider") as error:
            Engine.load(tiny_dir, options=BackendOptions(device="cuda"))
        assert error.value.option == "device"
    with pytest.raises(BackendUnavailable, match="'cuda:63' is not available") as error:
        Engine.load(tiny_torch_dir, options=BackendOptions("torch", "cuda:63"))
    assert error.value.option == "device"
