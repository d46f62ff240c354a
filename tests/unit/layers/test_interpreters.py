"""The one interpreter finder: pyenv's versions (newest first, as numbers), then PATH."""

from __future__ import annotations

from pathlib import Path

import pytest

from layers.bytecode import find_interpreter
from layers.errors import InterpreterNotFoundError
from layers.interpreters import find_python, override_variable


def _fake_python(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_pyenv_version_is_preferred_and_the_newest_patch_wins(tmp_path: Path) -> None:
    _fake_python(tmp_path / "pyenv/versions/3.12.1/bin/python3.12")
    _fake_python(tmp_path / "pyenv/versions/3.12.9/bin/python3.12")
    newest = _fake_python(tmp_path / "pyenv/versions/3.12.10/bin/python3.12")
    _fake_python(tmp_path / "pyenv/versions/3.12.11rc1/bin/python3.12")  # not a release
    _fake_python(tmp_path / "pyenv/versions/3.12-dev/bin/python3.12")
    _fake_python(tmp_path / "pyenv/versions/3.13.0/bin/python3.13")
    on_path = _fake_python(tmp_path / "bin/python3.12")
    env = {"PYENV_ROOT": str(tmp_path / "pyenv"), "PATH": str(on_path.parent)}
    assert find_python("3.12", env) == newest.resolve()


def test_path_is_searched_when_pyenv_has_none_and_shims_are_skipped(tmp_path: Path) -> None:
    shim = _fake_python(tmp_path / "pyenv/shims/python3.12")
    linked_dir = tmp_path / "linked"
    linked_dir.mkdir()
    (linked_dir / "python3.12").symlink_to(shim)  # a shim by another name
    real = _fake_python(tmp_path / "usr/bin/python3.12")
    search = ":".join(str(p) for p in (shim.parent, linked_dir, real.parent))
    env = {"PYENV_ROOT": str(tmp_path / "pyenv"), "PATH": search}
    assert find_python("3.12", env) == real.resolve()


def test_the_error_says_where_it_looked_and_what_to_do(tmp_path: Path) -> None:
    shim = _fake_python(tmp_path / "pyenv/shims/python3.12")
    env = {"PYENV_ROOT": str(tmp_path / "pyenv"), "PATH": str(shim.parent)}
    with pytest.raises(InterpreterNotFoundError) as caught:
        find_python("3.12", env)
    assert str(caught.value) == (
        f"no python3.12 interpreter found (looked in {tmp_path}/pyenv/versions/3.12.*/bin and "
        "on PATH, skipping pyenv shims); install it (e.g. `pyenv install 3.12`) or set "
        "INFERSTACK_PYTHON3_12 to its path"
    )
    assert caught.value.version == "3.12"


def test_without_an_interpreter_the_zips_get_no_bytecode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("INFERSTACK_PYTHON3_12", raising=False)
    assert find_interpreter("3.12") is None
    newest = _fake_python(tmp_path / "pyenv/versions/3.12.10/bin/python3.12")
    assert find_interpreter("3.12") == newest.resolve()


def test_the_override_variable_is_honoured_first(tmp_path: Path) -> None:
    pinned = _fake_python(tmp_path / "custom/python")
    _fake_python(tmp_path / "pyenv/versions/3.11.9/bin/python3.11")
    env = {"PYENV_ROOT": str(tmp_path / "pyenv"), "INFERSTACK_PYTHON3_11": str(pinned)}
    assert override_variable("3.11") == "INFERSTACK_PYTHON3_11"
    assert find_python("3.11", env) == pinned.resolve()

    env["INFERSTACK_PYTHON3_11"] = str(tmp_path / "missing")
    with pytest.raises(InterpreterNotFoundError) as caught:
        find_python("3.11", env)
    assert caught.value.where == (
        f"INFERSTACK_PYTHON3_11={tmp_path}/missing is not an executable file"
    )


def test_pyenv_root_defaults_to_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    newest = _fake_python(tmp_path / ".pyenv/versions/3.10.13/bin/python3.10")
    assert find_python("3.10", {"PATH": ""}) == newest.resolve()
