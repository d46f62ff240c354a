"""The house plan, checked from the source: what each package may import, and no import
cycle among the project's modules (function-level imports included: a cycle held
together by a late import is still a cycle). Static (ast): no module is imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from layers.package import project_root

ROOT = project_root()
PACKAGES = (
    "model_runtime",
    "model_build",
    "functions",
    "layers",
    "infra",
    "localdev",
    "cli",
    "stacks",
    "pricing",
)

# Which project packages each package may import (DESIGN.md's layout table).
MAY_IMPORT: dict[str, set[str]] = {
    "model_runtime": set(),
    "model_build": {"model_runtime"},
    "functions": {"model_runtime"},
    "stacks": set(),
    # The function zip and model layers read artifact manifests.
    "layers": {"model_runtime"},
    # `functions` only for its HANDLER constant (the handler module loads models);
    # `model_runtime` for artifact manifests, hashed before anything is declared.
    "infra": {"layers", "stacks", "functions", "model_runtime"},
    "localdev": {"infra", "layers", "stacks", "functions", "model_runtime"},
    # Declared models and their artifact manifests; no cloud SDK (ONLY_IN), no Pulumi.
    "pricing": {"stacks", "model_runtime"},
    "cli": set(PACKAGES),
}
# Third-party packages only the named packages or modules may import.
ONLY_IN: dict[str, set[str]] = {
    "typer": {"cli"},
    "rich": {"cli"},
    "pulumi": {"infra", "localdev", "cli"},
    "pulumi_aws": {"infra", "localdev", "cli"},
    "pulumi_kubernetes": {"infra", "localdev", "cli"},
    "boto3": {
        "localdev",
        "cli",
        "model_runtime.s3_reader",
        "model_runtime.events.aws",
        "model_runtime.versions.router",
    },
    "botocore": {
        "localdev",
        "cli",
        "model_runtime.s3_reader",
        "model_runtime.events.aws",
        "model_runtime.versions.router",
    },
    "torch": {"model_build", "model_runtime.backends.torch_backend"},
    "matplotlib": {"pricing.plot"},
}


def _allowed(source: str, allowed: set[str]) -> bool:
    return any(source == prefix or source.startswith(f"{prefix}.") for prefix in allowed)


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (dotted)
    line: int
    type_checking: bool


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _in_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from a.b import c` imports module a.b.c when c is a module, else a.b.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        for target in targets:
            yield Import(name, target, node.lineno, _in_type_checking(node, parents))


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    modules = project_modules()
    return [found for name, path in modules.items() for found in imports_of(name, path, modules)]


def test_packages_import_only_what_their_layer_allows(graph: list[Import]) -> None:
    wrong = []
    for found in graph:
        source_package = found.source.split(".")[0]
        target_package = found.target.split(".")[0]
        if target_package in PACKAGES and target_package not in {
            source_package,
            *MAY_IMPORT[source_package],
        }:
            wrong.append(f"{found.source}:{found.line} imports {found.target}")
        allowed = ONLY_IN.get(target_package)
        if allowed is not None and not _allowed(found.source, allowed):
            wrong.append(f"{found.source}:{found.line} imports {found.target}")
    assert wrong == []


def test_no_import_cycle(graph: list[Import]) -> None:
    modules = set(project_modules())
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for found in graph:
        if found.target in modules and not found.type_checking and found.target != found.source:
            edges[found.source].add(found.target)
    cycles = [sorted(component) for component in strongly_connected(edges) if len(component) > 1]
    assert cycles == []


def test_nothing_imports_the_cli(graph: list[Import]) -> None:
    assert [
        f"{found.source}:{found.line}"
        for found in graph
        if found.target.split(".")[0] == "cli" and not found.source.startswith("cli")
    ] == []


def test_cycle_finder_finds_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert [sorted(c) for c in strongly_connected(edges) if len(c) > 1] == [["a", "b", "c"]]


def strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (the module graph is deep enough to matter)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components


def test_benchmarks_import_no_tests() -> None:
    wrong = []
    for path in sorted((ROOT / "benchmarks").rglob("*.py")):
        name = module_name(path)
        for found in imports_of(name, path, {}):
            if found.target.split(".")[0] == "tests":
                wrong.append(f"{name}:{found.line} imports {found.target}")
    assert wrong == []
