"""A model server as a local process on a free loopback port: the container server
(`python -m model_runtime.server`, configured by its environment variables) or an ASGI
app under uvicorn. Started, waited for until ready, and stopped by PID."""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from localdev.errors import ServerProcessError

HOST = "127.0.0.1"
READY_PATH = "/v2/health/ready"
# A port picked free can be taken before the server binds it; the server then exits.
START_ATTEMPTS = 3
METRIC_LINE = re.compile(r"^(\w+)(\{[^}]*\})? (\S+)$")

# The argv of a server listening on the given port.
Command = Callable[[int], list[str]]


def parse_metrics(exposition: str) -> dict[str, float]:
    """Prometheus text exposition -> sample values by `name{labels}`, plus their totals by
    bare name."""
    values: dict[str, float] = {}
    for line in exposition.splitlines():
        match = METRIC_LINE.match(line)
        if match:
            name, labels, value = match.group(1), match.group(2) or "", float(match.group(3))
            values[name + labels] = value
            values[name] = values.get(name, 0.0) + value
    return values


def container_server(port: int) -> list[str]:
    """`python -m model_runtime.server`: it takes its port from INFERSTACK_PORT."""
    return [sys.executable, "-m", "model_runtime.server"]


def uvicorn_app(app: str) -> Command:
    """uvicorn serving `module:attribute` (e.g. the app the Lambda function wraps)."""

    def command(port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            HOST,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]

    return command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def output(self) -> str:
        """Everything the server wrote to stdout and stderr so far."""
        return self.log.read_text(errors="replace")

    def get(self, path: str, timeout_s: float = 10) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(HOST, self.port, timeout=timeout_s)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def metrics(self) -> dict[str, float]:
        """`/metrics` sample values by `name{labels}`, plus their totals by bare name."""
        status, body = self.get("/metrics")
        if status != 200:
            raise ServerProcessError(f"GET {self.url}/metrics answered {status}")
        return parse_metrics(body.decode())

    def stop(self, timeout_s: float = 30) -> int:
        """SIGTERM by PID (the server drains what is in flight), SIGKILL after
        `timeout_s`; returns the exit status (negative: the signal that ended it)."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


def spawn(command: Command, env: Mapping[str, str], log_dir: Path) -> ServerProcess:
    """Start the server on a free port, logging to `log_dir/server-<port>.log`.

    INFERSTACK_HOST, INFERSTACK_PORT and INFERSTACK_LOG_LEVEL=warning are set for the
    container server unless `env` sets them; `env` is added to this process's own."""
    port = free_port()
    log = log_dir / f"server-{port}.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            command(port),
            env={
                **os.environ,
                "INFERSTACK_HOST": HOST,
                "INFERSTACK_PORT": str(port),
                "INFERSTACK_LOG_LEVEL": "warning",
                **env,
            },
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    return ServerProcess(process, port, log)


def wait_ready(server: ServerProcess, timeout_s: float = 60) -> None:
    """Poll the readiness endpoint; raises ServerProcessError, with the server's output,
    if the process exits first or is not ready in `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerProcessError(
                f"server exited {server.process.returncode}:\n{server.output()}"
            )
        try:
            if server.get(READY_PATH, timeout_s=1)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise ServerProcessError(f"server not ready in {timeout_s} s:\n{server.output()}")


def start(
    command: Command,
    env: Mapping[str, str],
    log_dir: Path,
    timeout_s: float = 60,
    attempts: int = START_ATTEMPTS,
) -> ServerProcess:
    """spawn + wait_ready. A server that exits before it is ready is started again on
    another port, `attempts` times in all; one that is not ready in time is stopped."""
    server = spawn(command, env, log_dir)
    try:
        wait_ready(server, timeout_s)
    except ServerProcessError:
        exited = server.process.poll() is not None
        server.stop()
        if exited and attempts > 1:
            return start(command, env, log_dir, timeout_s, attempts - 1)
        raise
    except BaseException:
        server.stop()
        raise
    return server


# A raw HTTP/1.1 client for load tests and benchmarks: one keep-alive connection per
# client, no client library's per-request work between the load and the server.
def raw_request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + "\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    lines = head.split("\r\n")
    headers = {
        key.strip().lower(): value.strip()
        for key, _, value in (line.partition(":") for line in lines[1:] if line)
    }
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split()[1]), headers, body
