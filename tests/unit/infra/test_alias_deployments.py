"""Promotions through CodeDeploy with rollback on alarms (prod's digits): the deployment
group, its alarms and role, and a `live` alias that deploys no longer move; under Pulumi's
mock runtime (`pulumi.runtime.set_mocks`, through `infra.evaluate`: no engine here, and no
CodeDeploy in LocalStack's community edition)."""

from __future__ import annotations

import json

from infra.evaluate import Evaluation, Registered

GROUP = "aws:codedeploy/deploymentGroup:DeploymentGroup"


def one(stack: Evaluation, type_: str, name: str) -> Registered:
    (found,) = [r for r in stack.of_type(type_) if r.name == name]
    return found


def test_the_group_shifts_live_in_steps_and_rolls_back_on_the_models_alarms(
    evaluations: dict[str, Evaluation],
) -> None:
    prod = evaluations["prod"]
    (group,) = prod.of_type(GROUP)
    assert group.inputs["deploymentStyle"] == {
        "deploymentOption": "WITH_TRAFFIC_CONTROL",
        "deploymentType": "BLUE_GREEN",
    }
    assert group.inputs["alarmConfiguration"] == {
        "alarms": ["inferstack-prod-digits-5xx-rate", "inferstack-prod-digits-p99-latency"],
        "enabled": True,
    }
    rollback = group.inputs["autoRollbackConfiguration"]
    assert rollback["enabled"] is True
    assert "DEPLOYMENT_STOP_ON_ALARM" in rollback["events"]
    config = one(
        prod,
        "aws:codedeploy/deploymentConfig:DeploymentConfig",
        "inferstack-prod-digits-deploy-config",
    )
    assert group.inputs["deploymentConfigName"] == config.inputs["deploymentConfigName"]
    assert config.inputs["computePlatform"] == "Lambda"
    assert config.inputs["trafficRoutingConfig"] == {
        "type": "TimeBasedCanary",
        "timeBasedCanary": {"interval": 10, "percentage": 10},
    }
    application = one(
        prod, "aws:codedeploy/application:Application", "inferstack-prod-digits-deploy"
    )
    assert application.inputs["computePlatform"] == "Lambda"
    assert group.inputs["appName"] == application.inputs["name"]
    assert prod.outputs["deployments"] == {
        "digits": {
            "application": "inferstack-prod-digits",
            "deploymentGroup": "inferstack-prod-digits",
        }
    }


def test_codedeploy_may_move_this_alias_and_read_these_alarms_only(
    evaluations: dict[str, Evaluation],
) -> None:
    prod = evaluations["prod"]
    role = one(prod, "aws:iam/role:Role", "inferstack-prod-digits-deploy-role")
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "codedeploy.amazonaws.com"}
    policy = one(prod, "aws:iam/rolePolicy:RolePolicy", "inferstack-prod-digits-deploy-policy")
    granted = {
        action: statement["Resource"]
        for statement in json.loads(policy.inputs["policy"])["Statement"]
        for action in statement["Action"]
    }
    function = one(prod, "aws:lambda/function:Function", "inferstack-prod-digits").outputs["arn"]
    for action in (
        "lambda:GetAlias",
        "lambda:UpdateAlias",
        "lambda:GetProvisionedConcurrencyConfig",
    ):
        assert granted[action] == [function, f"{function}:*"]
    alarms = granted.pop("cloudwatch:DescribeAlarms")
    assert [arn.rsplit(":", 1)[1] for arn in alarms] == [
        "inferstack-prod-digits-5xx-rate",
        "inferstack-prod-digits-p99-latency",
    ]
    assert len(granted) == 3


def test_deploys_publish_without_moving_an_alias_codedeploy_moves(
    evaluations: dict[str, Evaluation],
) -> None:
    prod = evaluations["prod"]
    moved_by_codedeploy = one(prod, "aws:lambda/alias:Alias", "inferstack-prod-digits-live")
    assert set(moved_by_codedeploy.options.ignore_changes) == {"functionVersion", "routingConfig"}
    # The other models' deploys still move their alias.
    other = one(prod, "aws:lambda/alias:Alias", "inferstack-prod-minilm-int8-live")
    assert other.options.ignore_changes == ()
    assert not evaluations["local"].of_type(GROUP) and not evaluations["dev"].of_type(GROUP)
