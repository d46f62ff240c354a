"""The session's LocalStack endpoint (the `localstack` fixture is in tests/conftest.py)."""

from __future__ import annotations

import pytest

from localdev.localstack import manager


@pytest.fixture(scope="session")
def endpoint(localstack: manager.Status) -> str:
    return localstack.endpoint


def pytest_configure(config: pytest.Config) -> None:
    # pulumi_aws warns about its own deprecated resource classes at import time.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws.*")
