"""The runtime layer built from manylinux wheels for python3.12 on x86_64 and arm64."""

from __future__ import annotations

import zipfile
from pathlib import Path

from layers.archive import Built, sha256_file
from layers.elf import MACHINES, zip_native_files
from layers.package import project_root
from layers.runtime import build_runtime_layer
from layers.targets import Target

MB = 1_048_576


def top_level(built: Built) -> set[str]:
    with zipfile.ZipFile(built.path) as zf:
        return {name.split("/")[1] for name in zf.namelist()}


def names(built: Built) -> list[str]:
    with zipfile.ZipFile(built.path) as zf:
        return zf.namelist()


def test_layer_holds_what_the_runtime_imports(runtime_layer: Built) -> None:
    packages = top_level(runtime_layer)
    for needed in ("onnxruntime", "numpy", "fastapi", "starlette", "pydantic", "pydantic_core"):
        assert needed in packages
    for needed in ("mangum", "tokenizers", "anyio", "typing_extensions.py"):
        assert needed in packages
    assert all(name.startswith("python/") for name in names(runtime_layer))


def test_layer_leaves_out_what_lambda_has_and_nothing_imports(runtime_layer: Built) -> None:
    packages = top_level(runtime_layer)
    for provided in ("boto3", "botocore", "s3transfer"):
        assert provided not in packages
    assert "huggingface_hub" not in packages and "bin" not in packages
    all_names = names(runtime_layer)
    assert not [n for n in all_names if n.endswith(".pyi") or "/tests/" in n or n.endswith(".h")]
    assert not [n for n in all_names if "cpython-311" in n]
    excluded = runtime_layer.info["excluded_distributions"]
    assert "huggingface_hub" in excluded and "why" not in excluded


def test_layer_ships_bytecode_for_the_target_python(runtime_layer: Built) -> None:
    all_names = set(names(runtime_layer))
    assert "python/fastapi/__pycache__/applications.cpython-312.pyc" in all_names
    with zipfile.ZipFile(runtime_layer.path) as zf:
        header = zf.read("python/fastapi/__pycache__/applications.cpython-312.pyc")[:8]
    # PEP 552 flags = 0b01: hash-based, not checked against the source at import.
    assert int.from_bytes(header[4:8], "little") == 0b01


def test_x86_64_layer_is_all_x86_64_and_under_150_mb(runtime_layer: Built) -> None:
    machines = set(zip_native_files(runtime_layer.path).values())
    assert machines == {62}, {MACHINES.get(m, m) for m in machines}
    assert runtime_layer.unzipped_bytes <= 150 * MB


def test_arm64_layer_has_only_aarch64_native_code(runtime_layer_arm64: Built) -> None:
    native = zip_native_files(runtime_layer_arm64.path)
    assert len(native) >= 5  # onnxruntime, numpy, pydantic_core, tokenizers, ...
    foreign = {name: MACHINES.get(m, m) for name, m in native.items() if m != 183}
    assert not foreign
    assert any("onnxruntime_pybind11_state" in name for name in native)


def test_an_unchanged_rebuild_does_nothing(runtime_layer: Built, cache_dir: Path) -> None:
    again = build_runtime_layer(Target.of("python3.12", "x86_64"), project_root(), cache_dir)
    assert again.cached and again.status.startswith("unchanged")
    assert again.path == runtime_layer.path and again.sha256 == runtime_layer.sha256


def test_a_forced_rebuild_is_byte_identical(runtime_layer_arm64: Built, cache_dir: Path) -> None:
    before = sha256_file(runtime_layer_arm64.path)
    again = build_runtime_layer(
        Target.of("python3.12", "arm64"), project_root(), cache_dir, force=True
    )
    assert not again.cached and sha256_file(again.path) == before
