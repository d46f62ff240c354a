"""Export to ONNX of small torch modules built here (no training): the parity gate, the
staging directory, refusals. The trained digits export is in tests/integration/model_build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from model_build.errors import ExportError
from model_build.export import export_model
from model_build.parity import compare
from model_build.spec import ModelSpec
from model_runtime.manifest import Manifest

# Some modules below are meant to trace badly.
pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")


def _tiny_spec(module: nn.Module, name: str = "tiny") -> ModelSpec:
    example = np.random.default_rng(0).uniform(-1, 1, (2, 3)).astype(np.float32)
    return ModelSpec(name=name, module=module, example_inputs={"x": example}, output_names=["y"])


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class BatchOfOneDoubles(nn.Module):
    """Python control flow on the batch size: tracing bakes in the example's branch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1:
            return x * 2
        return x


class FrozenBatch(nn.Module):
    """int() on a traced size freezes the example's batch size into the graph."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(int(x.shape[0]), 3) + 1


class ConstantPerRow(nn.Module):
    """Same value in every row, but the ONNX graph always returns the example's row count."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean() * torch.ones(int(x.shape[0]))


def test_parity_failure_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError) as caught:
        export_model(_tiny_spec(BatchOfOneDoubles()), tmp_path / "tiny")

    message = str(caught.value)
    assert "export of 'tiny' failed parity" in message
    assert "atol 0.0001, rtol 0.001" in message
    assert "y: max abs" in message
    assert not (tmp_path / "tiny").exists()


def test_failed_export_leaves_the_previous_artifact_untouched(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    export_model(_tiny_spec(Scale(3.0)), out)
    before = {path.name: path.read_bytes() for path in out.iterdir()}

    with pytest.raises(ExportError, match="failed parity"):
        export_model(_tiny_spec(BatchOfOneDoubles()), out)

    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    # No staging or retired directories left beside it.
    assert [path.name for path in tmp_path.iterdir()] == ["tiny"]


def test_successful_export_replaces_the_previous_artifact(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    first = export_model(_tiny_spec(Scale(3.0)), out)
    second = export_model(_tiny_spec(Scale(5.0)), out)

    assert first.files["model.onnx"].sha256 != second.files["model.onnx"].sha256
    assert Manifest.load(out) == second
    assert [path.name for path in tmp_path.iterdir()] == ["tiny"]


def test_graph_that_fails_on_other_batch_sizes_is_an_export_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"fails on inputs of shape \{'x': \[1, 3\]\}"):
        export_model(_tiny_spec(FrozenBatch()), tmp_path / "tiny")
    assert list(tmp_path.iterdir()) == []


def test_output_of_the_wrong_shape_fails_parity(tmp_path: Path) -> None:
    # At batch 1 the graph returns 2 equal values where torch returns 1: broadcasting
    # alone would call that a match.
    with pytest.raises(ExportError, match=r"failed parity: .*y: .*mismatches"):
        export_model(_tiny_spec(ConstantPerRow()), tmp_path / "tiny")


def test_compare_counts_shape_mismatch() -> None:
    batch = {"x": np.zeros((1, 3), np.float32)}
    report = compare(
        lambda b: {"y": np.ones((1, 3), np.float32)},
        lambda b: {"y": np.ones((2, 3), np.float32)},
        [batch],
        reference_name="ref",
        atol=1.0,
        rtol=1.0,
    )
    assert not report.passed
    assert report.outputs["y"].mismatches == 6


def test_compare_requires_exact_integer_outputs() -> None:
    batch = {"x": np.zeros((3, 1), np.float32)}
    report = compare(
        lambda b: {"label": np.array([1, 2, 3])},
        lambda b: {"label": np.array([1, 2, 4])},
        [batch],
        reference_name="ref",
        atol=10.0,
        rtol=10.0,
    )
    assert not report.passed
    assert report.outputs["label"].mismatches == 1


def test_opset_below_17_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="opset 16 is too old; allowed: 17 or newer"):
        export_model(_tiny_spec(Scale(2.0)), tmp_path / "tiny", opset=16)


class Affine(nn.Module):
    """Weights big enough to leave the graph (onnx keeps tensors under 1 KB inline)."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def test_a_graph_over_the_threshold_keeps_its_weights_in_external_data(tmp_path: Path) -> None:
    from model_runtime.engine import Engine

    spec = _tiny_spec(Affine().eval())
    manifest = export_model(spec, tmp_path / "big", torch_format=None, external_data_above_bytes=0)
    assert sorted(manifest.files) == ["model.onnx", "model.onnx.data"]
    assert manifest.files_for("onnxruntime") == ["model.onnx", "model.onnx.data"]
    assert manifest.files["model.onnx.data"].size > 512 * 3 * 4
    assert not (tmp_path / "big" / ".export").exists()
    engine = Engine.load(tmp_path / "big")
    x = spec.example_inputs["x"]
    (y,) = engine.infer({"x": x}).values()
    with torch.no_grad():
        expected = spec.module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_a_graph_under_the_threshold_is_one_file(tmp_path: Path) -> None:
    manifest = export_model(_tiny_spec(Affine().eval()), tmp_path / "small", torch_format=None)
    assert sorted(manifest.files) == ["model.onnx"]
