"""onnxruntime's transformer optimizer on a GELU subgraph built here: fused in place,
counted in the report, still exact; a graph it cannot read is an ExportError. Export of
a small torch module declared a transformer serves the fused graph, parity-checked."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from model_build.errors import ExportError
from model_build.export import export_model
from model_build.optimize import optimize_transformer
from model_build.spec import ModelSpec, TransformerInfo
from model_runtime.backends.onnxruntime_backend import create_session
from model_runtime.manifest import Manifest

BERT = TransformerInfo(model_type="bert", num_heads=2, hidden_size=8)


def erf_gelu(path: Path) -> Path:
    """y = 0.5 * x * (1 + erf(x / sqrt 2)), as torch.onnx exports nn.GELU."""
    nodes = [
        helper.make_node("Div", ["x", "sqrt2"], ["scaled"], name="div"),
        helper.make_node("Erf", ["scaled"], ["erf"], name="erf"),
        helper.make_node("Add", ["erf", "one"], ["shifted"], name="add"),
        helper.make_node("Mul", ["x", "shifted"], ["product"], name="mul"),
        helper.make_node("Mul", ["product", "half"], ["y"], name="half_mul"),
    ]
    graph = helper.make_graph(
        nodes,
        "gelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
        initializer=[
            numpy_helper.from_array(np.array(math.sqrt(2.0), np.float32), "sqrt2"),
            numpy_helper.from_array(np.array(1.0, np.float32), "one"),
            numpy_helper.from_array(np.array(0.5, np.float32), "half"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_the_gelu_subgraph_becomes_one_op(tmp_path: Path) -> None:
    path = erf_gelu(tmp_path / "model.onnx")
    report = optimize_transformer(path, BERT, "gelu")

    assert report.method == "onnxruntime-transformers" and report.model_type == "bert"
    assert report.opt_level == 0
    assert report.fused_ops == {"Gelu": 1}  # counts of zero are left out
    model = onnx.load(str(path))
    assert [node.op_type for node in model.graph.node] == ["Gelu"]
    assert "com.microsoft" in {opset.domain for opset in model.opset_import}
    x = np.linspace(-4, 4, 32, dtype=np.float32).reshape(4, 8)
    expected = 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    (got,) = create_session(path).run(None, {"x": x})
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_the_optimizer_prints_nothing_to_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    optimize_transformer(erf_gelu(tmp_path / "model.onnx"), BERT, "gelu")
    assert capsys.readouterr().out == ""


def test_a_graph_the_optimizer_cannot_read_is_an_export_error(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not an onnx graph")
    with pytest.raises(
        ExportError, match=r"transformer optimizer failed on 'broken' \(bert, 2 heads"
    ):
        optimize_transformer(path, BERT, "broken")


class Gelu(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.gelu(x) * 2


class BatchOfOneGelu(torch.nn.Module):
    """Python control flow on the batch size: tracing bakes in the example's branch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.nn.functional.gelu(x)
        if x.shape[0] == 1:
            return y * 2
        return y


def gelu_spec(module: torch.nn.Module) -> ModelSpec:
    example = np.random.default_rng(0).uniform(-3, 3, (2, 8)).astype(np.float32)
    return ModelSpec(
        name="gelu",
        module=module,
        example_inputs={"x": example},
        output_names=["y"],
        transformer=BERT,
    )


def test_export_serves_the_fused_graph_and_records_it(tmp_path: Path) -> None:
    manifest = export_model(gelu_spec(Gelu()), tmp_path / "gelu", torch_format=None)

    assert manifest.optimization is not None
    assert manifest.optimization.fused_ops == {"Gelu": 1}
    assert manifest.parity.passed  # against torch, on the fused graph
    assert Manifest.load(tmp_path / "gelu") == manifest
    ops = {node.op_type for node in onnx.load(str(tmp_path / "gelu" / "model.onnx")).graph.node}
    assert "Gelu" in ops and "Erf" not in ops


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_a_fused_graph_that_fails_parity_says_it_was_fused(tmp_path: Path) -> None:
    with pytest.raises(
        ExportError,
        match=r"export of 'gelu' failed parity \(the graph fused by onnxruntime's transformer"
        r" optimizer: 1 Gelu\): outputs differ from torch",
    ):
        export_model(gelu_spec(BatchOfOneGelu()), tmp_path / "gelu", torch_format=None)
    assert list(tmp_path.iterdir()) == []
