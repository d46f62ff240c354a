"""The function zip (only what handlers import) and the model layer."""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from layers.archive import Built, sha256_file
from layers.errors import NotBuiltError
from layers.function import build_function_zip, find_function_zip, function_files
from layers.model import build_model_layer, find_model_layer, s3_objects
from layers.package import package, project_root
from layers.runtime import find_runtime_layer
from layers.targets import Target
from model_runtime.errors import ArtifactIntegrityError
from model_runtime.manifest import Manifest


def test_function_code_is_the_handlers_import_closure() -> None:
    files = set(function_files(project_root()))
    for needed in (
        "functions/handler.py",
        "model_runtime/app.py",
        "model_runtime/engine.py",
        "model_runtime/preprocess.py",
        "model_runtime/delivery.py",
        "model_runtime/settings.py",
    ):
        assert needed in files
    # Build-time code (model_build/: export, quantize, torch export, reference models)
    # stays out; so does everything outside the two packages.
    assert not any(name.startswith("model_build/") for name in files)
    assert not any("reference_models" in name for name in files)
    assert {name.split("/")[0] for name in files} == {"functions", "model_runtime"}


def test_function_zip_is_deterministic_with_target_bytecode(
    tmp_path: Path, python312: Path
) -> None:
    target = Target.of("python3.12", "x86_64")
    first = build_function_zip(target, project_root(), tmp_path / "a")
    second = build_function_zip(target, project_root(), tmp_path / "b")
    assert not first.cached and not second.cached
    assert sha256_file(first.path) == sha256_file(second.path)
    assert build_function_zip(target, project_root(), tmp_path / "a").cached
    with zipfile.ZipFile(first.path) as zf:
        names = zf.namelist()
    assert "functions/__pycache__/handler.cpython-312.pyc" in names
    assert not any("cpython-311" in name for name in names)


def test_model_layer_mounts_at_opt_models_name(digits_dir: Path, tmp_path: Path) -> None:
    built = build_model_layer(digits_dir, tmp_path)
    with zipfile.ZipFile(built.path) as zf:
        names = zf.namelist()
    assert names == ["models/digits/manifest.json", "models/digits/model.onnx"]
    again = build_model_layer(digits_dir, tmp_path)
    assert again.cached and again.status.startswith("unchanged")


def test_model_layer_refuses_a_tampered_artifact(digits_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "digits"
    shutil.copytree(digits_dir, copy)
    with open(copy / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactIntegrityError, match=r"model\.onnx"):
        build_model_layer(copy, tmp_path / "cache")


def test_s3_objects_are_content_addressed(minilm_int8_dir: Path) -> None:
    manifest = Manifest.load(minilm_int8_dir)
    prefix = f"models/minilm-int8/{manifest.content_hash()}"
    objects = s3_objects(minilm_int8_dir, prefix)
    assert sorted(objects) == [
        f"{prefix}/manifest.json",
        f"{prefix}/model.onnx",
        f"{prefix}/tokenizer.json",
    ]


def test_look_ups_find_exactly_what_was_built_and_never_build(
    digits_dir: Path, runtime_layer: Built, cache_dir: Path, tmp_path: Path
) -> None:
    target = Target.of("python3.12", "x86_64")
    cache = tmp_path / "cache"
    with pytest.raises(NotBuiltError, match=r"the function zip, .*the model layer of digits"):
        package(digits_dir, root=project_root(), cache_dir=cache, build=False)
    assert not cache.exists() or not any(cache.glob("*.zip"))  # looked up, nothing built

    function = build_function_zip(target, project_root(), cache)
    layer = build_model_layer(digits_dir, cache)
    assert find_function_zip(target, project_root(), cache) == replace(function, cached=True)
    assert find_model_layer(digits_dir, cache) == replace(layer, cached=True)
    # The shared cache's runtime layer, found by its lock (no pip, no network).
    assert find_runtime_layer(target, project_root(), cache_dir) == replace(
        runtime_layer, cached=True
    )
