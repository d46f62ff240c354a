"""Deterministic zips and the content-addressed build cache.

Identical inputs give byte-identical zips: entries sorted by name, one fixed timestamp,
permissions reduced to 0644/0755, a fixed compression level, no directory entries and
no extra fields. Each build lands under a name derived from a hash of its inputs, so a
rebuild with unchanged inputs finds its zip and does nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_runtime.manifest import sha256_file

# Bump when a builder changes what it puts in a zip: every cache key changes with it.
BUILDER_VERSION = "1"
# The earliest time a zip can hold; the same for every entry of every build.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
COMPRESS_LEVEL = 6
# Builds kept per name (the newest); older ones are deleted so build/ does not grow
# with every model change.
KEEP_BUILDS = 3


@dataclass(frozen=True)
class Built:
    """One built zip: where it is, its sizes, and whether this call built it."""

    name: str
    path: Path
    zipped_bytes: int
    unzipped_bytes: int
    entries: int
    sha256: str
    cached: bool
    key: str
    info: dict[str, Any]

    @property
    def status(self) -> str:
        return f"unchanged (cache {self.key[:12]})" if self.cached else f"built ({self.key[:12]})"


def write_zip(files: Mapping[str, Path], out: Path) -> None:
    """Write `files` (name in the zip -> file on disk) to `out`, deterministically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as zf:
        for name in sorted(files):
            source = files[name]
            info = zipfile.ZipInfo(name, FIXED_DATE_TIME)
            info.create_system = 3  # Unix, so that external_attr carries the mode
            executable = source.stat().st_mode & 0o111
            info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(source, "rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    partial.replace(out)


def tree_files(directory: Path, prefix: str = "") -> dict[str, Path]:
    """Every file under `directory`, by its name in a zip (`prefix` + relative path)."""
    return {
        prefix + path.relative_to(directory).as_posix(): path
        for path in directory.rglob("*")
        if path.is_file()
    }


def zip_sizes(path: Path) -> tuple[int, int, int]:
    """(zipped bytes, unzipped bytes, entries)."""
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    return path.stat().st_size, sum(info.file_size for info in infos), len(infos)


def cache_key(kind: str, inputs: Mapping[str, Any]) -> str:
    payload = json.dumps(
        {"kind": kind, "builder": BUILDER_VERSION, "inputs": inputs}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def cached_zip(
    cache_dir: Path,
    name: str,
    inputs: Mapping[str, Any],
    build: Callable[[Path], dict[str, Any]],
    *,
    force: bool = False,
) -> Built:
    """Return the zip for `inputs`, building it with `build(out_path)` only when absent.

    `build` writes the zip and returns notes kept beside it (what was pruned, ...).
    """
    key = cache_key(name, inputs)
    out = zip_path(cache_dir, name, key)
    info_path = out.with_suffix(".json")
    cached = out.is_file() and info_path.is_file() and not force
    if cached:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        # Most recently used, not built, is what _drop_old_builds keeps.
        os.utime(out)
    else:
        notes = build(out)
        zipped, unzipped, entries = zip_sizes(out)
        info = {
            "name": name,
            "key": key,
            "inputs": dict(inputs),
            "sha256": sha256_file(out),
            "zipped_bytes": zipped,
            "unzipped_bytes": unzipped,
            "entries": entries,
            **notes,
        }
        tmp = info_path.with_name(f".{info_path.name}.partial")
        tmp.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, info_path)
        _drop_old_builds(cache_dir, name, keep=KEEP_BUILDS)
    return _built(name, out, key, info, cached=cached)


def find_zip(cache_dir: Path, name: str, inputs: Mapping[str, Any]) -> Built | None:
    """The zip `cached_zip` would return for `inputs`, if it is built; never builds."""
    key = cache_key(name, inputs)
    out = zip_path(cache_dir, name, key)
    info_path = out.with_suffix(".json")
    if not (out.is_file() and info_path.is_file()):
        return None
    return _built(name, out, key, json.loads(info_path.read_text(encoding="utf-8")), cached=True)


def zip_path(cache_dir: Path, name: str, key: str) -> Path:
    return cache_dir / f"{name}-{key[:16]}.zip"


def _built(name: str, out: Path, key: str, info: Mapping[str, Any], *, cached: bool) -> Built:
    return Built(
        name=name,
        path=out,
        zipped_bytes=int(info["zipped_bytes"]),
        unzipped_bytes=int(info["unzipped_bytes"]),
        entries=int(info["entries"]),
        sha256=str(info["sha256"]),
        cached=cached,
        key=key,
        info=dict(info),
    )


def _drop_old_builds(cache_dir: Path, name: str, keep: int) -> None:
    pattern = re.compile(rf"^{re.escape(name)}-[0-9a-f]{{16}}\.zip$")
    builds = sorted(
        (path for path in cache_dir.glob("*.zip") if pattern.match(path.name)),
        key=lambda path: path.stat().st_mtime_ns,
        reverse=True,
    )
    for old in builds[keep:]:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)
