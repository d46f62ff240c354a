"""boto3 clients for unit tests of the deploy engine: real botocore clients pointed at a
LocalStack address that is never called (every answer comes from botocore's Stubber)."""

from __future__ import annotations

from typing import Any

from localdev.deploy.aws import Clients, ProviderConfig
from localdev.deploy.state import ResourceState

ENDPOINT = "http://127.0.0.1:4566"


def stub_clients(*services: str) -> Clients:
    """Clients for `services` (region us-east-1, LocalStack's test credentials)."""
    return Clients(
        ProviderConfig(
            region="us-east-1",
            endpoints={service: ENDPOINT for service in services},
            access_key="test",
            secret_key="test",
        )
    )


def resource_state(
    type_: str, id_: str, inputs: dict[str, Any], outputs: dict[str, Any]
) -> ResourceState:
    """A deployed resource `r` of `type_` as the state file records it."""
    return ResourceState(
        urn=f"urn:pulumi:t::p::{type_}::r",
        type=type_,
        name="r",
        id=id_,
        provider="urn:pulumi:t::p::pulumi:providers:aws::local",
        inputs=inputs,
        inputs_hash="",
        outputs=outputs,
    )
