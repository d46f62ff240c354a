"""Pulumi assets and archives, as the deploy engine needs them: a digest for diffing, and
the bytes to upload (archives as deterministic zips, like the layers/ builders write)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import zipfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc

from localdev.errors import DeployError

# The earliest time a zip can hold; fixed, so equal contents give equal bytes.
_ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
_ARCHIVE_SUFFIXES = (".zip", ".jar")


def is_unknown(value: Any) -> bool:
    """Whether a resolved input still holds a value Pulumi could not know (it came from a
    resource that was not emulated)."""
    if isinstance(value, str):
        return value == rpc.UNKNOWN
    if isinstance(value, dict):
        return any(is_unknown(item) for item in value.values())
    if isinstance(value, list):
        return any(is_unknown(item) for item in value)
    return False


def canonical(value: Any) -> Any:
    """A JSON value standing for `value`: assets and archives become their content digest,
    whole floats become ints (the mock monitor delivers every number as a float)."""
    if isinstance(value, pulumi.Asset | pulumi.Archive):
        return {"sha256": digest(value)}
    if isinstance(value, dict):
        return {str(key): canonical(item) for key, item in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise DeployError(f"cannot deploy an input of type {type(value).__name__}: {value!r}")


def fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def digest(item: pulumi.Asset | pulumi.Archive) -> str:
    """sha256 over what the asset or archive holds (names and bytes), not where it lives."""
    hasher = hashlib.sha256()
    if isinstance(item, pulumi.FileArchive) and _is_zip_file(Path(item.path)):
        hasher.update(b"zip\0" + _file_sha256(Path(item.path)).encode())
        return hasher.hexdigest()
    if isinstance(item, pulumi.Archive):
        for name, data in _archive_members(item):
            hasher.update(name.encode() + b"\0" + hashlib.sha256(data()).digest())
        return hasher.hexdigest()
    return hashlib.sha256(asset_bytes(item)).hexdigest()


def asset_bytes(asset: pulumi.Asset) -> bytes:
    if isinstance(asset, pulumi.FileAsset):
        return Path(str(asset.path)).read_bytes()
    if isinstance(asset, pulumi.StringAsset):
        return str(asset.text).encode()
    raise DeployError(f"cannot deploy a {type(asset).__name__} (only files and strings)")


def archive_zip(archive: pulumi.Archive) -> bytes:
    """The archive as zip bytes: a .zip file as it is, anything else zipped deterministically
    (sorted names, fixed timestamps, 0644/0755 modes)."""
    if isinstance(archive, pulumi.FileArchive) and _is_zip_file(Path(archive.path)):
        return Path(archive.path).read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as out:
        for name, data in sorted(_archive_members(archive), key=lambda member: member[0]):
            info = zipfile.ZipInfo(name, _ZIP_DATE_TIME)
            info.create_system = 3
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            out.writestr(info, data())
    return buffer.getvalue()


def _archive_members(
    archive: pulumi.Archive, prefix: str = ""
) -> Iterator[tuple[str, Callable[[], bytes]]]:
    if isinstance(archive, pulumi.AssetArchive):
        for name, item in sorted(archive.assets.items()):
            if isinstance(item, pulumi.Archive):
                yield from _archive_members(item, f"{prefix}{name}/")
            else:
                yield prefix + name, partial(asset_bytes, item)
        return
    if isinstance(archive, pulumi.FileArchive):
        path = Path(archive.path)
        if path.is_dir():
            for file in _tree(path):
                relative = file.relative_to(path).as_posix()
                yield prefix + relative, file.read_bytes
            return
        if _is_zip_file(path):
            with zipfile.ZipFile(path) as source:
                names = [info.filename for info in source.infolist() if not info.is_dir()]
            for name in names:
                yield prefix + name, partial(_zip_member, path, name)
            return
        raise DeployError(f"archive {path} is neither a directory nor a .zip file")
    raise DeployError(f"cannot deploy a {type(archive).__name__} (only files, dirs and zips)")


def _zip_member(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as source:
        return source.read(name)


def _tree(root: Path) -> list[Path]:
    files = []
    for directory, dirs, names in os.walk(root):
        dirs[:] = sorted(name for name in dirs if name != "__pycache__")
        files += [Path(directory) / name for name in sorted(names)]
    return files


def _is_zip_file(path: Path) -> bool:
    return path.suffix in _ARCHIVE_SUFFIXES and path.is_file()


# Re-hashing a 50 MB layer zip on every `up` costs ~0.1 s; cache by (path, size, mtime).
_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def _file_sha256(path: Path) -> str:
    info = path.stat()
    key = (str(path.resolve()), info.st_size, info.st_mtime_ns)
    cached = _FILE_DIGESTS.get(key)
    if cached is None:
        hasher = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(block)
        cached = _FILE_DIGESTS[key] = hasher.hexdigest()
    return cached
