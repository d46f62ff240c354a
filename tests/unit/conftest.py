"""The fast lane's guards: a unit test that starts a process or opens a connection (in
its body or in a fixture it sets up), or asks for a reference model, fails and says to
move to tests/integration."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, NoReturn

import pytest

from tests.support.isolation import no_process_or_network


# Hooks, not an autouse fixture: a fixture guards only the fixtures set up after it, and
# the session- and module-scoped ones (model artifacts, staged projects) come first.
# Teardown is left alone: a session fixture of another lane may end after a unit test.
@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    with no_process_or_network():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with no_process_or_network():
        return (yield)


def _not_here(name: str) -> Any:
    @pytest.fixture(name=name)
    def refused() -> NoReturn:
        pytest.fail(
            f"{name}: unit tests train and export no reference model: serve the tiny model"
            " (tiny_dir, tiny_engine, tiny_inputs), or move this test to tests/integration",
            pytrace=False,
        )

    return refused


# The reference models train (digits) or load (MiniLM) for tens of seconds when their
# cached artifacts are stale: none of them is for the fast lane.
digits_spec = _not_here("digits_spec")
digits_dir = _not_here("digits_dir")
digits_int8_dir = _not_here("digits_int8_dir")
digits_engine = _not_here("digits_engine")
digits_images = _not_here("digits_images")
minilm_spec = _not_here("minilm_spec")
minilm_dir = _not_here("minilm_dir")
minilm_int8_dir = _not_here("minilm_int8_dir")
