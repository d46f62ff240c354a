"""Tiny ONNX models built with `onnx.helper`: no torch, no training.

The tiny classifier has the digits reference model's interface (input `image` FP32
[-1, 1, 8, 8]; outputs `probabilities` FP32 [-1, 10] and `label` INT64 [-1]), so the
serving code sees the same tensors, datatypes and batch axis, while a unit test builds it
in milliseconds. The weights are fixed (seeded), so its predictions are deterministic.
The pair model has two inputs; the lookup model gathers rows by id; the double model is a
graph no manifest here describes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

from model_runtime.manifest import (
    MODEL_FILE,
    ExporterInfo,
    Manifest,
    ParityReport,
    TensorSpec,
    hash_files,
)

NAME = "tiny"
CLASSES = 10
MAX_BATCH_SIZE = 64
OPSET = 17
SEED = 7


def tiny_weights(seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    weight = rng.normal(0.0, 0.5, size=(64, CLASSES)).astype(np.float32)
    bias = rng.normal(0.0, 0.1, size=(CLASSES,)).astype(np.float32)
    return weight, bias


def tiny_graph(seed: int = SEED) -> onnx.ModelProto:
    weight, bias = tiny_weights(seed)
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "weight"], ["logits_raw"]),
        helper.make_node("Add", ["logits_raw", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", CLASSES]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
        ],
        initializer=[
            numpy_helper.from_array(weight, "weight"),
            numpy_helper.from_array(bias, "bias"),
        ],
    )
    return _model(graph)


def reference_outputs(images: np.ndarray, seed: int = SEED) -> dict[str, np.ndarray]:
    """What the graph computes, in numpy: the expected answer for any input."""
    weight, bias = tiny_weights(seed)
    logits = images.reshape(len(images), -1).astype(np.float32) @ weight + bias
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return {
        "probabilities": shifted / shifted.sum(axis=1, keepdims=True),
        "label": logits.argmax(axis=1).astype(np.int64),
    }


def build_tiny_model(
    directory: Path,
    *,
    name: str = NAME,
    version: str = "1",
    max_batch_size: int = MAX_BATCH_SIZE,
    seed: int = SEED,
) -> Path:
    """Write `{model.onnx, manifest.json}` into `directory` and return it."""
    return _write_artifact(
        Path(directory),
        tiny_graph(seed),
        name=name,
        version=version,
        inputs=[TensorSpec(name="image", datatype="FP32", shape=[-1, 1, 8, 8])],
        outputs=[
            TensorSpec(name="probabilities", datatype="FP32", shape=[-1, CLASSES]),
            TensorSpec(name="label", datatype="INT64", shape=[-1]),
        ],
        max_batch_size=max_batch_size,
        labels=[str(digit) for digit in range(CLASSES)],
    )


def pair_graph() -> onnx.ModelProto:
    """`sum` = a + b and `nan_count` = NaNs per row of a, over a, b FP32 [batch, 4]."""
    nodes = [
        helper.make_node("Add", ["a", "b"], ["sum"]),
        helper.make_node("IsNaN", ["a"], ["is_nan"]),
        helper.make_node("Cast", ["is_nan"], ["nan_flags"], to=TensorProto.INT64),
        helper.make_node("ReduceSum", ["nan_flags", "row_axis"], ["nan_count"], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "pair",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 4]),
        ],
        [
            helper.make_tensor_value_info("sum", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("nan_count", TensorProto.INT64, ["batch"]),
        ],
        initializer=[numpy_helper.from_array(np.array([1], np.int64), "row_axis")],
    )
    return _model(graph)


def build_pair_model(directory: Path) -> Path:
    """The two-input model as an artifact named `pair`, batch limit 8."""
    return _write_artifact(
        Path(directory),
        pair_graph(),
        name="pair",
        version="1",
        inputs=[
            TensorSpec(name="a", datatype="FP32", shape=[-1, 4]),
            TensorSpec(name="b", datatype="FP32", shape=[-1, 4]),
        ],
        outputs=[
            TensorSpec(name="sum", datatype="FP32", shape=[-1, 4]),
            TensorSpec(name="nan_count", datatype="INT64", shape=[-1]),
        ],
        max_batch_size=8,
    )


def build_lookup_model(directory: Path, rows: int = 5) -> Path:
    """`vectors` = rows of a [rows, 4] table at INT64 `ids` [batch]: an embedding lookup,
    which onnxruntime refuses (INVALID_ARGUMENT) for an id outside the table."""
    table = np.arange(rows * 4, dtype=np.float32).reshape(rows, 4)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["vectors"], axis=0)],
        "lookup",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch"])],
        [helper.make_tensor_value_info("vectors", TensorProto.FLOAT, ["batch", 4])],
        initializer=[numpy_helper.from_array(table, "table")],
    )
    return _write_artifact(
        Path(directory),
        _model(graph),
        name="lookup",
        version="1",
        inputs=[TensorSpec(name="ids", datatype="INT64", shape=[-1])],
        outputs=[TensorSpec(name="vectors", datatype="FP32", shape=[-1, 4])],
        max_batch_size=8,
    )


def save_double_model(path: Path) -> Path:
    """A bare `model.onnx`: y = 2x over x FP32 [batch, 3]."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["y"])],
        "double",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(np.array(2.0, np.float32), "two")],
    )
    onnx.save(_model(graph), str(path))
    return path


def tiny_images(count: int, seed: int = 0) -> np.ndarray:
    """Deterministic inputs in the digits range (0..16), (count, 1, 8, 8) float32."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 16.0, size=(count, 1, 8, 8)).astype(np.float32)


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _write_artifact(
    directory: Path,
    model: onnx.ModelProto,
    *,
    name: str,
    version: str,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    max_batch_size: int,
    labels: list[str] | None = None,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(directory / MODEL_FILE))
    parity = ParityReport(
        reference="numpy (tests/support/tiny_model.py)",
        batch_sizes=[1],
        samples=1,
        atol=1e-5,
        rtol=1e-4,
        max_abs_error=0.0,
        max_rel_error=0.0,
        outputs={},
        passed=True,
    )
    Manifest(
        name=name,
        version=version,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        files=hash_files(directory, [MODEL_FILE]),
        inputs=inputs,
        outputs=outputs,
        opset=OPSET,
        exporter=ExporterInfo(
            name="onnx.helper",
            torch_version="none",
            onnx_version=onnx.__version__,
            onnxruntime_version=onnxruntime.__version__,
        ),
        max_batch_size=max_batch_size,
        parity=parity,
        labels=labels,
    ).write(directory)
    return directory
