"""LocalStack's own Python 3.13 virtualenv: the pinned requirements and our executor plugin.

Cached: a stamp in the virtualenv records what was installed (the interpreter, a hash of
the requirements file, a hash of the executor package), and only what changed is redone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from layers.errors import InterpreterNotFoundError
from layers.interpreters import find_python
from localdev.errors import LocalStackError
from localdev.localstack.paths import REPO_ROOT, Paths

REQUIREMENTS = Path(__file__).resolve().with_name("requirements.txt")
EXECUTOR_SOURCE = REPO_ROOT / "plugins" / "localstack-executor"
EXECUTOR_NAME = "inferstack-process"
ENTRY_POINT_GROUP = "localstack.lambda.runtime_executor"
LOCALSTACK_PYTHON = "3.13"


@dataclass(frozen=True)
class InstallResult:
    steps: tuple[str, ...]
    seconds: float

    @property
    def changed(self) -> bool:
        return bool(self.steps)


def find_python313(environ: Mapping[str, str] | None = None) -> Path:
    """The interpreter for LocalStack's virtualenv: INFERSTACK_LOCALSTACK_PYTHON if set,
    else the real Python 3.13 (layers.interpreters)."""
    env = os.environ if environ is None else environ
    override = env.get("INFERSTACK_LOCALSTACK_PYTHON")
    if override:
        if not os.access(override, os.X_OK):
            raise LocalStackError(f"INFERSTACK_LOCALSTACK_PYTHON={override} is not executable")
        return Path(override).resolve()
    try:
        return find_python(LOCALSTACK_PYTHON, env)
    except InterpreterNotFoundError as exc:
        raise LocalStackError(
            f"LocalStack needs Python {LOCALSTACK_PYTHON} and none was found ({exc.where}); "
            f"install it with `pyenv install {LOCALSTACK_PYTHON}` or set "
            "INFERSTACK_LOCALSTACK_PYTHON"
        ) from exc


def install(
    paths: Paths | None = None, *, force: bool = False, echo: Callable[[str], None] | None = None
) -> InstallResult:
    """Make LocalStack's virtualenv match the requirements file and the executor source.

    A no-op costs a few file hashes.
    """
    paths = paths or Paths.default()
    say = echo or (lambda _message: None)
    started = time.monotonic()
    paths.data.mkdir(parents=True, exist_ok=True)
    with paths.lock("install"):
        python = find_python313()
        want = {
            "python": str(python),
            "requirements": _file_hash(REQUIREMENTS),
            "executor": _tree_hash(EXECUTOR_SOURCE),
        }
        have = {} if force else _read_stamp(paths)
        steps: list[str] = []
        if have.get("python") != want["python"] or not paths.python.exists():
            say(f"creating {paths.venv} with {python}")
            _run([str(python), "-m", "venv", "--clear", str(paths.venv)], paths)
            _run([str(paths.python), "-m", "pip", "install", "--upgrade", "pip"], paths)
            have = {"python": want["python"]}
            steps.append("virtualenv")
        if have.get("requirements") != want["requirements"]:
            say(f"installing LocalStack from {REQUIREMENTS.relative_to(REPO_ROOT)} (~1.5 min)")
            _run([str(paths.python), "-m", "pip", "install", "-r", str(REQUIREMENTS)], paths)
            have["requirements"] = want["requirements"]
            _write_stamp(paths, have)
            steps.append("localstack")
        if have.get("executor") != want["executor"]:
            say("installing the inferstack-process Lambda executor")
            _install_executor(paths)
            have["executor"] = want["executor"]
            steps.append("executor")
        _write_stamp(paths, {**have, **want})
    return InstallResult(steps=tuple(steps), seconds=time.monotonic() - started)


def _install_executor(paths: Paths) -> None:
    # Built from a copy: pip's in-tree build would leave build/ and *.egg-info in the repo.
    with tempfile.TemporaryDirectory(prefix="inferstack-executor-") as scratch:
        source = Path(scratch) / "executor"
        shutil.copytree(EXECUTOR_SOURCE, source, ignore=_ignored_in_source)
        _run(
            [
                str(paths.python),
                "-m",
                "pip",
                "install",
                "--no-deps",
                "--force-reinstall",
                str(source),
            ],
            paths,
        )
    check = (
        "import sys; from importlib.metadata import entry_points; "
        f"sys.exit({EXECUTOR_NAME!r} not in entry_points(group={ENTRY_POINT_GROUP!r}).names)"
    )
    if subprocess.run([str(paths.python), "-c", check], check=False).returncode != 0:
        raise LocalStackError(
            f"the executor plugin {EXECUTOR_NAME!r} is not registered under {ENTRY_POINT_GROUP} "
            f"in {paths.venv} after installing it; see {paths.install_log}"
        )
    # LocalStack caches the entry points it found, keyed by file times rounded to ~2
    # minutes: a reinstall inside that window could start with the old plugin list (the
    # alias-routing hook missing). Dropping the cache makes the next start read them again.
    shutil.rmtree(paths.data / "cache" / "plux", ignore_errors=True)


def _run(command: list[str], paths: Paths) -> None:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        env.pop(key, None)
    with open(paths.install_log, "a") as log:
        log.write(f"\n$ {' '.join(command)}\n")
        log.flush()
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    if result.returncode != 0:
        raise LocalStackError(
            f"`{' '.join(command[-3:])}` failed (exit {result.returncode}); see {paths.install_log}"
        )


def _ignored_in_source(directory: str, names: list[str]) -> set[str]:
    return {
        n
        for n in names
        if n in ("build", "dist", "__pycache__", ".mypy_cache", ".ruff_cache")
        or n.endswith(".egg-info")
    }


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(set(dirs) - _ignored_in_source(directory, dirs))
        for name in sorted(set(files) - _ignored_in_source(directory, files)):
            if name.endswith(".pyc"):
                continue
            path = Path(directory) / name
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _read_stamp(paths: Paths) -> dict[str, str]:
    try:
        data = json.loads(paths.stamp.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_stamp(paths: Paths, stamp: Mapping[str, str]) -> None:
    paths.stamp.write_text(json.dumps(dict(stamp), indent=2, sort_keys=True) + "\n")
