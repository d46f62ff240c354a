"""The executor's standard-library parts, without LocalStack: interpreter lookup, /opt."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from localdev.localstack import manager

PACKAGE = manager.EXECUTOR_SOURCE / "inferstack_localstack_executor"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_executor_{name}", PACKAGE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


interpreters = _load("interpreters")
opt = _load("opt")


def _fake_python(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_pyenv_version_is_preferred_and_the_newest_patch_wins(tmp_path: Path) -> None:
    _fake_python(tmp_path / "pyenv/versions/3.12.1/bin/python3.12")
    newest = _fake_python(tmp_path / "pyenv/versions/3.12.10/bin/python3.12")
    _fake_python(tmp_path / "pyenv/versions/3.13.0/bin/python3.13")
    shim = _fake_python(tmp_path / "pyenv/shims/python3.12")
    env = {"PYENV_ROOT": str(tmp_path / "pyenv"), "PATH": str(shim.parent)}
    assert interpreters.find_python("python3.12", env) == newest.resolve()


def test_shims_on_path_are_skipped_and_the_error_says_what_to_do(tmp_path: Path) -> None:
    shim = _fake_python(tmp_path / "pyenv/shims/python3.12")
    env = {"PYENV_ROOT": str(tmp_path / "pyenv"), "PATH": str(shim.parent)}
    with pytest.raises(interpreters.InterpreterNotFound) as caught:
        interpreters.find_python("python3.12", env)
    assert "no python3.12 interpreter found" in str(caught.value)
    assert "INFERSTACK_PYTHON3_12" in str(caught.value)


def test_override_variable_and_unsupported_runtimes(tmp_path: Path) -> None:
    pinned = _fake_python(tmp_path / "custom/python")
    env = {"INFERSTACK_PYTHON3_11": str(pinned), "PATH": ""}
    assert interpreters.find_python("python3.11", env) == pinned.resolve()
    with pytest.raises(interpreters.InterpreterNotFound, match="Python runtimes only"):
        interpreters.find_python("nodejs20.x", env)


def test_layers_merge_like_opt_later_layers_win(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for layer, files in {
        first: {"python/a.py": "first", "python/shared.py": "first", "models/m/w.bin": "1"},
        second: {"python/shared.py": "second", "models/m/w.bin": "2", "bin/tool": "x"},
    }.items():
        for name, text in files.items():
            (layer / name).parent.mkdir(parents=True, exist_ok=True)
            (layer / name).write_text(text)

    merged = opt.merged_opt_dir([first, second], tmp_path / "cache")

    assert (merged / "python/a.py").read_text() == "first"
    assert (merged / "python/shared.py").read_text() == "second"
    assert (merged / "models/m/w.bin").read_text() == "2"
    assert (merged / "bin/tool").is_symlink()
    assert opt.merged_opt_dir([first, second], tmp_path / "cache") == merged  # cached
    assert opt.merged_opt_dir([second, first], tmp_path / "cache") != merged
    assert [p for p in os.listdir(tmp_path / "cache") if p.startswith(".")] == []
    assert opt.python_paths(merged, "3.12") == [
        merged / "python/lib/python3.12/site-packages", merged / "python"
    ]
