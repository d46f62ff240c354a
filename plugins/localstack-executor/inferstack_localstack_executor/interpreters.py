"""Find the real interpreter for a Lambda runtime name such as ``python3.12``.

pyenv shims only work for the active version, so a shim found on PATH is useless here:
we look for the real binary under ``$(pyenv root)/versions/`` first.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

_RUNTIME = re.compile(r"python(3)\.(\d+)")


class InterpreterNotFound(Exception):
    """No usable interpreter for a function's declared runtime."""


def override_variable(runtime: str) -> str:
    """``python3.12`` -> ``INFERSTACK_PYTHON3_12``: set it to an interpreter path to pin one."""
    return "INFERSTACK_" + runtime.upper().replace(".", "_")


def find_python(runtime: str, environ: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if environ is None else environ
    match = _RUNTIME.fullmatch(runtime)
    if match is None:
        raise InterpreterNotFound(
            f"runtime {runtime!r} is not supported by the inferstack-process executor "
            "(Python runtimes only, e.g. python3.12)"
        )
    major_minor = f"{match.group(1)}.{match.group(2)}"
    binary = f"python{major_minor}"
    override = env.get(override_variable(runtime))
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise InterpreterNotFound(
                f"{override_variable(runtime)}={override} is not an executable file"
            )
        return path.resolve()
    found = _from_pyenv(major_minor, binary, env) or _from_path(binary, env)
    if found is None:
        raise InterpreterNotFound(
            f"no {binary} interpreter found for runtime {runtime} (looked in "
            f"{_pyenv_root(env) / 'versions'}/{major_minor}.*/bin and on PATH, skipping pyenv "
            f"shims); install it (e.g. `pyenv install {major_minor}`) or set "
            f"{override_variable(runtime)} to its path"
        )
    return found


def _pyenv_root(env: dict[str, str]) -> Path:
    root = env.get("PYENV_ROOT")
    return Path(root) if root else Path.home() / ".pyenv"


def _version_key(directory: Path) -> tuple[int, ...]:
    parts = directory.name.split(".")
    return tuple(int(part) if part.isdigit() else -1 for part in parts)


def _from_pyenv(major_minor: str, binary: str, env: dict[str, str]) -> Path | None:
    versions = _pyenv_root(env) / "versions"
    pattern = re.compile(re.escape(major_minor) + r"(\.\d+)?")
    candidates = sorted(
        (d for d in versions.glob(f"{major_minor}*") if pattern.fullmatch(d.name)),
        key=_version_key,
        reverse=True,
    )
    for directory in candidates:
        path = directory / "bin" / binary
        if path.is_file() and os.access(path, os.X_OK):
            return path.resolve()
    return None


def _from_path(binary: str, env: dict[str, str]) -> Path | None:
    for entry in env.get("PATH", "").split(os.pathsep):
        if not entry or Path(entry).name == "shims":
            continue
        found = shutil.which(binary, path=entry)
        if found is None:
            continue
        resolved = Path(found).resolve()
        if "shims" not in resolved.parts:
            return resolved
    return None
