"""The executor's standard-library parts and what the manager hands it, without starting
LocalStack: interpreters, the LocalStack environment, /opt."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from localdev.localstack import manager
from localdev.localstack.environment import localstack_env
from localdev.localstack.install import find_python313

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


def test_the_interpreter_comes_from_the_variable_the_manager_sets(tmp_path: Path) -> None:
    pinned = _fake_python(tmp_path / "pyenv/versions/3.12.10/bin/python3.12")
    env = {"INFERSTACK_PYTHON3_12": str(pinned), "PATH": ""}
    assert interpreters.interpreter_variable("python3.12") == "INFERSTACK_PYTHON3_12"
    assert interpreters.find_python("python3.12", env) == pinned


def test_a_runtime_without_its_variable_names_the_variable_and_the_fix() -> None:
    with pytest.raises(interpreters.InterpreterNotFound) as caught:
        interpreters.find_python("python3.14", {"PATH": "/usr/bin"})
    assert str(caught.value) == (
        "no python3.14 interpreter found for runtime python3.14: INFERSTACK_PYTHON3_14 is not "
        "set. `inferstack localstack start` sets it when it finds Python 3.14 (pyenv's "
        "versions, then PATH): install it (e.g. `pyenv install 3.14`) and restart LocalStack "
        "through `inferstack localstack start`"
    )


def test_a_bad_variable_and_unsupported_runtimes(tmp_path: Path) -> None:
    env = {"INFERSTACK_PYTHON3_11": str(tmp_path / "missing")}
    with pytest.raises(interpreters.InterpreterNotFound) as caught:
        interpreters.find_python("python3.11", env)
    assert str(caught.value) == (
        f"INFERSTACK_PYTHON3_11={tmp_path}/missing is not an executable file"
    )
    with pytest.raises(interpreters.InterpreterNotFound, match="Python runtimes only"):
        interpreters.find_python("nodejs20.x", env)


def test_localstack_gets_the_interpreter_of_every_runtime_found(tmp_path: Path) -> None:
    """The hand-off: the manager resolves (layers.interpreters), the plugin reads."""
    _fake_python(tmp_path / "pyenv/versions/3.12.9/bin/python3.12")
    newest = _fake_python(tmp_path / "pyenv/versions/3.12.10/bin/python3.12")
    pinned = _fake_python(tmp_path / "custom/python3.13")
    _fake_python(tmp_path / "pyenv/shims/python3.11")
    environ = {
        "PYENV_ROOT": str(tmp_path / "pyenv"),
        "PATH": str(tmp_path / "pyenv/shims"),
        "INFERSTACK_PYTHON3_13": str(pinned),
        "PYTHONPATH": "/elsewhere",
    }
    paths = manager.Paths(venv=tmp_path / "venv", data=tmp_path / "data")

    env = localstack_env("127.0.0.1", 4566, paths, environ=environ)

    assert {k: v for k, v in env.items() if k.startswith("INFERSTACK_PYTHON")} == {
        "INFERSTACK_PYTHON3_12": str(newest.resolve()),
        "INFERSTACK_PYTHON3_13": str(pinned.resolve()),
    }
    assert interpreters.find_python("python3.12", env) == newest.resolve()
    with pytest.raises(interpreters.InterpreterNotFound, match="INFERSTACK_PYTHON3_11 is not set"):
        interpreters.find_python("python3.11", env)
    assert env["LAMBDA_RUNTIME_EXECUTOR"] == manager.EXECUTOR_NAME
    assert env["GATEWAY_LISTEN"] == "127.0.0.1:4566"
    assert env["INFERSTACK_EXECUTOR_DIR"] == str(paths.executor_dir)
    assert "PYTHONPATH" not in env


def test_opt_paths_in_the_environment_point_at_the_merged_layers() -> None:
    opt_dir = Path("/work/opt-tree")
    env = {
        "MODEL_DIR": "/opt/models/digits:/opt/models/minilm:/srv/models/x",
        "MODEL_URI": "s3://bucket/opt/models/a, /opt/models/b,/opt",
        "ROOT": "/opt",
        "TRAILING": "/opt/",
        "NOT_OPT": "/optional/x",
        "INSIDE": "/srv/opt/x",
        "URL": "http://127.0.0.1:4566/opt",
        "EMPTY": "",
    }
    assert opt.rewrite_opt_paths(env, opt_dir) == {
        "MODEL_DIR": "/work/opt-tree/models/digits:/work/opt-tree/models/minilm:/srv/models/x",
        "MODEL_URI": "s3://bucket/opt/models/a, /work/opt-tree/models/b,/work/opt-tree",
        "ROOT": "/work/opt-tree",
        "TRAILING": "/work/opt-tree/",
        "NOT_OPT": "/optional/x",
        "INSIDE": "/srv/opt/x",
        "URL": "http://127.0.0.1:4566/opt",
        "EMPTY": "",
    }


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
        merged / "python/lib/python3.12/site-packages",
        merged / "python",
    ]


def test_localstack_itself_needs_python_313(tmp_path: Path) -> None:
    pyenv = {"PYENV_ROOT": str(tmp_path / "pyenv"), "PATH": ""}
    with pytest.raises(manager.LocalStackError) as caught:
        find_python313(pyenv)
    assert str(caught.value) == (
        f"LocalStack needs Python 3.13 and none was found (looked in {tmp_path}/pyenv/versions/"
        "3.13.*/bin and on PATH, skipping pyenv shims); install it with `pyenv install 3.13` "
        "or set INFERSTACK_LOCALSTACK_PYTHON"
    )
    newest = _fake_python(tmp_path / "pyenv/versions/3.13.10/bin/python3.13")
    _fake_python(tmp_path / "pyenv/versions/3.13.9/bin/python3.13")
    assert find_python313(pyenv) == newest.resolve()
    pinned = _fake_python(tmp_path / "custom/python")
    assert find_python313({**pyenv, "INFERSTACK_LOCALSTACK_PYTHON": str(pinned)}) == pinned
