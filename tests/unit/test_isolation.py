"""The unit lane's guard (tests/support/isolation.py) refuses processes and connections,
also when the code under test swallows the refusal, and leaves ASGI transports alone."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from tests.support.isolation import MESSAGE, no_process_or_network

Refused = pytest.fail.Exception


@pytest.mark.parametrize(
    "start",
    [
        lambda: subprocess.run([sys.executable, "-c", "pass"], check=True),
        lambda: subprocess.Popen(["true"]),
        lambda: os.system("true"),
        lambda: os.posix_spawn("/bin/true", ["true"], {}),
        lambda: multiprocessing.get_context("spawn").Process(target=print).start(),
    ],
    ids=["run", "popen", "system", "posix_spawn", "multiprocessing"],
)
def test_starting_a_process_fails_the_test(start: Callable[[], object]) -> None:
    with pytest.raises(Refused, match=MESSAGE), no_process_or_network():
        start()


def test_connecting_even_to_localhost_fails_the_test() -> None:
    with socket.socket() as sock:
        with pytest.raises(Refused, match=MESSAGE), no_process_or_network():
            sock.connect(("127.0.0.1", 9))
        with pytest.raises(Refused, match=MESSAGE), no_process_or_network():
            sock.connect_ex(("127.0.0.1", 9))


def test_a_refusal_caught_in_a_thread_still_fails_the_test() -> None:
    def swallow() -> None:
        with contextlib.suppress(BaseException):
            subprocess.run(["true"])

    with pytest.raises(Refused, match=r"\(the error was caught\)"), no_process_or_network():
        thread = threading.Thread(target=swallow)
        thread.start()
        thread.join()


def test_an_asgi_transport_is_in_process() -> None:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"pong": True}

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/ping")

    with no_process_or_network():
        assert asyncio.run(call()).json() == {"pong": True}
