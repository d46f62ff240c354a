"""The serving modules, imported by a fresh interpreter, load none of torch, boto3,
botocore, pulumi or model_build (the static check is tests/unit/model_runtime)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys

from layers.package import project_root

ROOT = project_root()
FORBIDDEN = ["torch", "boto3", "botocore", "pulumi", "model_build"]
SERVING = [
    "model_runtime.app",
    "model_runtime.server",
    "model_runtime.engine",
    "model_runtime.dataplane",
    "model_runtime.batcher",
    "model_runtime.delivery",
    "model_runtime.s3_reader",
    "model_runtime.settings",
    "model_runtime.backends.onnxruntime_backend",
]


def handler_dependencies() -> list[str]:
    """What functions/handler.py imports (the handler itself loads models from env)."""
    tree = ast.parse((ROOT / "functions" / "handler.py").read_text(encoding="utf-8"))
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def loaded_in_a_fresh_interpreter(modules: list[str]) -> list[str]:
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps([m for m in {FORBIDDEN!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    loaded: list[str] = json.loads(result.stdout)
    return loaded


def test_the_serving_path_never_imports_torch_boto3_botocore_pulumi_or_model_build() -> None:
    assert loaded_in_a_fresh_interpreter(SERVING) == []


def test_the_handlers_dependencies_import_none_of_them() -> None:
    dependencies = handler_dependencies()
    assert "model_runtime.settings" in dependencies
    assert "model_runtime.events.entry" in dependencies  # Mangum and the event routing
    assert loaded_in_a_fresh_interpreter(dependencies) == []


def test_the_check_sees_an_import() -> None:
    assert loaded_in_a_fresh_interpreter(["model_build.spec"]) == ["model_build"]
