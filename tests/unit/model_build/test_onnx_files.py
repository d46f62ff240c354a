"""ONNX external data: a model over the threshold keeps its weights in `<model>.data`
beside the graph; both files are listed (model first) and onnxruntime loads them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from model_build.onnx_files import onnx_file_names, save_onnx
from model_runtime.backends.onnxruntime_backend import create_session
from model_runtime.manifest import MODEL_FILE


@pytest.fixture
def model(tiny_dir: Path) -> onnx.ModelProto:
    return onnx.load(str(tiny_dir / MODEL_FILE))


def outputs(path: Path, images: np.ndarray) -> list[np.ndarray]:
    return list(create_session(path, threads=1).run(None, {"image": images}))


def test_a_model_under_the_threshold_is_one_file(model: onnx.ModelProto, tmp_path: Path) -> None:
    path = tmp_path / MODEL_FILE
    assert save_onnx(model, path) == [MODEL_FILE]
    assert sorted(p.name for p in tmp_path.iterdir()) == [MODEL_FILE]
    assert onnx_file_names(path) == [MODEL_FILE]


def test_a_model_over_the_threshold_keeps_its_weights_beside_it(
    model: onnx.ModelProto, tmp_path: Path, tiny_dir: Path, tiny_inputs: np.ndarray
) -> None:
    path = tmp_path / MODEL_FILE
    weights = sum(len(t.raw_data) for t in model.graph.initializer)
    # Small tensors (the bias) stay in the graph.
    moved = sum(len(t.raw_data) for t in model.graph.initializer if len(t.raw_data) >= 1024)
    assert moved > 0
    assert save_onnx(model, path, external_threshold_bytes=0) == [MODEL_FILE, "model.onnx.data"]
    assert onnx_file_names(path) == [MODEL_FILE, "model.onnx.data"]
    assert (tmp_path / "model.onnx.data").stat().st_size >= moved
    assert path.stat().st_size < moved  # the graph no longer carries them
    # Readable like the graph (onnx makes it owner-only).
    assert (tmp_path / "model.onnx.data").stat().st_mode & 0o777 == path.stat().st_mode & 0o777
    # The caller's proto still holds its weights, in memory.
    assert all(t.data_location == onnx.TensorProto.DEFAULT for t in model.graph.initializer)
    assert sum(len(t.raw_data) for t in model.graph.initializer) == weights
    for got, want in zip(
        outputs(path, tiny_inputs), outputs(tiny_dir / MODEL_FILE, tiny_inputs), strict=True
    ):
        np.testing.assert_array_equal(got, want)


def test_saving_again_replaces_the_data_file(model: onnx.ModelProto, tmp_path: Path) -> None:
    path = tmp_path / MODEL_FILE
    save_onnx(model, path, external_threshold_bytes=0)
    size = (tmp_path / "model.onnx.data").stat().st_size
    save_onnx(model, path, external_threshold_bytes=0)
    assert (tmp_path / "model.onnx.data").stat().st_size == size
    # Back under the threshold: no stale data file is left to be listed or shipped.
    assert save_onnx(model, path) == [MODEL_FILE]
    assert sorted(p.name for p in tmp_path.iterdir()) == [MODEL_FILE]


def test_external_data_outside_the_directory_is_refused(
    model: onnx.ModelProto, tmp_path: Path
) -> None:
    path = tmp_path / MODEL_FILE
    save_onnx(model, path, external_threshold_bytes=0)
    graph = onnx.load(str(path), load_external_data=False)
    for tensor in graph.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../elsewhere.data"
    onnx.save(graph, str(path))
    with pytest.raises(ValueError, match="outside its directory"):
        onnx_file_names(path)
