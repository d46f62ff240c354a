"""`promote`, `rollback` and `rollout` for a model whose `live` alias CodeDeploy moves
(alarm_rollback): each move is one CreateDeployment (or StopDeployment) call and never an
UpdateAlias.

CodeDeploy is not in LocalStack's community edition, so a real botocore CodeDeploy client
with botocore's Stubber stands in for it: the Stubber checks every request against
CodeDeploy's service model and answers what the test queues. Lambda and API Gateway are
test_versions.py's fakes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from cli import deployment
from cli.alias_deployments import ACTIVE, ALL_AT_ONCE, appspec
from tests.unit.cli.test_versions import FakeApi, FakeLambda, digits_answer, invoke, one_error

GROUP = {
    "applicationName": "inferstack-local-digits",
    "deploymentGroupName": "inferstack-local-digits",
}


@pytest.fixture
def codedeploy(
    monkeypatch: pytest.MonkeyPatch, fake: FakeLambda, outputs: dict[str, Any]
) -> Stubber:
    outputs["deployments"] = {
        "digits": {
            "application": GROUP["applicationName"],
            "deploymentGroup": GROUP["deploymentGroupName"],
        }
    }
    client = boto3.client(
        "codedeploy",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    stubber = Stubber(client)
    services = {"lambda": fake, "codedeploy": client}
    monkeypatch.setattr(deployment, "aws_client", lambda stack, service: services[service])
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


def running(stubber: Stubber, deployments: list[str]) -> None:
    stubber.add_response(
        "list_deployments",
        {"deployments": deployments},
        {**GROUP, "includeOnlyStatuses": ACTIVE},
    )


def deployment_of(stubber: Stubber, current: int, target: int, **extra: Any) -> None:
    content = appspec("inferstack-local-digits", "live", current, target)
    stubber.add_response(
        "create_deployment",
        {"deploymentId": "d-ABC123"},
        {
            **GROUP,
            "revision": {
                "revisionType": "AppSpecContent",
                "appSpecContent": {
                    "content": content,
                    "sha256": hashlib.sha256(content.encode()).hexdigest(),
                },
            },
            "description": ANY,
            **extra,
        },
    )


def test_the_appspec_names_the_function_alias_and_both_versions() -> None:
    spec = json.loads(appspec("fn", "live", 3, 4))
    assert spec["version"] == 0.0
    (resource,) = spec["Resources"]
    assert resource["fn"] == {
        "Type": "AWS::Lambda::Function",
        "Properties": {"Name": "fn", "Alias": "live", "CurrentVersion": "3", "TargetVersion": "4"},
    }


def test_promote_starts_a_deployment_instead_of_moving_the_alias(
    codedeploy: Stubber, fake: FakeLambda, api: FakeApi, requests_file: Path
) -> None:
    api.answers["2"] = lambda row: digits_answer("2", row % 3)
    running(codedeploy, [])
    deployment_of(codedeploy, 1, 2)
    result = invoke("promote", "--version", "2", "--requests", str(requests_file))
    assert result.exit_code == 0, result.output
    assert fake.updates == []
    assert (
        result.output.strip()
        .splitlines()[-1]
        .startswith(
            "CodeDeploy deployment d-ABC123: live moves to digits version 2 (Lambda version 2)"
        )
    )


def test_promote_during_a_deployment_is_one_line(
    codedeploy: Stubber, api: FakeApi, requests_file: Path
) -> None:
    api.answers["2"] = lambda row: digits_answer("2", row % 3)
    running(codedeploy, ["d-RUNNING"])
    result = invoke("promote", "--version", "2", "--requests", str(requests_file))
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "error: CodeDeploy deployment d-RUNNING of digits is running: wait for it, or"
        " `inferstack rollback` stops it"
    )


def test_rollback_stops_a_running_deployment(codedeploy: Stubber, fake: FakeLambda) -> None:
    running(codedeploy, ["d-RUNNING"])
    codedeploy.add_response(
        "stop_deployment",
        {"status": "Pending"},
        {"deploymentId": "d-RUNNING", "autoRollbackEnabled": True},
    )
    result = invoke("rollback")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "stopped CodeDeploy deployment d-RUNNING: CodeDeploy moves live back to digits"
        " version 1 (Lambda version 1)"
    )
    assert fake.updates == []


def test_rollback_without_a_deployment_deploys_the_earlier_version_at_once(
    codedeploy: Stubber, fake: FakeLambda
) -> None:
    fake.primary = "2"
    running(codedeploy, [])
    deployment_of(codedeploy, 2, 1, deploymentConfigName=ALL_AT_ONCE)
    result = invoke("rollback")
    assert result.exit_code == 0, result.output
    assert "live moves back to digits version 1 (Lambda version 1) at once" in result.output
    assert fake.updates == []


def test_rollout_with_weights_is_refused_in_one_line(codedeploy: Stubber) -> None:
    assert one_error(invoke("rollout", "--version", "2", "--weight", "10")) == (
        "error: digits of stack local moves traffic through CodeDeploy (alarm_rollback): its"
        " steps are the stack's alarm_rollback; `inferstack promote` starts one"
    )


def test_codedeploy_errors_are_one_line_by_code(codedeploy: Stubber) -> None:
    codedeploy.add_client_error(
        "list_deployments", service_error_code="DeploymentGroupDoesNotExistException"
    )
    assert one_error(invoke("rollback")) == (
        "error: CodeDeploy group inferstack-local-digits is not in the cloud of stack local:"
        " run `inferstack up --stack local`"
    )
