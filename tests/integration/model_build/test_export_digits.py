"""Export of the trained digits CNN: the artifact, its manifest, parity, both exporters,
and the torch backend's artifact beside the ONNX model."""

from __future__ import annotations

from datetime import UTC
from importlib.metadata import version
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from model_build.export import export_model
from model_build.spec import ModelSpec
from model_runtime.backends.onnxruntime_backend import create_session
from model_runtime.manifest import Manifest, sha256_file


def _torch_outputs(spec: ModelSpec, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        probabilities, labels = spec.module(torch.from_numpy(images))
    return probabilities.numpy(), labels.numpy()


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
