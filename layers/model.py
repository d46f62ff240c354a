"""The model layer: an artifact directory as `models/<name>/...` (Lambda mounts it at
/opt/models/<name>), or the S3 objects for delivery at cold start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from layers.archive import Built, cached_zip, find_zip, write_zip
from model_runtime.manifest import MANIFEST_FILE, Manifest, sha256_file, verify_artifact

LAYER_ROOT = "models"
MOUNT = "/opt/models"


def model_files(model_dir: Path) -> tuple[Manifest, dict[str, Path]]:
    """The verified artifact's files (listed ones and the manifest), by name."""
    manifest = Manifest.load(model_dir)
    # Never package a tampered or partial artifact.
    verify_artifact(model_dir, manifest, manifest.files_for("onnxruntime"))
    # The files onnxruntime serves with: a torch copy of the model stays out of Lambda.
    files = {name: model_dir / name for name in sorted(manifest.files_for("onnxruntime"))}
    files[MANIFEST_FILE] = model_dir / MANIFEST_FILE
    return manifest, files


def build_model_layer(model_dir: Path, cache_dir: Path, *, force: bool = False) -> Built:
    manifest, files = model_files(model_dir)
    inputs = _inputs(files)

    def build(out: Path) -> dict[str, Any]:
        root = f"{LAYER_ROOT}/{manifest.name}"
        write_zip({f"{root}/{name}": path for name, path in files.items()}, out)
        return {"model": manifest.name, "mount": f"{MOUNT}/{manifest.name}"}

    return cached_zip(cache_dir, model_layer_name(manifest.name), inputs, build, force=force)


def find_model_layer(model_dir: Path, cache_dir: Path) -> Built | None:
    """The model layer of the artifact as it is now, if built (see build_model_layer)."""
    manifest, files = model_files(model_dir)
    return find_zip(cache_dir, model_layer_name(manifest.name), _inputs(files))


def model_layer_name(model: str) -> str:
    return f"model-{model}"


def _inputs(files: dict[str, Path]) -> dict[str, str]:
    return {name: sha256_file(path) for name, path in files.items()}


def s3_objects(model_dir: Path, prefix: str) -> dict[str, Path]:
    """S3 key -> file for delivery by `MODEL_URI=s3://<bucket>/<prefix>`: the manifest
    and every file it lists, under a prefix that should carry the content hash."""
    _, files = model_files(model_dir)
    return {f"{prefix.strip('/')}/{name}": path for name, path in files.items()}
