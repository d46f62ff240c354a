"""The server harness itself (localdev.server_process), on small stand-in servers."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from localdev import server_process
from localdev.errors import ServerProcessError

# Ready on /v2/health/ready, two labelled samples on /metrics, 404 otherwise.
STAND_IN = """
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

METRICS = 'calls_total{model="a"} 2.0\\ncalls_total{model="b"} 3.0\\n'
BODIES = {"/v2/health/ready": b"", "/metrics": ("# HELP calls_total x\\n" + METRICS).encode()}

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = BODIES.get(self.path)
        self.send_response(404 if body is None else 200)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

address = (os.environ["INFERSTACK_HOST"], int(os.environ["INFERSTACK_PORT"]))
HTTPServer(address, Handler).serve_forever()
"""


def python(code: str) -> server_process.Command:
    return lambda port: [sys.executable, "-c", code]


def test_start_waits_for_ready_and_stop_sends_sigterm(tmp_path: Path) -> None:
    server = server_process.start(python(STAND_IN), {}, tmp_path)
    try:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.get("/v2/health/ready")[0] == 200
        assert server.metrics() == {
            'calls_total{model="a"}': 2.0,
            'calls_total{model="b"}': 3.0,
            "calls_total": 5.0,
        }
        assert server.log == tmp_path / f"server-{server.port}.log"
    finally:
        assert server.stop() == -signal.SIGTERM
    assert server.stop() == -signal.SIGTERM  # stopping again changes nothing


def test_a_server_that_exits_is_retried_on_new_ports_then_reported(tmp_path: Path) -> None:
    code = "import sys; print('no model here'); sys.exit(3)"
    with pytest.raises(ServerProcessError) as raised:
        server_process.start(python(code), {}, tmp_path)
    assert str(raised.value) == "server exited 3:\nno model here\n"
    assert len(list(tmp_path.glob("server-*.log"))) == server_process.START_ATTEMPTS


def test_a_server_not_ready_in_time_is_stopped(tmp_path: Path) -> None:
    code = "import time; print('loading', flush=True); time.sleep(60)"
    started = time.monotonic()
    with pytest.raises(ServerProcessError) as raised:
        server_process.start(python(code), {}, tmp_path, timeout_s=1)
    assert time.monotonic() - started < 10
    assert str(raised.value).startswith("server not ready in 1 s:\n")
    assert len(list(tmp_path.glob("server-*.log"))) == 1  # a slow server is not retried


def test_stop_kills_a_server_that_ignores_sigterm(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        " print('ignoring SIGTERM', flush=True); time.sleep(60)"
    )
    server = server_process.spawn(python(code), {}, tmp_path)
    deadline = time.monotonic() + 30
    while "ignoring SIGTERM" not in server.output():
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.05)
    assert server.stop(timeout_s=0.5) == -signal.SIGKILL


def test_the_container_server_gets_loopback_settings_unless_env_sets_them(
    tmp_path: Path,
) -> None:
    code = "import os; print(os.environ['INFERSTACK_HOST'], os.environ['INFERSTACK_PORT'])"
    server = server_process.spawn(python(code), {"INFERSTACK_HOST": "::1"}, tmp_path)
    assert server.process.wait(30) == 0
    assert server.output() == f"::1 {server.port}\n"
