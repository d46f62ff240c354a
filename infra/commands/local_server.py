"""Run `inferstack serve` as a child process on loopback, and always stop it by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


class ServerStartError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_server(
    model_dirs: Sequence[Path], port: int = 0, timeout_s: float = 60.0
) -> Iterator[str]:
    """Start a server for `model_dirs`; yield its base URL once ready; stop it on exit."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "infra.cli",
        "serve",
        *map(str, model_dirs),
        "--port",
        str(port),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_ready(url, process, timeout_s)
        yield url
    finally:
        stop(process)


def stop(process: subprocess.Popen[str], grace_s: float = 10.0) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    if process.stderr:
        process.stderr.close()


def _wait_ready(url: str, process: subprocess.Popen[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stderr.read().strip() if process.stderr else ""
            last = output.splitlines()[-1] if output else f"exit code {process.returncode}"
            raise ServerStartError(f"model server exited during start: {last}")
        try:
            with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise ServerStartError(f"model server at {url} was not ready within {timeout_s:.0f} s")
