"""GPU tests share the server harness (tests/support/server.py)."""

from __future__ import annotations

from tests.support.server import start_server

__all__ = ["start_server"]  # the fixture
