"""A real uvicorn server on 127.0.0.1 serving the app the Lambda function wraps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localdev import server_process


@pytest.fixture(scope="session")
def server_url(digits_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a uvicorn server (`functions.handler:app`) serving the digits model."""
    server = server_process.start(
        server_process.uvicorn_app("functions.handler:app"),
        {"MODEL_DIR": str(digits_dir)},
        tmp_path_factory.mktemp("uvicorn"),
    )
    try:
        yield server.url
    finally:
        server.stop(timeout_s=10)
