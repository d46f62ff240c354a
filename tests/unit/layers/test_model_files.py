"""A model with ONNX external data ships every file: the layer zip and the S3 objects hold
`model.onnx.data` beside the graph, as the manifest lists it."""

from __future__ import annotations

import zipfile
from pathlib import Path

from layers.model import build_model_layer, s3_objects
from model_runtime.manifest import MANIFEST_FILE, MODEL_FILE
from tests.support.external_data import DATA_FILE, external_data_artifact


def test_the_layer_and_the_s3_objects_carry_the_data_file(tiny_dir: Path, tmp_path: Path) -> None:
    directory = external_data_artifact(tiny_dir, tmp_path / "tiny")
    built = build_model_layer(directory, tmp_path / "cache")
    with zipfile.ZipFile(built.path) as archive:
        names = sorted(archive.namelist())
    assert names == [
        f"models/tiny/{name}" for name in sorted([MANIFEST_FILE, MODEL_FILE, DATA_FILE])
    ]
    objects = s3_objects(directory, "models/tiny/abc")
    assert sorted(objects) == [
        f"models/tiny/abc/{name}" for name in sorted([MANIFEST_FILE, MODEL_FILE, DATA_FILE])
    ]
    assert objects[f"models/tiny/abc/{DATA_FILE}"] == directory / DATA_FILE
