"""What ships to Lambda and the GPU image imports no build-time or cloud-side package.

Static (ast): every model_runtime module, and every module those import at module level,
is read for module-level imports (function bodies and `if TYPE_CHECKING:` blocks do not
run at import). The torch backend and the botocore adapter may need those packages, as
long as nothing imports them at module level, or they import them only lazily (delivery
imports the S3 reader). tests/integration/server checks the same in a fresh interpreter.
"""

from __future__ import annotations

import ast
from pathlib import Path

from layers.package import project_root

ROOT = project_root()
FORBIDDEN = {
    "torch",
    "boto3",
    "botocore",
    "pulumi",
    "pulumi_aws",
    "pulumi_kubernetes",
    "model_build",
}
# The modules that may import a forbidden package, when not reached at module level.
LAZY = {"model_runtime.backends.torch_backend", "model_runtime.s3_reader"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_level_imports(source: str, package: str) -> list[tuple[str, int]]:
    """(imported module, line) for each import that runs when the module is imported."""
    found: list[tuple[str, int]] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                found.extend((alias.name, node.lineno) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                found.extend((f"{base}.{alias.name}", node.lineno) for alias in node.names)
                found.append((base, node.lineno))
            # Compound statements (if, try, with, for, class) run their bodies on import.
            for field in ("body", "orelse", "finalbody"):
                visit(getattr(node, field, []))
            for handler in getattr(node, "handlers", []):
                visit(handler.body)

    visit(ast.parse(source).body)
    return found


def runtime_sources() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((ROOT / "model_runtime").rglob("*.py"))}


def violations(start: set[str], sources: dict[str, Path]) -> list[str]:
    """Forbidden module-level imports in `start` and all it imports at module level."""
    wrong: list[str] = []
    seen: set[str] = set()
    todo = sorted(start)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = sources[name]
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for target, line in module_level_imports(path.read_text(encoding="utf-8"), package):
            top = target.split(".")[0]
            if top in FORBIDDEN:
                wrong.append(f"{name}:{line} imports {target}")
            elif target in sources:
                todo.append(target)
    return sorted(set(wrong))


def test_serving_modules_import_no_build_or_cloud_package() -> None:
    sources = runtime_sources()
    assert set(sources) >= LAZY  # the exceptions name real modules
    assert violations(set(sources) - LAZY, sources) == []


def test_module_level_imports_are_told_from_lazy_ones() -> None:
    source = """
from typing import TYPE_CHECKING
import torch.nn
from botocore import exceptions
if TYPE_CHECKING:
    import pulumi
else:
    import boto3
try:
    from model_build import spec
except ImportError:
    import pulumi_aws

def lazy():
    import torch

class Holder:
    import botocore.session
"""
    found = {target for target, _ in module_level_imports(source, "model_runtime")}
    assert {
        "torch.nn",
        "botocore",
        "boto3",
        "model_build",
        "pulumi_aws",
        "botocore.session",
    } <= found
    assert "pulumi" not in found and "torch" not in found
