"""The int8 search on a three-layer MLP built here (no training): the middle layer reads
an activation with one huge channel, which per-tensor int8 cannot resolve, so it is the
node the search must keep in fp32, and the only one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from model_build.export import _onnx_runner
from model_build.quantize import _quantize
from model_build.quantize_search import (
    GateMeasure,
    gate_batches,
    min_cosine,
    rank_by_isolated_error,
    restore_fp32,
    search_fp32_nodes,
    weight_nodes,
)
from model_runtime.backends.onnxruntime_backend import create_session
from model_runtime.manifest import PromotionGate

WIDTH = 16
NODES = ["first", "middle", "last"]


def mlp(path: Path, outlier: float = 1000.0) -> Path:
    rng = np.random.default_rng(0)
    first = np.eye(WIDTH, dtype=np.float32)
    first[0, 0] = outlier  # channel 0 of the hidden activation dwarfs the others
    middle = rng.normal(0, 1, (WIDTH, WIDTH)).astype(np.float32)
    middle[0] = 0.0  # ... and the middle layer ignores it: only the small channels count
    last = rng.normal(0, 1, (WIDTH, 4)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w_first"], ["h1"], name="first"),
            helper.make_node("MatMul", ["h1", "w_middle"], ["h2"], name="middle"),
            helper.make_node("MatMul", ["h2", "w_last"], ["y"], name="last"),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        initializer=[
            numpy_helper.from_array(first, "w_first"),
            numpy_helper.from_array(middle, "w_middle"),
            numpy_helper.from_array(last, "w_last"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def inputs(rows: int = 32) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(1).uniform(-1, 1, (rows, WIDTH)).astype(np.float32)}


def measure(fp32: Path, minimum: float) -> GateMeasure:
    run_fp32 = _onnx_runner(create_session(fp32), ["y"])
    return GateMeasure(
        PromotionGate(metric="min_cosine", minimum=minimum), run_fp32, inputs(), None
    )


def quantizer(fp32: Path, calls: list[Path]):  # type: ignore[no-untyped-def]
    def quantize(path: Path) -> None:
        calls.append(path)
        _quantize(fp32, path, per_channel=True, name="mlp")

    return quantize


def search(  # type: ignore[no-untyped-def]
    tmp_path: Path, minimum: float, max_evaluations: int = 20, outlier: float = 1000.0
):
    fp32 = mlp(tmp_path / "fp32.onnx", outlier)
    out = tmp_path / "out" / "model.onnx"
    out.parent.mkdir()
    calls: list[Path] = []
    result = search_fp32_nodes(
        fp32, quantizer(fp32, calls), measure(fp32, minimum), out, max_evaluations=max_evaluations
    )
    return fp32, out, result, calls


def test_the_search_keeps_only_the_node_int8_breaks(tmp_path: Path) -> None:
    fp32, out, result, calls = search(tmp_path, minimum=0.9)

    assert result.passed and result.kept == ["middle"]
    assert result.value >= 0.9 and result.candidates == 3
    assert len(calls) == 1  # onnxruntime quantized the graph once
    # Written is the measured graph: the middle MatMul in fp32, the others int8.
    graph = onnx.load(str(out)).graph
    assert [n.name for n in graph.node if n.op_type == "MatMul"] == ["middle"]
    assert sum(n.op_type == "MatMulInteger" for n in graph.node) == 2
    assert measure(fp32, 0.9)(out) == pytest.approx(result.value)
    # Nothing of the search is left beside the artifact.
    assert [p.name for p in out.parent.iterdir()] == ["model.onnx"]


def test_a_gate_int8_meets_as_is_costs_one_evaluation(tmp_path: Path) -> None:
    _, out, result, _ = search(tmp_path, minimum=0.9, outlier=1.0)
    assert (result.passed, result.kept, result.evaluations) == (True, [], 1)
    assert "MatMul" not in {n.op_type for n in onnx.load(str(out)).graph.node}


def test_a_gate_no_candidate_meets_reports_the_best_reached(tmp_path: Path) -> None:
    # Keeping all three would be no int8 at all: the search stops at two.
    _, out, result, _ = search(tmp_path, minimum=1.0)
    assert not result.passed and not out.exists()
    assert 0.99 < result.value < 1.0 and len(result.kept) <= 2
    # Each node set is measured once: all-int8, then counts 1 and 2 of the ranking.
    assert result.evaluations == 3


def test_the_evaluations_are_bounded(tmp_path: Path) -> None:
    _, out, result, _ = search(tmp_path, minimum=0.9, max_evaluations=1)
    assert not result.passed and result.evaluations == 1 and not out.exists()
    assert result.kept == [] and result.value < 0.9


def test_the_ranking_puts_the_broken_node_first(tmp_path: Path) -> None:
    fp32_path = mlp(tmp_path / "fp32.onnx")
    _quantize(fp32_path, tmp_path / "int8.onnx", per_channel=True, name="mlp")
    fp32, int8 = onnx.load(str(fp32_path)), onnx.load(str(tmp_path / "int8.onnx"))
    ranked = rank_by_isolated_error(fp32, int8, weight_nodes(fp32), inputs(), tmp_path)
    assert ranked[0] == "middle" and sorted(ranked) == sorted(NODES)
    assert [p.name for p in tmp_path.iterdir()] == ["fp32.onnx", "int8.onnx"]


def test_restoring_every_node_gives_back_the_fp32_graph(tmp_path: Path) -> None:
    fp32_path = mlp(tmp_path / "fp32.onnx")
    _quantize(fp32_path, tmp_path / "int8.onnx", per_channel=True, name="mlp")
    fp32, int8 = onnx.load(str(fp32_path)), onnx.load(str(tmp_path / "int8.onnx"))
    restored = restore_fp32(int8, fp32, frozenset(NODES))
    assert [n.name for n in restored.graph.node] == NODES
    assert {t.name for t in restored.graph.initializer} == {"w_first", "w_middle", "w_last"}


def test_cosine_batches_cover_rows_alone_eights_and_all_cut_to_their_tokens() -> None:
    mask = np.zeros((10, 6), np.int64)
    for row, length in enumerate([1, 2, 3, 4, 5, 6, 2, 2, 3, 1]):
        mask[row, :length] = 1
    tokens = {"input_ids": mask * 7, "attention_mask": mask}
    gate = PromotionGate(metric="min_cosine", minimum=0.98)
    batches = gate_batches(gate, tokens)
    assert [len(b["input_ids"]) for b in batches] == [1] * 10 + [8, 2] + [10]
    assert [b["input_ids"].shape[1] for b in batches[:10]] == [1, 2, 3, 4, 5, 6, 2, 2, 3, 1]
    assert batches[10]["attention_mask"].shape == (8, 6) and batches[11]["input_ids"].shape == (
        2,
        3,
    )
    agreement = PromotionGate(metric="top1_agreement", minimum=0.9)
    assert gate_batches(agreement, tokens) == [tokens]


def test_min_cosine_counts_the_worst_row_and_zero_rows_as_equal() -> None:
    want = {"y": np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])}
    got = {"y": np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])}
    assert min_cosine([want], [got]) == pytest.approx(np.sqrt(0.5))


def test_an_agreement_gate_needs_a_classifier_output() -> None:
    from model_build.errors import ExportError

    with pytest.raises(ExportError, match="needs a classifier output"):
        GateMeasure(
            PromotionGate(metric="top1_agreement", minimum=0.9), lambda b: b, inputs(), None
        )


def test_the_ranking_copes_with_quantizer_nodes_shared_by_two_candidates(tmp_path: Path) -> None:
    # Both MatMuls read x: onnxruntime quantizes x once, for both.
    rng = np.random.default_rng(2)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w_a"], ["a"], name="a"),
            helper.make_node("MatMul", ["x", "w_b"], ["b"], name="b"),
            helper.make_node("Add", ["a", "b"], ["y"]),
        ],
        "fork",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        initializer=[
            numpy_helper.from_array(rng.normal(0, 1, (WIDTH, 4)).astype(np.float32), "w_a"),
            numpy_helper.from_array(rng.normal(0, 1, (WIDTH, 4)).astype(np.float32), "w_b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "fp32.onnx"))
    _quantize(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", per_channel=True, name="fork")
    int8 = onnx.load(str(tmp_path / "int8.onnx"))
    assert sum(n.op_type == "DynamicQuantizeLinear" for n in int8.graph.node) == 1
    ranked = rank_by_isolated_error(model, int8, ["a", "b"], inputs(), tmp_path)
    assert sorted(ranked) == ["a", "b"]
