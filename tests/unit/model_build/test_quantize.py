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
from model_runtime.manifest import Manifest, verify_artifact
from tests.support.tiny_model import reference_outputs, tiny_images


def tiny_spec(eval_data: EvalData | None = None, keep_fp32: list[str] | None = None) -> ModelSpec:
    # Quantization reads only the inputs and the eval set: no module is needed.
    return ModelSpec(
        name="tiny",
        module=None,
        example_inputs={"image": tiny_images(2)},
        output_names=["probabilities", "label"],
        eval_data=eval_data,
        classifier_output="probabilities" if eval_data is not None else None,
        int8_keep_fp32=keep_fp32 or [],
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


def test_agreement_under_the_minimum_fails(tiny_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"agrees with fp32 on only .* of 64 held-out samples"):
        quantize_artifact(
            tiny_dir, tmp_path / "tiny-int8", tiny_spec(held_out()), min_top1_agreement=1.01
        )
    assert list(tmp_path.iterdir()) == []


def test_a_keep_fp32_pattern_must_match_a_node(tiny_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"\['no-such-node'\] match no node of model\.onnx"):
        quantize_artifact(tiny_dir, tmp_path / "out", tiny_spec(keep_fp32=["no-such-node"]))


def test_tampered_source_is_refused(tiny_dir: Path, tmp_path: Path) -> None:
    source = Path(shutil.copytree(tiny_dir, tmp_path / "tiny"))
    model = source / "model.onnx"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))

    with pytest.raises(ArtifactIntegrityError, match=str(model)):
        quantize_artifact(source, tmp_path / "tiny-int8", tiny_spec())
    assert not (tmp_path / "tiny-int8").exists()
