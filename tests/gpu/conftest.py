"""GPU tests share the server tests' process helpers."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from server_process import start_server

__all__ = ["start_server"]
