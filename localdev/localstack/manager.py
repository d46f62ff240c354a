"""LocalStack community in host mode (no Docker): install, start, stop and status, by PID.

LocalStack runs as a plain process of its own Python 3.13 virtualenv (``.localstack-venv/``)
with its data under ``build/localstack/``, and Lambda functions run as local processes
through our runtime-executor plugin (``plugins/localstack-executor``), installed into that
virtualenv. The PID file records the process's start time too, so a recycled PID is never
mistaken for our LocalStack.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localdev.errors import LocalStackError

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
REQUIREMENTS = HERE / "requirements.txt"
EXECUTOR_SOURCE = REPO_ROOT / "plugins" / "localstack-executor"
EXECUTOR_NAME = "inferstack-process"
ENTRY_POINT_GROUP = "localstack.lambda.runtime_executor"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566
LOCALSTACK_PYTHON = "3.13"
_MAIN_MODULE = "localstack.runtime.main"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Paths:
    venv: Path
    data: Path

    @classmethod
    def default(cls, root: Path = REPO_ROOT) -> Paths:
        return cls(venv=root / ".localstack-venv", data=root / "build" / "localstack")

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def stamp(self) -> Path:
        return self.venv / ".inferstack-install.json"

    @property
    def pid_file(self) -> Path:
        return self.data / "localstack.pid"

    @property
    def log_file(self) -> Path:
        return self.data / "localstack.log"

    @property
    def install_log(self) -> Path:
        return self.data / "install.log"

    @property
    def executor_dir(self) -> Path:
        return self.data / "lambda"


@dataclass(frozen=True)
class Status:
    running: bool
    pid: int | None
    host: str
    port: int
    healthy: bool
    log_file: Path
    reused: bool = False
    version: str | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True)
class InstallResult:
    steps: tuple[str, ...]
    seconds: float

    @property
    def changed(self) -> bool:
        return bool(self.steps)


@dataclass(frozen=True)
class _Record:
    pid: int
    start_time: int
    host: str
    port: int


# -- install ----------------------------------------------------------------------------


def find_python313(environ: Mapping[str, str] | None = None) -> Path:
    """The real Python 3.13 binary: pyenv's shims only work for the active version."""
    env = os.environ if environ is None else environ
    override = env.get("INFERSTACK_LOCALSTACK_PYTHON")
    if override:
        if not os.access(override, os.X_OK):
            raise LocalStackError(f"INFERSTACK_LOCALSTACK_PYTHON={override} is not executable")
        return Path(override).resolve()
    pyenv_root = Path(env.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = sorted(
        pyenv_root.glob(f"versions/{LOCALSTACK_PYTHON}*/bin/python{LOCALSTACK_PYTHON}"),
        key=lambda p: [int(x) if x.isdigit() else -1 for x in p.parents[1].name.split(".")],
        reverse=True,
    )
    for directory in env.get("PATH", "").split(os.pathsep):
        if directory and Path(directory).name != "shims":
            candidates.append(Path(directory) / f"python{LOCALSTACK_PYTHON}")
    for candidate in candidates:
        resolved = candidate.resolve()
        if resolved.is_file() and os.access(resolved, os.X_OK) and "shims" not in resolved.parts:
            return resolved
    raise LocalStackError(
        f"LocalStack needs Python {LOCALSTACK_PYTHON} and none was found (looked in "
        f"{pyenv_root}/versions and on PATH); install it with `pyenv install "
        f"{LOCALSTACK_PYTHON}` or set INFERSTACK_LOCALSTACK_PYTHON"
    )


def install(
    paths: Paths | None = None, *, force: bool = False, echo: Callable[[str], None] | None = None
) -> InstallResult:
    """Make LocalStack's virtualenv match the requirements file and the executor source.

    Cached: a stamp in the virtualenv records what was installed (the interpreter, a hash
    of the requirements file, a hash of the executor package), and only what changed is
    redone. A no-op costs a few file hashes.
    """
    paths = paths or Paths.default()
    say = echo or (lambda _message: None)
    started = time.monotonic()
    paths.data.mkdir(parents=True, exist_ok=True)
    with _lock(paths, "install"):
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
            [str(paths.python), "-m", "pip", "install", "--no-deps", "--force-reinstall",
             str(source)],
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
    return {n for n in names if n in ("build", "dist", "__pycache__") or n.endswith(".egg-info")}


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


# -- start / stop / status ----------------------------------------------------------------


def start(
    port: int = DEFAULT_PORT,
    host: str = DEFAULT_HOST,
    *,
    paths: Paths | None = None,
    timeout_s: float = 120.0,
    extra_env: Mapping[str, str] | None = None,
    echo: Callable[[str], None] | None = None,
) -> Status:
    """Start LocalStack (installing it first if needed) and wait until it is healthy.

    If our LocalStack is already running on that port it is reused (``Status.reused``).
    """
    paths = paths or Paths.default()
    paths.data.mkdir(parents=True, exist_ok=True)
    with _lock(paths, "run"):
        record = _read_record(paths)
        if record is not None and _is_ours(record):
            if (record.host, record.port) != (host, port):
                raise LocalStackError(
                    f"LocalStack is already running on {record.host}:{record.port} (pid "
                    f"{record.pid}); stop it first to start it on {host}:{port}"
                )
            _wait_healthy(record, None, paths, timeout_s)
            return _status(record, paths, reused=True)
        if record is not None:
            paths.pid_file.unlink(missing_ok=True)  # stale: that process is gone
        if not _port_free(host, port):
            raise LocalStackError(
                f"port {port} on {host} is already in use by {_describe_listener(port)}; "
                "stop it or choose another port"
            )
        install(paths, echo=echo)
        for scratch in (paths.data / "tmp", paths.executor_dir):
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir(parents=True)
        if echo:
            echo(f"starting LocalStack on {host}:{port} (log: {paths.log_file})")
        with open(paths.log_file, "wb") as log:
            process = subprocess.Popen(
                [str(paths.python), "-m", _MAIN_MODULE],
                cwd=paths.data,
                env=_localstack_env(host, port, paths, extra_env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        start_time = _proc_start_time(process.pid)
        assert start_time is not None, "a process we just started has a /proc entry"
        record = _Record(process.pid, start_time, host, port)
        paths.pid_file.write_text(json.dumps(dataclasses.asdict(record)) + "\n")
        try:
            _wait_healthy(record, process, paths, timeout_s)
        except BaseException:
            _terminate(record, grace_s=0)
            paths.pid_file.unlink(missing_ok=True)
            raise
        # Without this, Popen's destructor warns that the (intentionally) detached
        # process is still running; stop() reaps it by PID.
        process.returncode = 0
        return _status(record, paths)


def stop(paths: Paths | None = None, *, grace_s: float = 15.0) -> bool:
    """Stop our LocalStack by its PID: its process group, then any leftover descendant
    (Lambda environments run in sessions of their own). True if one was running."""
    paths = paths or Paths.default()
    with _lock(paths, "run"):
        record = _read_record(paths)
        if record is None:
            return False
        was_running = _is_ours(record)
        if was_running:
            _terminate(record, grace_s=grace_s)
        paths.pid_file.unlink(missing_ok=True)
        return was_running


def status(paths: Paths | None = None) -> Status:
    paths = paths or Paths.default()
    record = _read_record(paths)
    if record is None or not _is_ours(record):
        return Status(False, None, DEFAULT_HOST if record is None else record.host,
                      DEFAULT_PORT if record is None else record.port, False, paths.log_file)
    return _status(record, paths)


def _status(record: _Record, paths: Paths, *, reused: bool = False) -> Status:
    health = _health(record.host, record.port)
    version = health.get("version") if health else None
    return Status(
        running=True,
        pid=record.pid,
        host=record.host,
        port=record.port,
        healthy=health is not None,
        log_file=paths.log_file,
        reused=reused,
        version=str(version) if version else None,
    )


def _localstack_env(
    host: str, port: int, paths: Paths, extra_env: Mapping[str, str] | None
) -> dict[str, str]:
    env = dict(os.environ)
    # tempfile prefers TMPDIR/TEMP over TMP; LocalStack warns that TMPDIR is deprecated.
    for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "TMPDIR", "TEMP"):
        env.pop(key, None)
    env.setdefault("LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT", "60")  # model loading on 2 cores
    env.update(
        {
            "GATEWAY_LISTEN": f"{host}:{port}",
            "LOCALSTACK_VOLUME_DIR": str(paths.data / "volume"),
            "FILESYSTEM_ROOT": str(paths.data / "filesystem"),
            "TMP": str(paths.data / "tmp"),
            "XDG_CACHE_HOME": str(paths.data / "cache"),
            "DNS_ADDRESS": "0",
            "DISABLE_EVENTS": "1",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "LAMBDA_RUNTIME_EXECUTOR": EXECUTOR_NAME,
            "INFERSTACK_EXECUTOR_DIR": str(paths.executor_dir),
        }
    )
    env.update(extra_env or {})
    return env


def _wait_healthy(
    record: _Record, process: subprocess.Popen[bytes] | None, paths: Paths, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise LocalStackError(
                f"LocalStack exited during startup (exit status {process.returncode}): "
                f"{_last_line(paths.log_file)} (log: {paths.log_file})"
            )
        if process is None and not _is_ours(record):
            raise LocalStackError(f"LocalStack (pid {record.pid}) ended; see {paths.log_file}")
        if _health(record.host, record.port) is not None and _ready(record.host, record.port):
            return
        time.sleep(0.2)
    raise LocalStackError(
        f"LocalStack did not become healthy on {record.host}:{record.port} within "
        f"{timeout_s:.0f} s; see {paths.log_file}"
    )


def _get_json(url: str, timeout_s: float = 2.0) -> Any:
    try:
        with _NO_PROXY.open(url, timeout=timeout_s) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def _health(host: str, port: int) -> dict[str, Any] | None:
    body = _get_json(f"http://{host}:{port}/_localstack/health")
    return body if isinstance(body, dict) and "services" in body else None


def _ready(host: str, port: int) -> bool:
    """Health answers before the runtime has finished starting; the init stages say when."""
    body = _get_json(f"http://{host}:{port}/_localstack/init")
    if not isinstance(body, dict):
        return False
    completed = body.get("completed")
    return isinstance(completed, dict) and bool(completed.get("READY"))


def _terminate(record: _Record, *, grace_s: float) -> None:
    descendants = [(pid, t) for pid in _descendants(record.pid) if (t := _proc_start_time(pid))]
    if grace_s > 0:
        _signal_group(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _is_ours(record):
            time.sleep(0.1)
    if _is_ours(record):
        _signal_group(record.pid, signal.SIGKILL)
    for pid, start_time in descendants:
        if _proc_start_time(pid) == start_time:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(record.pid, record.start_time):
        time.sleep(0.05)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # started with its own session: group id == pid
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, sig)


# -- /proc ------------------------------------------------------------------------------


def _read_record(paths: Paths) -> _Record | None:
    try:
        data = json.loads(paths.pid_file.read_text())
        return _Record(int(data["pid"]), int(data["start_time"]), str(data["host"]),
                       int(data["port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()  # fields from 3 (state) on


def _proc_start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def _alive(pid: int, start_time: int) -> bool:
    """Running (not a zombie) and the same process, not a recycled PID."""
    fields = _stat_fields(pid)
    if fields is None or int(fields[19]) != start_time:
        return False
    if fields[0] in ("Z", "X"):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child
        return False
    return True


def _is_ours(record: _Record) -> bool:
    if not _alive(record.pid, record.start_time):
        return False
    try:
        cmdline = Path(f"/proc/{record.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return _MAIN_MODULE.encode() in cmdline


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _describe_listener(port: int) -> str:
    """Best effort: which process listens on the port (via /proc/net/tcp socket inodes)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    targets = {f"socket:[{inode}]" for inode in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in targets:
                    command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").strip()
                    return f"another process (pid {entry.name}: {command.decode()[:80]})"
    return "another process"


def _last_line(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        if lines:
            return lines[-1].strip()[:200]
    return "no output"


@contextlib.contextmanager
def _lock(paths: Paths, name: str) -> Iterator[None]:
    """Serialises installs and starts across processes (two test runs, say)."""
    paths.data.mkdir(parents=True, exist_ok=True)
    with open(paths.data / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
