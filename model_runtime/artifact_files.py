"""A model artifact's file names and file hashes, without pydantic: the early session
(model_runtime.early_open) needs them before the manifest's models are imported, and the
manifest module re-exports them."""

from __future__ import annotations

import hashlib
from pathlib import Path

MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.onnx"


def external_data_name(model_file: str) -> str:
    """Where an exported ONNX model's weights go when the graph is too big for one file
    (`model_build.onnx_files.save_onnx`); the graph names it, onnxruntime reads it."""
    return f"{model_file}.data"


def sha256_file(path: Path) -> str:
    """By blocks; hashlib releases the GIL while it hashes them."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
