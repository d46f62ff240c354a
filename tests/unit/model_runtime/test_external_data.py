"""A model whose weights live in `model.onnx.data` beside the graph: verified (both files
hashed), downloaded and served like any other; onnxruntime finds the data by the graph's
directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model_runtime.delivery import Retry, materialize
from model_runtime.engine import Engine
from model_runtime.errors import ArtifactError, ArtifactIntegrityError
from model_runtime.manifest import MANIFEST_FILE, MODEL_FILE, BackendArtifact, Manifest
from tests.support.external_data import DATA_FILE, external_data_artifact
from tests.unit.model_runtime.test_delivery import PREFIX, URI, FakeReader


@pytest.fixture
def external_dir(tiny_dir: Path, tmp_path: Path) -> Path:
    return external_data_artifact(tiny_dir, tmp_path / "tiny-external")


def test_the_manifest_lists_and_serves_both_files(external_dir: Path) -> None:
    manifest = Manifest.load(external_dir)
    assert sorted(manifest.files) == [MODEL_FILE, DATA_FILE]
    assert sorted(manifest.files_for("onnxruntime")) == [MODEL_FILE, DATA_FILE]


def test_a_torch_server_needs_neither_the_graph_nor_its_data(external_dir: Path) -> None:
    manifest = Manifest.load(external_dir)
    torch_file = "model.pt2"
    files = {**manifest.files, torch_file: manifest.files[MODEL_FILE]}
    backends = [
        BackendArtifact(backend="onnxruntime", file=MODEL_FILE, format="onnx"),
        BackendArtifact(backend="torch", file=torch_file, format="torch_export"),
    ]
    both = manifest.model_copy(update={"files": files, "backends": backends})
    assert both.files_for("torch") == [torch_file]
    assert sorted(both.files_for("onnxruntime")) == [MODEL_FILE, DATA_FILE]


def test_it_loads_and_answers_like_the_one_file_model(
    external_dir: Path, tiny_engine: Engine, tiny_inputs: np.ndarray
) -> None:
    engine = Engine.load(external_dir)
    got = engine.infer({"image": tiny_inputs})
    want = tiny_engine.infer({"image": tiny_inputs})
    for name, array in want.items():
        np.testing.assert_array_equal(got[name], array)


def test_a_tampered_data_file_is_refused_by_name(external_dir: Path) -> None:
    data = external_dir / DATA_FILE
    content = bytearray(data.read_bytes())
    content[0] ^= 1
    data.write_bytes(bytes(content))
    with pytest.raises(ArtifactIntegrityError) as caught:
        Engine.load(external_dir)
    assert str(caught.value).startswith(f"model file {data} is corrupt or was modified")


def test_a_missing_data_file_is_named(external_dir: Path) -> None:
    (external_dir / DATA_FILE).unlink()
    with pytest.raises(ArtifactError, match=rf"{DATA_FILE} is listed in the manifest but missing"):
        Engine.load(external_dir)


def test_delivery_downloads_the_data_file_too(
    external_dir: Path, tmp_path: Path, tiny_inputs: np.ndarray
) -> None:
    names = (MANIFEST_FILE, MODEL_FILE, DATA_FILE)
    reader = FakeReader({f"{PREFIX}/{name}": (external_dir / name).read_bytes() for name in names})
    directory = materialize(URI, cache_dir=tmp_path / "cache", reader=reader, retry=Retry())
    assert sorted(reader.calls) == sorted(f"{PREFIX}/{name}" for name in names)
    assert (directory / DATA_FILE).read_bytes() == (external_dir / DATA_FILE).read_bytes()
    assert Engine.load(directory).infer({"image": tiny_inputs})["label"].shape == (32,)
