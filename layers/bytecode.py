"""Bytecode for the target Python, so a cold start does not compile every module.

Lambda's /opt and /var/task are read-only: without shipped .pyc files, every import
of every cold start compiles from source (and cannot cache the result). The .pyc files
are compiled by an interpreter of the target version with `unchecked-hash`
invalidation: their bytes do not depend on file timestamps (deterministic zips), and
the runtime never stats the source to check them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from layers.errors import PackagingError


def find_interpreter(version: str) -> Path | None:
    """A `python<version>` binary: pyenv's versions first (its shims fail for a
    version that is not active), then PATH."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(
        (pyenv_root / "versions").glob(f"{version}.*/bin/python{version}"), reverse=True
    )
    on_path = shutil.which(f"python{version}")
    if on_path and "/shims/" not in on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
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
