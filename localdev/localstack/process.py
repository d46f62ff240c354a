"""Start, stop and look at our LocalStack process, by PID.

LocalStack runs in a session (process group) of its own. The PID file records the
process's start time too, so a recycled PID is never mistaken for our LocalStack; one
that is already running on the asked address is reused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from localdev.errors import LocalStackError
from localdev.localstack import health, procfs
from localdev.localstack.environment import localstack_env
from localdev.localstack.install import install
from localdev.localstack.paths import Paths

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566
_MAIN_MODULE = "localstack.runtime.main"


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
class _Record:
    """The PID file: which process is our LocalStack, and where it listens."""

    pid: int
    start_time: int
    host: str
    port: int


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
    with paths.lock("run"):
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
                f"port {port} on {host} is already in use by {procfs.describe_listener(port)}; "
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
                env=localstack_env(host, port, paths, extra_env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        start_time = procfs.start_time(process.pid)
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
    with paths.lock("run"):
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
        return Status(
            False,
            None,
            DEFAULT_HOST if record is None else record.host,
            DEFAULT_PORT if record is None else record.port,
            False,
            paths.log_file,
        )
    return _status(record, paths)


def _status(record: _Record, paths: Paths, *, reused: bool = False) -> Status:
    body = health.health(record.host, record.port)
    version = body.get("version") if body else None
    return Status(
        running=True,
        pid=record.pid,
        host=record.host,
        port=record.port,
        healthy=body is not None,
        log_file=paths.log_file,
        reused=reused,
        version=str(version) if version else None,
    )


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
        if health.health(record.host, record.port) is not None and health.ready(
            record.host, record.port
        ):
            return
        time.sleep(0.2)
    raise LocalStackError(
        f"LocalStack did not become healthy on {record.host}:{record.port} within "
        f"{timeout_s:.0f} s; see {paths.log_file}"
    )


def _terminate(record: _Record, *, grace_s: float) -> None:
    descendants = [
        (pid, t) for pid in procfs.descendants(record.pid) if (t := procfs.start_time(pid))
    ]
    if grace_s > 0:
        _signal_group(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _is_ours(record):
            time.sleep(0.1)
    if _is_ours(record):
        _signal_group(record.pid, signal.SIGKILL)
    for pid, start_time in descendants:
        if procfs.start_time(pid) == start_time:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and procfs.alive(record.pid, record.start_time):
        time.sleep(0.05)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # started with its own session: group id == pid
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, sig)


def _read_record(paths: Paths) -> _Record | None:
    try:
        data = json.loads(paths.pid_file.read_text())
        return _Record(
            int(data["pid"]), int(data["start_time"]), str(data["host"]), int(data["port"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _is_ours(record: _Record) -> bool:
    return procfs.alive(record.pid, record.start_time) and (
        _MAIN_MODULE.encode() in procfs.command_line(record.pid)
    )


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _last_line(path: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        if lines:
            return lines[-1].strip()[:200]
    return "no output"
