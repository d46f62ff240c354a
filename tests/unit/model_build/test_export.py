"""Export to ONNX: the artifact, its manifest, the parity gate, both exporters."""

from __future__ import annotations

from datetime import UTC
from importlib.metadata import version
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from model_build.export import export_model
from model_build.parity import compare
from model_build.spec import ModelSpec
from model_runtime.engine import create_session
from model_runtime.errors import ExportError
from model_runtime.manifest import Manifest, sha256_file

# Some modules below are meant to trace badly.
pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")


def _torch_outputs(spec: ModelSpec, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        probabilities, labels = spec.module(torch.from_numpy(images))
    return probabilities.numpy(), labels.numpy()


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


def test_manifest_describes_the_export(digits_dir: Path) -> None:
    manifest = Manifest.load(digits_dir)

    assert manifest.name == "digits"
    assert manifest.version == "1"
    assert manifest.created_at.tzinfo is not None
    assert manifest.created_at.utcoffset() == UTC.utcoffset(None)
    # Every file in the artifact (other backends may add theirs) is listed with its hash.
    assert "model.onnx" in manifest.files
    assert set(manifest.files) == {p.name for p in digits_dir.iterdir()} - {"manifest.json"}
    for name, entry in manifest.files.items():
        assert entry.sha256 == sha256_file(digits_dir / name)
    assert [spec.model_dump() for spec in manifest.inputs] == [
        {"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]}
    ]
    assert [spec.model_dump() for spec in manifest.outputs] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        {"name": "label", "datatype": "INT64", "shape": [-1]},
    ]
    assert manifest.opset >= 17
    assert manifest.exporter.name == "torch.onnx.export (torchscript)"
    assert manifest.exporter.torch_version == version("torch")
    assert manifest.exporter.onnx_version == version("onnx")
    assert manifest.exporter.onnxruntime_version == version("onnxruntime")
    assert manifest.max_batch_size == 256
    assert manifest.labels == [str(digit) for digit in range(10)]


def test_parity_report(digits_dir: Path) -> None:
    parity = Manifest.load(digits_dir).parity

    assert parity.passed
    assert parity.reference == "torch"
    # The example inputs (2 images) first, then random batches.
    assert parity.batch_sizes == [2, 1, 4, 32]
    assert parity.samples == 39
    assert set(parity.outputs) == {"probabilities", "label"}
    assert 0 <= parity.max_abs_error <= parity.atol
    assert parity.outputs["label"].mismatches == 0
    assert parity.max_abs_error == max(o.max_abs_error for o in parity.outputs.values())


def test_held_out_accuracy(digits_dir: Path, digits_spec: ModelSpec) -> None:
    evaluation = Manifest.load(digits_dir).evaluation
    assert evaluation is not None
    assert digits_spec.eval_data is not None
    assert evaluation.samples == len(digits_spec.eval_data.labels) == 360
    assert evaluation.accuracy >= 0.95


def test_onnx_checker_passes_and_opset_matches(digits_dir: Path) -> None:
    path = digits_dir / "model.onnx"
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path))
    default_domain = {entry.domain: entry.version for entry in model.opset_import}[""]
    assert default_domain == Manifest.load(digits_dir).opset


@pytest.mark.parametrize("batch", [1, 3, 64, 256])
def test_dynamic_batch_axis(
    digits_dir: Path, digits_spec: ModelSpec, digits_images: np.ndarray, batch: int
) -> None:
    session = create_session(digits_dir / "model.onnx")
    images = np.resize(digits_images, (batch, 1, 8, 8))

    probabilities, labels = session.run(["probabilities", "label"], {"image": images})

    assert probabilities.shape == (batch, 10)
    assert labels.shape == (batch,)
    expected_probabilities, expected_labels = _torch_outputs(digits_spec, images)
    np.testing.assert_allclose(probabilities, expected_probabilities, atol=1e-5, rtol=1e-4)
    np.testing.assert_array_equal(labels, expected_labels)


def test_dynamo_exporter(digits_spec: ModelSpec, digits_images: np.ndarray, tmp_path: Path) -> None:
    out = tmp_path / "digits-dynamo"
    manifest = export_model(digits_spec, out, exporter="dynamo")

    assert manifest.exporter.name == "torch.onnx.export (dynamo)"
    assert manifest.parity.passed
    assert manifest.opset >= 17
    assert manifest.inputs[0].shape == [-1, 1, 8, 8]
    assert Manifest.load(out) == manifest
    onnx.checker.check_model(str(out / "model.onnx"), full_check=True)
    session = create_session(out / "model.onnx")
    for batch in (1, 5, 33):
        images = digits_images[:batch]
        probabilities, labels = session.run(["probabilities", "label"], {"image": images})
        expected_probabilities, expected_labels = _torch_outputs(digits_spec, images)
        np.testing.assert_allclose(probabilities, expected_probabilities, atol=1e-5, rtol=1e-4)
        np.testing.assert_array_equal(labels, expected_labels)


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
