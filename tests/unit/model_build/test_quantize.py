"""Dynamic int8 quantization of the tiny model (no training): what the int8 manifest
records and what is refused. The trained digits model's int8 accuracy and agreement are
in tests/integration/model_build."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx
import pytest

from model_build.errors import ExportError
from model_build.quantize import quantize_artifact
from model_build.spec import EvalData, ModelSpec
from model_runtime.engine import Engine
from model_runtime.errors import ArtifactIntegrityError
from model_runtime.manifest import Manifest, PromotionGate, verify_artifact
from tests.support.tiny_model import reference_outputs, tiny_images


def tiny_spec(eval_data: EvalData | None = None, gate: PromotionGate | None = None) -> ModelSpec:
    # Quantization reads only the inputs and the eval set: no module is needed.
    return ModelSpec(
        name="tiny",
        module=None,
        example_inputs={"image": tiny_images(2)},
        output_names=["probabilities", "label"],
        eval_data=eval_data,
        classifier_output="probabilities" if eval_data is not None else None,
        quantization_gate=gate,
    )


def held_out() -> EvalData:
    images = tiny_images(64, seed=1)
    return EvalData({"image": images}, reference_outputs(images)["label"], "tiny (seed 1)")


def test_int8_copy_of_the_tiny_model(tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "tiny-int8"
    manifest = quantize_artifact(tiny_dir, out, tiny_spec())

    fp32 = Manifest.load(tiny_dir)
    assert manifest == Manifest.load(out)
    assert manifest.name == "tiny-int8"
    assert (manifest.inputs, manifest.outputs) == (fp32.inputs, fp32.outputs)
    assert [a.backend for a in manifest.backend_artifacts()] == ["onnxruntime"]
    report = manifest.quantization
    assert report is not None and report.method == "dynamic-int8"
    assert report.source_sha256 == fp32.files["model.onnx"].sha256
    assert report.top1_agreement is None  # no held-out set given
    # The default gate for a model without one: min cosine on its example inputs.
    assert report.gate == PromotionGate(metric="min_cosine", minimum=0.98)
    assert report.gate_measured is not None and report.gate_measured >= 0.98
    assert (report.kept_fp32, report.search_evaluations) == ([], 1)
    assert manifest.parity.reference == f"fp32 model.onnx (sha256 {report.source_sha256})"
    verify_artifact(out, manifest)
    graph = onnx.load(str(out / "model.onnx")).graph
    assert [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    labels = Engine.load(out).infer({"image": tiny_images(4)})["label"]
    assert labels.shape == (4,)


def test_agreement_is_measured_on_the_held_out_set(tiny_dir: Path, tmp_path: Path) -> None:
    manifest = quantize_artifact(tiny_dir, tmp_path / "tiny-int8", tiny_spec(held_out()))
    report, evaluation = manifest.quantization, manifest.evaluation
    assert report is not None and report.top1_agreement is not None
    assert evaluation is not None and evaluation.samples == 64
    assert 0.0 <= report.top1_agreement <= 1.0
    # A classifier with a held-out set: top-1 agreement, at the default minimum.
    assert report.gate == PromotionGate(metric="top1_agreement", minimum=0.97)
    assert report.gate_measured == report.top1_agreement


def test_agreement_under_the_minimum_fails(tiny_dir: Path, tmp_path: Path) -> None:
    # The tiny model's one MatMul has no name, so it cannot be kept in fp32: all is int8.
    gate = PromotionGate(metric="top1_agreement", minimum=1.0)
    with pytest.raises(
        ExportError,
        match=r"agrees with fp32 on only .* of 64 held-out samples \(need 100%\) at best"
        r" \(0 of 0 weight nodes kept in fp32; 1 candidate graph\(s\) measured\)",
    ):
        quantize_artifact(tiny_dir, tmp_path / "tiny-int8", tiny_spec(held_out(), gate))
    assert list(tmp_path.iterdir()) == []


def test_a_min_cosine_it_cannot_reach_names_the_best_value(tiny_dir: Path, tmp_path: Path) -> None:
    gate = PromotionGate(metric="min_cosine", minimum=1.0)
    with pytest.raises(ExportError, match=r"reaches a min cosine of only 0\.\d{4} against fp32"):
        quantize_artifact(tiny_dir, tmp_path / "tiny-int8", tiny_spec(gate=gate))
    assert list(tmp_path.iterdir()) == []


def test_tampered_source_is_refused(tiny_dir: Path, tmp_path: Path) -> None:
    source = Path(shutil.copytree(tiny_dir, tmp_path / "tiny"))
    model = source / "model.onnx"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))

    with pytest.raises(ArtifactIntegrityError, match=str(model)):
        quantize_artifact(source, tmp_path / "tiny-int8", tiny_spec())
    assert not (tmp_path / "tiny-int8").exists()


def test_an_fp32_source_in_external_data_gives_a_self_contained_int8(
    tiny_dir: Path, tmp_path: Path
) -> None:
    from tests.support.external_data import external_data_artifact

    source = external_data_artifact(tiny_dir, tmp_path / "tiny-external")
    manifest = quantize_artifact(source, tmp_path / "tiny-int8", tiny_spec())
    # fp32's weights stay with fp32: the int8 graph holds its own.
    assert sorted(manifest.files) == ["model.onnx"]
    assert not (tmp_path / "tiny-int8" / "model.onnx.data").exists()
    assert Engine.load(tmp_path / "tiny-int8").infer({"image": tiny_images(2)})["label"].shape == (
        2,
    )
