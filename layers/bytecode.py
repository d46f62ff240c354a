"""Bytecode for the target Python, so a cold start does not compile every module.

Lambda's /opt and /var/task are read-only: without shipped .pyc files, every import
of every cold start compiles from source (and cannot cache the result). The .pyc files
are compiled by an interpreter of the target version with `unchecked-hash`
invalidation: their bytes do not depend on file timestamps (deterministic zips), and
the runtime never stats the source to check them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from layers.errors import InterpreterNotFoundError, PackagingError
from layers.interpreters import find_python


def find_interpreter(version: str) -> Path | None:
    """The interpreter to compile with (see layers.interpreters), or None: without one
    the zips ship no bytecode."""
    try:
        return find_python(version)
    except InterpreterNotFoundError:
        return None


def compile_tree(directory: Path, interpreter: Path, display_root: str) -> None:
    """Write `__pycache__/*.cpython-XY.pyc` beside every .py under `directory`.

    `display_root` is the path tracebacks show (where the tree is mounted on Lambda).
    """
    command = [
        str(interpreter),
        "-I",
        "-S",
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(directory),
        "-p",
        display_root,
        str(directory),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    # compileall exits 1 when a file does not compile (e.g. a py2-only file in a wheel):
    # those modules are then compiled at import, if they are ever imported.
    if result.returncode not in (0, 1):
        raise PackagingError(
            f"compiling {directory} with {interpreter} failed: {result.stderr.strip()[-2000:]}"
        )
