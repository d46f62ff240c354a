"""The torch backend's artifact, written by model_build.torch_export from a small module
built here (no training), then served by the torch backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from model_build.errors import ExportError
from model_build.export import export_model
from model_build.spec import ModelSpec
from model_build.torch_export import export_torch
from model_runtime.backends import BackendOptions
from model_runtime.backends.torch_backend import TorchFormat
from model_runtime.engine import Engine
from model_runtime.manifest import Manifest

TORCH = BackendOptions(backend="torch", device="cpu")


class Affine(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def _spec(module: nn.Module) -> ModelSpec:
    example = np.random.default_rng(0).uniform(-1, 1, (2, 3)).astype(np.float32)
    return ModelSpec(
        name="affine", module=module, example_inputs={"x": example}, output_names=["y"]
    )


@pytest.mark.parametrize(
    ("torch_format", "file"), [("torch_export", "model.pt2"), ("torchscript", "model.torchscript")]
)
def test_the_torch_artifact_is_recorded_and_serves_like_onnxruntime(
    torch_format: TorchFormat, file: str, tmp_path: Path
) -> None:
    out = tmp_path / "affine"
    manifest = export_model(_spec(Affine()), out, torch_format=torch_format)

    assert [(a.backend, a.file, a.format) for a in manifest.backend_artifacts()] == [
        ("onnxruntime", "model.onnx", "onnx"),
        ("torch", file, torch_format),
    ]
    parity = manifest.backend_artifact("torch").parity  # type: ignore[union-attr]
    assert parity is not None and parity.passed and parity.reference == "onnxruntime"
    assert file in Manifest.load(out).files
    batch = {"x": np.random.default_rng(1).uniform(-1, 1, (5, 3)).astype(np.float32)}
    want = Engine.load(out).infer(batch)["y"]
    got = Engine.load(out, options=TORCH).infer(batch)["y"]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_no_torch_artifact_when_not_asked(tmp_path: Path) -> None:
    manifest = export_model(_spec(Affine()), tmp_path / "affine", torch_format=None)
    assert [a.backend for a in manifest.backend_artifacts()] == ["onnxruntime"]
    assert sorted(p.name for p in (tmp_path / "affine").iterdir()) == [
        "manifest.json",
        "model.onnx",
    ]


def test_a_failed_torch_export_is_an_export_error(tmp_path: Path) -> None:
    spec = _spec(Affine())
    with pytest.raises(ExportError) as caught:
        export_torch(spec.module, spec.example_inputs, tmp_path / "missing", "torchscript", {})
    message = str(caught.value)
    assert message.startswith("torchscript export failed: ")
    assert message.endswith(
        "; export without the torch artifact (torch_format=None) or try torch_format='torchscript'"
    )
