"""Fixtures: the slow test model, and servers started in subprocesses, stopped by PID."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.server import build_slow_model, start_server

__all__ = ["start_server"]  # a fixture shared with tests/gpu


@pytest.fixture(scope="session")
def slow_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_slow_model(tmp_path_factory.mktemp("models") / "slow")
