"""An artifact whose weights live in ONNX external data (`model.onnx.data`), as a model
over protobuf's 2 GB limit is written: the tiny model, forced out by a threshold of 0."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnx

from model_build.onnx_files import save_onnx
from model_runtime.manifest import MANIFEST_FILE, MODEL_FILE, Manifest, hash_files

DATA_FILE = f"{MODEL_FILE}.data"


def external_data_artifact(source: Path, directory: Path) -> Path:
    """A copy of the artifact in `source` with its weights moved to `model.onnx.data`,
    both files hashed in the manifest."""
    shutil.copytree(source, directory)
    names = save_onnx(
        onnx.load(str(source / MODEL_FILE)), directory / MODEL_FILE, external_threshold_bytes=0
    )
    assert names == [MODEL_FILE, DATA_FILE]
    manifest = Manifest.load(directory)
    others = [name for name in manifest.files if name != MODEL_FILE]
    files = hash_files(directory, [*names, *others])
    manifest.model_copy(update={"files": files}).write(directory)
    assert (directory / MANIFEST_FILE).is_file()
    return directory
