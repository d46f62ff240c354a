"""A stand-in project tree for running the Pulumi program without built models or wheels.

Real manifests over a few bytes of "model": the program checks every sha256 before it
declares anything, so these artifacts pass the same integrity checks a built one does.
The packages the program looks up are made by the layers/ builders' own cache code: the
function zip (without bytecode) and model layers really built (from the stand-in files,
in milliseconds), the runtime layer a placeholder zip filed under the key of an empty
lock. Nothing here starts a process: the infra unit tests use it.
"""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import layers.function
from layers.archive import cached_zip
from layers.bytecode import find_interpreter
from layers.function import build_function_zip
from layers.model import build_model_layer
from layers.runtime import (
    environment_pins,
    layer_inputs,
    lock_path,
    runtime_layer_name,
    runtime_requirements,
)
from layers.targets import Target
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
    (root / "pyproject.toml").write_text('[project]\nname = "staged"\ndependencies = []\n')
    for config in configs:
        for model in config.models:
            if not (root / model.artifact_dir / "manifest.json").exists():
                write_artifact(root / model.artifact_dir, model.name)
        for model, function in config.lambda_functions:
            target = Target.of(function.runtime, function.architecture)
            stage_packages(root, target, root / model.artifact_dir, model.delivery)
    return root


def stage_packages(root: Path, target: Target, model_dir: Path, delivery: str | None) -> None:
    """The zips `inferstack up` would have built for one function, without any wheel."""
    cache = package_dir(root)
    with pytest.MonkeyPatch.context() as patch:
        # Compiling bytecode runs the target's python, a process a unit test does not
        # start: the zip is filed under the same key, with sources only.
        patch.setattr(layers.function, "compile_tree", lambda *args: None)
        build_function_zip(target, root, cache)
    if delivery != "s3":  # None: planned, and a test's small model fits in a layer
        build_model_layer(model_dir, cache)
    lock = lock_path(target, runtime_requirements(root), environment_pins(), cache)
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("[]\n")
    inputs = layer_inputs(target, [], find_interpreter(target.python_version))
    cached_zip(cache, runtime_layer_name(target), inputs, _placeholder_layer)


def package_dir(root: Path) -> Path:
    return root / "build" / "package"


def _placeholder_layer(out: Path) -> dict[str, Any]:
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("python/placeholder.py", "# the runtime's dependencies go here\n")
    return {}
