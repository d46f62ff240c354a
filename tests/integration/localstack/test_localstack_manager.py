"""The manager: cached install, reuse, a taken port, and nothing left behind after a kill."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from localdev.localstack import manager
from tests.support.localstack import ROLE, client, environment_pids, running, zip_bytes


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_install_is_cached(localstack: manager.Status) -> None:
    result = manager.install()
    assert result.steps == ()
    assert result.seconds < 2


def test_starting_again_reuses_the_running_localstack(localstack: manager.Status) -> None:
    again = manager.start()
    assert again.reused
    assert again.pid == localstack.pid
    assert again.healthy
    status = manager.status()
    assert status.running and status.healthy and status.pid == localstack.pid
    assert status.version


def test_a_port_taken_by_something_else_is_a_clear_error(tmp_path: Path) -> None:
    paths = manager.Paths(venv=manager.Paths.default().venv, data=tmp_path / "ls")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(manager.LocalStackError) as caught:
            manager.start(port, paths=paths)
    message = str(caught.value)
    assert f"port {port} on 127.0.0.1 is already in use" in message
    assert f"pid {os.getpid()}" in message
    assert "\n" not in message
    assert not paths.pid_file.exists()


def test_stop_without_a_running_localstack_is_a_no_op(tmp_path: Path) -> None:
    paths = manager.Paths(venv=manager.Paths.default().venv, data=tmp_path / "ls")
    assert manager.stop(paths) is False
    assert manager.status(paths).running is False


def test_a_stale_pid_file_is_not_trusted(tmp_path: Path) -> None:
    paths = manager.Paths(venv=manager.Paths.default().venv, data=tmp_path / "ls")
    paths.data.mkdir(parents=True)
    # Our own PID, but not a LocalStack: must never be signalled.
    paths.pid_file.write_text(
        json.dumps({"pid": os.getpid(), "start_time": 1, "host": "127.0.0.1", "port": 1})
    )
    assert manager.status(paths).running is False
    assert manager.stop(paths) is False
    assert not paths.pid_file.exists()


def test_killing_localstack_leaves_no_environment_processes(
    localstack: manager.Status, tmp_path: Path
) -> None:
    """A second LocalStack of its own, so that the session's one survives this test."""
    paths = manager.Paths(venv=manager.Paths.default().venv, data=tmp_path / "ls")
    port = _free_port()
    status = manager.start(port, paths=paths)
    try:
        assert status.pid is not None and not status.reused
        lam: Any = client("lambda", endpoint=status.endpoint)
        source = "import time\n\ndef handler(event, context):\n    time.sleep(event['s'])\n"
        lam.create_function(
            FunctionName="sleeper",
            Runtime="python3.12",
            Role=ROLE,
            Handler="handler.handler",
            Code={"ZipFile": zip_bytes({"handler.py": source})},
            Timeout=30,
        )
        lam.get_waiter("function_active_v2").wait(
            FunctionName="sleeper", WaiterConfig={"Delay": 0.2, "MaxAttempts": 150}
        )
        # Two environments, busy in invocations that outlive LocalStack.
        with ThreadPoolExecutor(2) as pool:
            for _ in range(2):
                pool.submit(_quiet_invoke, status.endpoint, {"s": 20})
            deadline = time.monotonic() + 20
            while len(environment_pids(status.pid)) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            environments = environment_pids(status.pid)
            assert len(environments) == 2

            os.kill(status.pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while any(running(pid) for pid in environments) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not [pid for pid in environments if running(pid)]
    finally:
        manager.stop(paths)
    assert not running(status.pid)
    assert not paths.pid_file.exists()


def _quiet_invoke(endpoint: str, event: dict[str, Any]) -> None:
    try:
        lam: Any = client("lambda", endpoint=endpoint, retries={"total_max_attempts": 1})
        lam.invoke(FunctionName="sleeper", Payload=json.dumps(event))
    except Exception:
        pass  # LocalStack is killed while this waits
