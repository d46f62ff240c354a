"""A real uvicorn server on 127.0.0.1 serving the app the Lambda function wraps."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from layers.package import project_root

REPO = project_root()
START_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _start(model_dir: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start uvicorn on a free port; retry on a new port if it loses a race for it."""
    env = {**os.environ, "MODEL_DIR": str(model_dir), "PYTHONPATH": str(REPO)}
    last_log = ""
    for _ in range(3):
        port = _free_port()
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "functions.handler:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    if httpx.get(f"{url}/v2/health/ready", timeout=1.0).status_code == 200:
                        return process, url
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        except BaseException:
            _stop(process)
            raise
        _stop(process)
        last_log = log_path.read_text(errors="replace")
    raise RuntimeError(f"uvicorn did not become ready; its log:\n{last_log}")


@pytest.fixture(scope="session")
def server_url(digits_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a uvicorn server (`functions.handler:app`) serving the digits model."""
    log_path = tmp_path_factory.mktemp("uvicorn") / "server.log"
    process, url = _start(digits_dir, log_path)
    try:
        yield url
    finally:
        _stop(process)
