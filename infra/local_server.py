"""The local stand-in for a GPU endpoint: the container server (`python -m
model_runtime.server`, the image's entrypoint and environment contract) as a process on
this machine, on the CPU, on a loopback port.

`LocalModelServer` is a Pulumi dynamic resource, so the same program deploys it under the
Pulumi CLI and under the in-process engine (localdev/deploy/realizers/dynamic.py hosts
the provider). Its provider uses the standard library only: it starts the server
detached (its own session: it outlives the deploy), writes a pid file beside the log,
waits for /v2/health/ready and answers pid, port, url and log. A server is the same
process while its pid has the start time the pid file recorded (a reused pid is not taken
for it); one whose process died (killed, the machine restarted) reads as gone, and the
next `up` starts it again. The pid file's path depends only on the inputs, so a create
stopped part way leaves a process the engine's recovery finds (`find`) and stops.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic as dynamic

HOST = "127.0.0.1"
READY_PATH = "/v2/health/ready"
SERVER_MODULE = "model_runtime.server"
# The server is told to drain within this on SIGTERM (INFERSTACK_SHUTDOWN_TIMEOUT_S);
# after it and a margin, it is killed.
SHUTDOWN_TIMEOUT_S = 5
KILL_MARGIN_S = 5
READY_TIMEOUT_S = 120
# A port chosen from the stack and model names, so that a restarted server keeps its URL
# (and the API's integration stays as it is); a free one when it is taken.
PORT_RANGE = (20000, 29999)
LOG_LINES = 20
# Variables of the deploying process that would configure the server behind the stack's
# back (a shell's MODEL_DIR, INFERSTACK_*): not passed on.
_OWN_PREFIXES = ("INFERSTACK_", "MODEL_DIR", "MODEL_URI")


def preferred_port(stack: str, model: str) -> int:
    low, high = PORT_RANGE
    digest = hashlib.sha256(f"{stack}/{model}".encode()).digest()
    return low + int.from_bytes(digest[:4], "big") % (high - low + 1)


def log_path(root: Path, stack: str, model: str) -> Path:
    return root / "build" / "local-servers" / stack / f"{model}.log"


class LocalModelServerProvider(dynamic.ResourceProvider):
    """Starts, checks and stops one model server process; props (camelCase, as Pulumi
    passes them): python, cwd, modelDir, modelHash, log, environment, readyTimeoutS."""

    serialize_as_secret_always = False

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        log = Path(str(props["log"]))
        log.parent.mkdir(parents=True, exist_ok=True)
        environment = {str(k): str(v) for k, v in dict(props["environment"]).items()}
        port = _free(int(environment["INFERSTACK_PORT"]))
        environment["INFERSTACK_PORT"] = str(port)
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
        with log.open("wb") as output:
            process = subprocess.Popen(
                [str(props["python"]), "-m", SERVER_MODULE],
                cwd=str(props["cwd"]),
                env={**inherited, **environment, "MODEL_DIR": str(props["modelDir"])},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Its own session: it outlives the deploy, and no Ctrl-C meant for the
                # deploy reaches it.
                start_new_session=True,
            )
        started = _start_time(process.pid)
        # Recorded before the wait, so that an interrupted create leaves a findable process.
        _pid_file(log).write_text(json.dumps({"pid": process.pid, "startTime": started}))
        url = f"http://{HOST}:{port}"
        try:
            _wait_ready(process, url, float(props.get("readyTimeoutS") or READY_TIMEOUT_S), log)
        except BaseException:
            _stop(process.pid, started)
            _pid_file(log).unlink(missing_ok=True)
            raise
        outs = {
            **props,
            "pid": process.pid,
            "startTime": started,
            "port": port,
            "url": url,
            "log": str(log),
        }
        return dynamic.CreateResult(str(process.pid), outs)

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        if _running(int(id_), _recorded(props)):
            return dynamic.ReadResult(id_, props)
        return dynamic.ReadResult(None, {})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dynamic.DiffResult:
        # A running server takes no new settings: any change starts a new one, after the
        # old one stopped (the new one would like its port).
        changed = [key for key in news if olds.get(key) != news[key]]
        return dynamic.DiffResult(
            changes=bool(changed), replaces=changed, delete_before_replace=True
        )

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        pid = int(id_)
        recorded = _recorded(props)
        if recorded is not None and recorded[0] == pid:
            _stop(pid, recorded[1])
        _pid_file(Path(str(props["log"]))).unlink(missing_ok=True)

    def find(self, props: dict[str, Any]) -> set[str]:
        """The server a create with these props started, if it is still running (for a
        deploy engine recovering from an interrupted create)."""
        recorded = _recorded({"log": props["log"]})
        if recorded is None or not _running(recorded[0], recorded):
            return set()
        return {str(recorded[0])}


class LocalModelServer(dynamic.Resource, module="inferstack", name="LocalModelServer"):
    """A model server process on this machine, serving `model_dir` with `environment`."""

    pid: pulumi.Output[int]
    port: pulumi.Output[int]
    url: pulumi.Output[str]
    log: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        python: str,
        cwd: Path,
        model_dir: Path,
        model_hash: str,
        log: Path,
        environment: dict[str, str],
        stands_in: str | None = None,
        ready_timeout_s: int = READY_TIMEOUT_S,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        # `standsIn`: the name of the declared-only component (a GpuEndpoint) this process
        # stands in for (a deploy summary names the stand-in beside its objects).
        props: dict[str, Any] = {
            "python": python,
            "cwd": str(cwd),
            "modelDir": str(model_dir),
            # The artifact's content hash: a changed model restarts the server (it loads
            # its model once, at start).
            "modelHash": model_hash,
            "log": str(log),
            "environment": environment,
            "readyTimeoutS": ready_timeout_s,
            "standsIn": stands_in,
            "pid": None,
            "startTime": None,
            "port": None,
            "url": None,
        }
        super().__init__(LocalModelServerProvider(), name, props, opts)


def _pid_file(log: Path) -> Path:
    return log.with_suffix(".pid")


def _recorded(props: dict[str, Any]) -> tuple[int, int | None] | None:
    """(pid, start time) from the outputs, else from the pid file; None if neither."""
    if props.get("pid") is not None:
        start = props.get("startTime")
        return int(props["pid"]), None if start is None else int(start)
    try:
        data = json.loads(_pid_file(Path(str(props["log"]))).read_text())
    except (OSError, ValueError):
        return None
    start = data.get("startTime")
    return int(data["pid"]), None if start is None else int(start)


def _running(pid: int, recorded: tuple[int, int | None] | None) -> bool:
    """Whether `pid` is the server process `recorded` (pid, start time) names."""
    if recorded is None or recorded[0] != pid or recorded[1] is None:
        return False
    return _start_time(pid) == recorded[1] and _is_server(pid)


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (state is [0]); None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _start_time(pid: int) -> int | None:
    """The process's start time (clock ticks after boot); None if gone or a zombie (then
    reaped, if it is this process's child)."""
    fields = _stat(pid)
    if fields is None:
        return None
    if fields[0] in ("Z", "X"):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return None
    return int(fields[19])


