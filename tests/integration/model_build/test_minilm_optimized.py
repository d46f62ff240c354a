"""MiniLM through the transformer optimizer and the int8 search: the session's built
artifacts (minilm_dir, minilm_int8_dir), what their manifests record and whether it holds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import onnx
import pytest

from model_build.errors import ExportError
from model_build.export import _onnx_runner
from model_build.quantize import MAX_EVALUATIONS, gate_inputs, quantize_artifact
from model_build.quantize_search import GateMeasure
from model_build.spec import ModelSpec
from model_runtime.backends.onnxruntime_backend import create_session
from model_runtime.manifest import Manifest, PromotionGate

LAYERS = 6


def ops(directory: Path) -> list[str]:
    return [node.op_type for node in onnx.load(str(directory / "model.onnx")).graph.node]


def test_the_fp32_graph_is_fused_and_passes_parity(minilm_dir: Path) -> None:
    manifest = Manifest.load(minilm_dir)
    report = manifest.optimization
    assert report is not None and report.method == "onnxruntime-transformers"
    assert (report.model_type, report.opt_level) == ("bert", 0)
    fused = report.fused_ops
    assert fused["Attention"] == LAYERS
    assert fused["SkipLayerNormalization"] == 2 * LAYERS
    assert fused["EmbedLayerNormalization"] == 1
    assert fused.get("Gelu", 0) + fused.get("BiasGelu", 0) == LAYERS
    assert manifest.parity.passed and manifest.parity.reference == "torch"
    graph_ops = ops(minilm_dir)
    assert graph_ops.count("Attention") == LAYERS and "Softmax" not in graph_ops


def test_int8_meets_its_gate_with_the_kept_nodes_recorded(
    minilm_dir: Path, minilm_int8_dir: Path
) -> None:
    int8 = Manifest.load(minilm_int8_dir)
    report = int8.quantization
    assert report is not None
    assert report.gate == PromotionGate(metric="min_cosine", minimum=0.98)
    assert report.gate_measured is not None and report.gate_measured >= 0.98
    assert report.search_evaluations is not None
    assert 1 <= report.search_evaluations <= MAX_EVALUATIONS
    # The kept nodes are nodes of the fp32 graph, and still fp32 ops in the int8 one.
    fp32_nodes = {n.name: n.op_type for n in onnx.load(str(minilm_dir / "model.onnx")).graph.node}
    int8_nodes = {
        n.name: n.op_type for n in onnx.load(str(minilm_int8_dir / "model.onnx")).graph.node
    }
    assert report.kept_fp32 and set(report.kept_fp32) <= set(fp32_nodes)
    assert all(int8_nodes[name] == fp32_nodes[name] for name in report.kept_fp32)
    # ... and every weight node not kept is int8.
    assert ops(minilm_int8_dir).count("QAttention") == LAYERS - sum(
        fp32_nodes[name] == "Attention" for name in report.kept_fp32
    )
    # int8 quantized the optimized graph: the source's report travels with it.
    assert int8.optimization == Manifest.load(minilm_dir).optimization


def test_the_recorded_gate_value_is_what_the_artifact_measures(
    minilm_spec: ModelSpec, minilm_dir: Path, minilm_int8_dir: Path
) -> None:
    report = Manifest.load(minilm_int8_dir).quantization
    assert report is not None and report.gate is not None
    run_fp32 = _onnx_runner(create_session(minilm_dir / "model.onnx"), ["embedding"])
    measure = GateMeasure(report.gate, run_fp32, gate_inputs(minilm_spec), None)
    assert measure(minilm_int8_dir / "model.onnx") == pytest.approx(report.gate_measured, abs=1e-6)


def test_a_gate_out_of_reach_fails_naming_the_best_value(
    minilm_spec: ModelSpec, minilm_dir: Path, tmp_path: Path
) -> None:
    spec = replace(minilm_spec, quantization_gate=PromotionGate(metric="min_cosine", minimum=1.0))
    with pytest.raises(
        ExportError,
        match=r"int8 'minilm' reaches a min cosine of only 0\.\d{4} against fp32 \(need 1\) at"
        r" best \(0 of \d+ weight nodes kept in fp32; 1 candidate graph\(s\) measured\)",
    ):
        quantize_artifact(minilm_dir, tmp_path / "minilm-int8", spec, max_evaluations=1)
    assert list(tmp_path.iterdir()) == []
