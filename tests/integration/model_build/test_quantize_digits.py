"""Dynamic int8 quantization of the trained digits model, measured against the fp32
artifact it came from."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

from model_build.errors import ExportError
from model_build.quantize import quantize_artifact
from model_build.spec import ModelSpec
from model_runtime.engine import Engine
from model_runtime.errors import ArtifactIntegrityError
from model_runtime.manifest import Manifest, PromotionGate, sha256_file, verify_artifact


def test_int8_manifest_reports_quantization(digits_dir: Path, digits_int8_dir: Path) -> None:
    fp32 = Manifest.load(digits_dir)
    int8 = Manifest.load(digits_int8_dir)

    assert int8.name == "digits-int8"
    assert int8.inputs == fp32.inputs
    assert int8.outputs == fp32.outputs
    report = int8.quantization
    assert report is not None
    assert report.method == "dynamic-int8"
    assert report.per_channel is True
    assert report.source_sha256 == fp32.files["model.onnx"].sha256
    assert report.top1_agreement is not None and report.top1_agreement >= 0.97
    # The default gate for a classifier with a held-out set, met as measured.
    assert report.gate == PromotionGate(metric="top1_agreement", minimum=0.97)
    assert report.gate_measured == report.top1_agreement
    assert fp32.evaluation is not None
    assert report.accuracy_fp32 == fp32.evaluation.accuracy


def test_int8_accuracy_on_held_out_set(digits_int8_dir: Path, digits_spec: ModelSpec) -> None:
    evaluation = Manifest.load(digits_int8_dir).evaluation
    assert evaluation is not None
    assert digits_spec.eval_data is not None
    assert evaluation.samples == len(digits_spec.eval_data.labels)
    assert evaluation.accuracy >= 0.95


def test_int8_parity_is_against_fp32(digits_dir: Path, digits_int8_dir: Path) -> None:
    fp32_sha = Manifest.load(digits_dir).files["model.onnx"].sha256
    parity = Manifest.load(digits_int8_dir).parity

    assert parity.reference == f"fp32 model.onnx (sha256 {fp32_sha})"
    assert parity.batch_sizes == [2, 1, 4, 32]
    # Int8 differs from fp32, but not by much on probabilities in [0, 1].
    assert 0 < parity.outputs["probabilities"].max_abs_error < 0.2


def test_int8_file_is_smaller_and_really_quantized(digits_dir: Path, digits_int8_dir: Path) -> None:
    fp32_size = (digits_dir / "model.onnx").stat().st_size
    int8_size = (digits_int8_dir / "model.onnx").stat().st_size
    assert int8_size < 0.5 * fp32_size

    graph = onnx.load(str(digits_int8_dir / "model.onnx")).graph
    int8_weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert int8_weights


def test_int8_artifact_verifies_and_agrees_with_fp32(
    digits_int8_dir: Path, digits_engine: Engine, digits_images: np.ndarray
) -> None:
    manifest = Manifest.load(digits_int8_dir)
    verify_artifact(digits_int8_dir, manifest)
    for name, entry in manifest.files.items():
        assert entry.sha256 == sha256_file(digits_int8_dir / name)

    int8 = Engine.load(digits_int8_dir)
    halves = np.array_split(digits_images, 2)  # 360 images: over the batch limit of 256
    labels_int8 = np.concatenate([int8.infer({"image": h}, ["label"])["label"] for h in halves])
    labels_fp32 = np.concatenate(
        [digits_engine.infer({"image": h}, ["label"])["label"] for h in halves]
    )
    agreement = float(np.mean(labels_int8 == labels_fp32))
    assert agreement == pytest.approx(manifest.quantization.top1_agreement)  # type: ignore[union-attr]


def test_a_gate_int8_cannot_meet_fails(
    digits_dir: Path, digits_spec: ModelSpec, tmp_path: Path
) -> None:
    # digits int8 agrees with fp32 on every held-out sample, so no agreement gate fails
    # (the tiny model's unit test checks that message): a min cosine of 1 cannot be met.
    out = tmp_path / "digits-int8"
    spec = replace(digits_spec, quantization_gate=PromotionGate(metric="min_cosine", minimum=1))
    with pytest.raises(
        ExportError,
        match=r"int8 'digits' reaches a min cosine of only 0\.\d+ against fp32 \(need 1\)"
        r" at best \(0 of \d+ weight nodes kept in fp32; 1 candidate graph\(s\) measured\)",
    ):
        quantize_artifact(digits_dir, out, spec, max_evaluations=1)
    assert list(tmp_path.iterdir()) == []


def test_tampered_source_is_refused(
    digits_dir: Path, digits_spec: ModelSpec, tmp_path: Path
) -> None:
    source = Path(shutil.copytree(digits_dir, tmp_path / "digits"))
    model = source / "model.onnx"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))

    with pytest.raises(ArtifactIntegrityError, match=str(model)):
        quantize_artifact(source, tmp_path / "digits-int8", digits_spec)
    assert not (tmp_path / "digits-int8").exists()


def test_int8_artifacts_are_onnxruntime_only(digits_int8_dir: Path) -> None:
    manifest = Manifest.load(digits_int8_dir)
    assert [a.backend for a in manifest.backend_artifacts()] == ["onnxruntime"]
    assert "model.pt2" not in manifest.files
    assert not (digits_int8_dir / "model.pt2").exists()
