"""The function zip: functions/ and the model_runtime modules a handler can import.

The module list is the import closure of functions/ over the first-party packages,
read from the source (imports inside functions included, so lazily imported modules
come along). Build-time modules no handler reaches (export, quantize, parity, spec,
reference_models) stay out: they need torch, which Lambda never has.
"""

from __future__ import annotations

import dis
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import CodeType
from typing import Any

from layers.archive import Built, cached_zip, find_zip, tree_files, write_zip
from layers.bytecode import compile_tree, find_interpreter
from layers.errors import PackagingError
from layers.targets import Target
from model_runtime.manifest import sha256_file

ENTRY_PACKAGE = "functions"
FIRST_PARTY = ("functions", "model_runtime")
MOUNT = "/var/task"


def function_files(root: Path) -> dict[str, Path]:
    """Name in the zip -> source file, for every module the handlers can import."""
    entries = sorted((root / ENTRY_PACKAGE).glob("*.py"))
    if not entries:
        raise PackagingError(f"no Lambda entry points under {root / ENTRY_PACKAGE}")
    todo = [_module_of(root, path) for path in entries]
    seen: dict[str, Path] = {}
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        path = _source_of(root, module)
        if path is None:
            continue
        seen[module] = path
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages
        todo += _imports(path, module)
    return {path.relative_to(root).as_posix(): path for path in seen.values()}


def build_function_zip(
    target: Target, root: Path, cache_dir: Path, *, force: bool = False
) -> Built:
    files = function_files(root)
    interpreter = find_interpreter(target.python_version)
    inputs = _inputs(target, files, interpreter)

    def build(out: Path) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="function-") as tmp:
            task = Path(tmp)
            for name, source in files.items():
                (task / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, task / name)
            if interpreter:
                compile_tree(task, interpreter, MOUNT)
            write_zip(tree_files(task), out)
        return {"modules": sorted(files), "bytecode": str(interpreter) if interpreter else None}

    return cached_zip(cache_dir, function_zip_name(target), inputs, build, force=force)


def find_function_zip(target: Target, root: Path, cache_dir: Path) -> Built | None:
    """The function zip of the current sources, if built (see build_function_zip)."""
    files = function_files(root)
    inputs = _inputs(target, files, find_interpreter(target.python_version))
    return find_zip(cache_dir, function_zip_name(target), inputs)


def function_zip_name(target: Target) -> str:
    return f"function-{target.runtime}"


def _inputs(target: Target, files: dict[str, Path], interpreter: Path | None) -> dict[str, Any]:
    return {
        "python": target.python_version,
        "files": {name: sha256_file(path) for name, path in sorted(files.items())},
        "bytecode": bool(interpreter),
    }


def _module_of(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _source_of(root: Path, module: str) -> Path | None:
    if module.split(".")[0] not in FIRST_PARTY:
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> list[str]:
    """Every module `path` may import: `import a.b`, `from a import b` (b may be a
    submodule), relative imports resolved against `module`, in functions too.

    Read from the compiled bytecode, not with `ast.parse`: a deploy evaluates the program
    (which calls this) while other threads may format tracebacks, which on Python 3.11
    also builds ASTs, and CPython 3.11's AST builder is not thread-safe
    (gh-106905: "AST constructor recursion depth mismatch").
    """
    code = compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[str] = []
    for block in _code_objects(code):
        instructions = list(dis.get_instructions(block))
        for index, instruction in enumerate(instructions):
            if instruction.opname != "IMPORT_NAME":
                continue
            # Compiled as LOAD_CONST level; LOAD_CONST fromlist; IMPORT_NAME name.
            level = int(instructions[index - 2].argval or 0)
            names = instructions[index - 1].argval or ()
            base = str(instruction.argval)
            if level:
                anchor = package.split(".")[: len(package.split(".")) - level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            found.append(base)
            found += [f"{base}.{name}" for name in names if name != "*"]
    return found


def _code_objects(code: CodeType) -> Iterator[CodeType]:
    """`code` and every function, class and comprehension body compiled inside it."""
    yield code
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            yield from _code_objects(constant)
