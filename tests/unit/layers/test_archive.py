"""Deterministic zips and the content-addressed cache."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

from layers.archive import FIXED_DATE_TIME, cached_zip, sha256_file, write_zip


def make_files(root: Path, mode: int, mtime: int) -> dict[str, Path]:
    files = {"b/second.txt": b"two\n", "a.py": b"print('one')\n", "bin/run": b"#!/bin/sh\n"}
    out = {}
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o755 if name == "bin/run" else mode)
        os.utime(path, (mtime, mtime))
        out[name] = path
    return out


def test_same_content_gives_the_same_bytes(tmp_path: Path) -> None:
    first = make_files(tmp_path / "one", 0o600, 1_000_000_000)
    second = make_files(tmp_path / "two", 0o664, 1_700_000_000)
    write_zip(first, tmp_path / "one.zip")
    # Other timestamps, other permission bits, other insertion order: same zip.
    write_zip(dict(reversed(list(second.items()))), tmp_path / "two.zip")
    assert sha256_file(tmp_path / "one.zip") == sha256_file(tmp_path / "two.zip")


def test_entries_are_sorted_with_fixed_time_and_modes(tmp_path: Path) -> None:
    write_zip(make_files(tmp_path / "src", 0o600, 1_000_000_000), tmp_path / "out.zip")
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        infos = zf.infolist()
    assert [info.filename for info in infos] == ["a.py", "b/second.txt", "bin/run"]
    assert {info.date_time for info in infos} == {FIXED_DATE_TIME}
    modes = {info.filename: (info.external_attr >> 16) & 0o777 for info in infos}
    assert modes == {"a.py": 0o644, "b/second.txt": 0o644, "bin/run": 0o755}


def test_a_rebuild_with_unchanged_inputs_does_nothing(tmp_path: Path) -> None:
    files = make_files(tmp_path / "src", 0o644, 1_000_000_000)
    calls: list[Path] = []

    def build(out: Path) -> dict[str, Any]:
        calls.append(out)
        write_zip(files, out)
        return {"note": "built"}

    first = cached_zip(tmp_path / "cache", "thing", {"version": 1}, build)
    again = cached_zip(tmp_path / "cache", "thing", {"version": 1}, build)
    assert (first.cached, again.cached, len(calls)) == (False, True, 1)
    assert again.status.startswith("unchanged") and again.sha256 == first.sha256
    assert again.info["note"] == "built" and again.unzipped_bytes == first.unzipped_bytes
    changed = cached_zip(tmp_path / "cache", "thing", {"version": 2}, build)
    assert not changed.cached and len(calls) == 2 and changed.path != first.path
    forced = cached_zip(tmp_path / "cache", "thing", {"version": 2}, build, force=True)
    assert not forced.cached and len(calls) == 3
