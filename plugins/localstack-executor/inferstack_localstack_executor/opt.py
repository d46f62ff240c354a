"""The per-function stand-in for Lambda's ``/opt``: the function's layers, merged in order.

AWS extracts each layer into ``/opt`` in the order the function lists them, so a file in
a later layer replaces the same path from an earlier one. We cannot give a process its own
``/opt``, so we build the same merged tree as a directory of symlinks (cheap, whatever the
layer size) and point every ``/opt`` path in the function's environment variables at it
(``rewrite_opt_paths``), so code configured with ``/opt/...`` paths (``MODEL_DIR``, say)
needs to know nothing of this.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

# "/opt" as a whole value, a path under it, or an element of a ":"- or ","-separated list
# (MODEL_DIR is os.pathsep-separated, MODEL_URI comma-separated, spaces allowed after a
# comma): never "/optional" or "s3://bucket/opt".
_OPT_PATH = re.compile(r"(^|[:,]\s*)/opt(?=$|[/:,])")


def rewrite_opt_paths(env: Mapping[str, str], opt_dir: Path) -> dict[str, str]:
    """``env`` with each ``/opt`` path moved under ``opt_dir``, as AWS's ``/opt`` is there."""
    return {
        key: _OPT_PATH.sub(lambda match: match.group(1) + str(opt_dir), value)
        for key, value in env.items()
    }


def python_paths(opt_dir: Path, python_version: str) -> list[Path]:
    """The layer entries of ``sys.path``, in the order AWS's Python runtimes use."""
    return [opt_dir / "python" / "lib" / f"python{python_version}" / "site-packages",
            opt_dir / "python"]


def merged_opt_dir(layer_dirs: Sequence[Path], cache_root: Path) -> Path:
    """Return a directory that looks like ``/opt`` with these layers applied, in order.

    Keyed by the layers' unzipped locations, which LocalStack makes unique per layer
    version, so functions with the same layers share one tree. Built atomically: a
    concurrent builder of the same key loses the rename and discards its copy.
    """
    key = hashlib.sha256("\n".join(str(p) for p in layer_dirs).encode()).hexdigest()[:24]
    target = cache_root / key
    if target.is_dir():
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_root))
    try:
        for layer in layer_dirs:
            _overlay(layer, staging)
        staging.chmod(0o755)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _overlay(layer: Path, target: Path) -> None:
    for root, dirs, files in os.walk(layer):
        relative = Path(root).relative_to(layer)
        linked_dirs = [name for name in dirs if (Path(root) / name).is_symlink()]
        for name in dirs:
            if name in linked_dirs:
                continue
            destination = target / relative / name
            if destination.is_symlink() or destination.is_file():
                destination.unlink()
            destination.mkdir(exist_ok=True)
        for name in [*files, *linked_dirs]:
            destination = target / relative / name
            if destination.is_dir() and not destination.is_symlink():
                shutil.rmtree(destination)
            elif destination.exists() or destination.is_symlink():
                destination.unlink()
            destination.symlink_to(Path(root) / name)
