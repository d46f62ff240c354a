"""What a unit test may not do: start a process or open a connection (to 127.0.0.1 too).

In-process ASGI transports (httpx.ASGITransport, starlette's TestClient) open no
socket, so serving tests through them are unit tests.
"""

from __future__ import annotations

import _posixsubprocess
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import pytest

MESSAGE = "unit tests start no process and use no network: move this test to tests/integration"

# Every way this interpreter starts a process or connects: subprocess.Popen (so run,
# check_output and asyncio's subprocesses) executes its child through `_execute_child`;
# multiprocessing forks or calls `_posixsubprocess.fork_exec` itself.
FORBIDDEN: list[tuple[Any, str]] = [
    (subprocess.Popen, "_execute_child"),
    (_posixsubprocess, "fork_exec"),
    (os, "fork"),
    (os, "forkpty"),
    (os, "posix_spawn"),
    (os, "posix_spawnp"),
    (os, "system"),
    (socket.socket, "connect"),
    (socket.socket, "connect_ex"),
]


@contextmanager
def no_process_or_network() -> Iterator[None]:
    """Inside, each of FORBIDDEN fails the test; one whose failure was caught (by the
    code under test, or in a thread it started) fails it on the way out."""
    attempts: list[str] = []

    def refuse(what: str) -> Any:
        def refused(*args: Any, **kwargs: Any) -> NoReturn:
            attempts.append(what)
            pytest.fail(f"{what}: {MESSAGE}")

        return refused

    with pytest.MonkeyPatch.context() as patch:
        for owner, name in FORBIDDEN:
            patch.setattr(owner, name, refuse(f"{owner.__name__}.{name}"))
        yield
    if attempts:
        pytest.fail(f"{', '.join(attempts)} (the error was caught): {MESSAGE}", pytrace=False)
