"""A stand-in project tree for running the Pulumi program without built models.

Real manifests over a few bytes of "model": the program checks every sha256 before it
declares anything, so these artifacts pass the same integrity checks a built one does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from infra.bundles import runtime_layer_dir
from model_runtime.manifest import MODEL_FILE, Manifest, hash_files
from stacks.schema import StackConfig


def write_artifact(directory: Path, name: str) -> Manifest:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_bytes(b"not really onnx: " + name.encode())
    parity = {
        "reference": "torch",
        "batch_sizes": [1],
        "samples": 1,
        "atol": 1e-5,
        "rtol": 1e-4,
        "max_abs_error": 0.0,
        "max_rel_error": 0.0,
        "outputs": {},
        "passed": True,
    }
    manifest = Manifest.model_validate(
        {
            "name": name,
            "version": "1",
            "created_at": datetime(2026, 1, 1, tzinfo=UTC),
            "files": hash_files(directory, [MODEL_FILE]),
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 64]}],
            "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}],
            "opset": 17,
            "exporter": {
                "name": "fake",
                "torch_version": "0",
                "onnx_version": "0",
                "onnxruntime_version": "0",
            },
            "max_batch_size": 64,
            "parity": parity,
        }
    )
    manifest.write(directory)
    return manifest


def stage_project(root: Path, configs: list[StackConfig]) -> Path:
    """Everything the program reads from disk for these stacks, under `root`."""
    for package in ("functions", "model_runtime"):
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").write_text("")
    (root / "functions" / "handler.py").write_text("def handler(event, context): ...\n")
    for config in configs:
        for model in config.models:
            if not (root / model.artifact_dir / "manifest.json").exists():
                write_artifact(root / model.artifact_dir, model.name)
        for model in config.lambda_models:
            assert model.lambda_ is not None
            layer = runtime_layer_dir(root, model.lambda_.runtime, model.lambda_.architecture)
            (layer / "python").mkdir(parents=True, exist_ok=True)
    return root
