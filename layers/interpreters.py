"""Find the real interpreter of a Python version such as ``3.12``: standard library only.

pyenv's shims only work for the active version, so a shim is useless here: the real
binary is looked for under ``$PYENV_ROOT/versions/`` first (newest patch release first,
compared as numbers: 3.12.10 is newer than 3.12.9), then on ``PATH``, skipping shims.
``INFERSTACK_PYTHON3_12`` (for 3.12) pins one.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from layers.errors import InterpreterNotFoundError


def override_variable(version: str) -> str:
    """``3.12`` -> ``INFERSTACK_PYTHON3_12``: set it to an interpreter's path to pin one."""
    return "INFERSTACK_PYTHON" + version.replace(".", "_")


def find_python(version: str, environ: Mapping[str, str] | None = None) -> Path:
    """The ``python<version>`` binary to run; raises InterpreterNotFoundError naming where
    it looked and how to fix that."""
    env = os.environ if environ is None else environ
    variable = override_variable(version)
    override = env.get(variable)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise InterpreterNotFoundError(
                version, f"{variable}={override} is not an executable file", variable
            )
        return path.resolve()
    versions = _pyenv_root(env) / "versions"
    found = _from_pyenv(version, versions) or _from_path(version, env.get("PATH", ""))
    if found is None:
        raise InterpreterNotFoundError(
            version,
            f"looked in {versions}/{version}.*/bin and on PATH, skipping pyenv shims",
            variable,
        )
    return found


def _pyenv_root(env: Mapping[str, str]) -> Path:
    root = env.get("PYENV_ROOT")
    return Path(root) if root else Path.home() / ".pyenv"


def _from_pyenv(version: str, versions: Path) -> Path | None:
    # Final releases only ("3.12" or "3.12.N"): not "3.12.0rc1", "3.12-dev" or "3.12.1t".
    release = re.compile(re.escape(version) + r"(\.\d+)?")
    directories = [d for d in versions.glob(f"{version}*") if release.fullmatch(d.name)]
    for directory in sorted(directories, key=_version_key, reverse=True):
        path = directory / "bin" / f"python{version}"
        if path.is_file() and os.access(path, os.X_OK):
            return path.resolve()
    return None


def _version_key(directory: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in directory.name.split("."))


def _from_path(version: str, search_path: str) -> Path | None:
    for entry in search_path.split(os.pathsep):
        if not entry or Path(entry).name == "shims":
            continue
        found = shutil.which(f"python{version}", path=entry)
        if found is None:
            continue
        resolved = Path(found).resolve()
        if "shims" not in resolved.parts:
            return resolved
    return None