def _is_server(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return SERVER_MODULE.encode() in argv


def _free(port: int) -> int:
    """`port` if nothing listens on it, else a free one."""
    with socket.socket() as sock:
        # As the server binds (uvicorn sets it): connections of a stopped server still in
        # TIME_WAIT do not hold the port, a listening process does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
            return port
        except OSError:
            sock.bind((HOST, 0))
            return int(sock.getsockname()[1])


def _wait_ready(process: subprocess.Popen[bytes], url: str, timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while True:
        code = process.poll()
        if code is not None:
            raise RuntimeError(
                f"the model server exited with status {code} before it was ready; "
                f"{log}:\n{_tail(log)}"
            )
        try:
            with opener.open(url + READY_PATH, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the model server was not ready at {url}{READY_PATH} within {timeout_s:g} s; "
                f"stopped it; {log}:\n{_tail(log)}"
            )
        time.sleep(0.2)


def _stop(pid: int, started: int | None) -> None:
    """SIGTERM (the server drains), then SIGKILL once its shutdown timeout is over; only
    while `pid` is still the process that started at `started`."""
    if started is None:
        return
    for sig, wait_s in (
        (signal.SIGTERM, SHUTDOWN_TIMEOUT_S + KILL_MARGIN_S),
        (signal.SIGKILL, KILL_MARGIN_S),
    ):
        if _start_time(pid) != started:
            return
        try:
            # Its own session: the group is the server and anything it started.
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while _start_time(pid) == started and time.monotonic() < deadline:
            time.sleep(0.1)


def _tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-LOG_LINES:])
