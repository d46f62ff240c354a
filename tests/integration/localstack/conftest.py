"""Lambda fixtures on the session's LocalStack (the `localstack` fixture, shared with the
deploy tests, lives in tests/conftest.py)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localdev.localstack import manager
from tests.support.localstack import ROLE, CreateFunction, client, zip_bytes


@pytest.fixture(scope="session")
def lambda_client(localstack: manager.Status) -> Any:
    return client("lambda")


@pytest.fixture
def create_function(lambda_client: Any) -> Iterator[CreateFunction]:
    """Create a function from {path: source}, wait until Active, delete it afterwards."""
    created: list[str] = []

    def create(
        files: Mapping[str, str],
        *,
        handler: str = "handler.handler",
        runtime: str = "python3.12",
        timeout: int = 3,
        env: Mapping[str, str] | None = None,
        layers: list[str] | None = None,
        wait: bool = True,
    ) -> str:
        name = f"t-{uuid.uuid4().hex[:10]}"
        lambda_client.create_function(
            FunctionName=name,
            Runtime=runtime,
            Role=ROLE,
            Handler=handler,
            Code={"ZipFile": zip_bytes(files)},
            Timeout=timeout,
            Environment={"Variables": dict(env or {})},
            Layers=layers or [],
        )
        created.append(name)
        if wait:
            lambda_client.get_waiter("function_active_v2").wait(
                FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150}
            )
        return name

    yield create
    for name in created:
        # LocalStack cannot delete a function whose version failed to start
        # (InternalError: "Unable to find version manager"); it goes with LocalStack.
        with contextlib.suppress(ClientError):
            lambda_client.delete_function(FunctionName=name)
