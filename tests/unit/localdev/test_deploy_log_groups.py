"""A log group that already exists is an error on create, as on AWS; one the state owns is
left alone on a re-`up`. The real realizer and engine, botocore's Stubber for CloudWatch
Logs (no network)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from botocore.stub import Stubber

from localdev.deploy import engine
from localdev.errors import DeployError
from tests.support.boto import stub_clients

ENDPOINT = "http://127.0.0.1:4566"
GROUP = "/aws/lambda/f"


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """Every client the engine makes is this one, its CloudWatch Logs calls stubbed."""
    clients = stub_clients("logs", "sts")
    monkeypatch.setattr(engine, "Clients", lambda config: clients)
    with Stubber(clients("logs")) as stubber, Stubber(clients("sts")) as sts:
        # The group's ARN names the account (asked once).
        sts.add_response("get_caller_identity", {"Account": "000000000000"})
        yield stubber
        stubber.assert_no_pending_responses()


def _program() -> dict[str, Any]:
    provider = aws.Provider("local", region="us-east-1", endpoints=[{"logs": ENDPOINT}])
    aws.cloudwatch.LogGroup(
        "g", name=GROUP, retention_in_days=7, opts=pulumi.ResourceOptions(provider=provider)
    )
    return {}


def _listed(logs: Stubber, *names: str) -> None:
    """The engine's look for the group (before a create, and after an unfinished one)."""
    logs.add_response(
        "describe_log_groups",
        {"logGroups": [{"logGroupName": name} for name in names]},
        {"logGroupNamePrefix": GROUP},
    )


def _refused(logs: Stubber) -> None:
    logs.add_client_error(
        "create_log_group",
        "ResourceAlreadyExistsException",
        http_status_code=400,
        expected_params={"logGroupName": GROUP, "tags": {}},
    )


def test_a_log_group_that_exists_is_an_error_not_adopted(tmp_path: Path, logs: Stubber) -> None:
    _listed(logs, GROUP)
    _refused(logs)
    with pytest.raises(DeployError, match=f"LogGroup g: log group {GROUP} already exists"):
        engine.deploy("t", _program, tmp_path / "t.json")
    # The failed create is recorded as unfinished; the next `up` looks for what it made,
    # but the group was there before it: not the stack's, neither deleted nor adopted (no
    # delete_log_group is stubbed), and the create is refused again.
    _listed(logs, GROUP)
    _listed(logs, GROUP)
    _refused(logs)
    with pytest.raises(DeployError, match=f"LogGroup g: log group {GROUP} already exists"):
        engine.deploy("t", _program, tmp_path / "t.json")


def test_a_log_group_the_state_owns_is_left_alone_on_a_re_up(tmp_path: Path, logs: Stubber) -> None:
    _listed(logs)
    logs.add_response("create_log_group", {}, {"logGroupName": GROUP, "tags": {}})
    logs.add_response("put_retention_policy", {}, {"logGroupName": GROUP, "retentionInDays": 7})
    assert engine.deploy("t", _program, tmp_path / "t.json").names("create") == {"g"}
    # The re-up reads it back and writes nothing (any other call fails the Stubber).
    logs.add_response(
        "describe_log_groups",
        {"logGroups": [{"logGroupName": GROUP}]},
        {"logGroupNamePrefix": GROUP},
    )
    assert engine.deploy("t", _program, tmp_path / "t.json").names("same") == {"g"}
