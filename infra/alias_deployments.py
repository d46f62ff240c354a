"""Promotions through CodeDeploy, rolled back by the model's alarms (AWS stacks only).

AWS offers automatic rollback on alarms for a Lambda alias only this way: a CodeDeploy
application (compute platform Lambda) and deployment group that name the function's
alarms and roll back on DEPLOYMENT_STOP_ON_ALARM. A deployment (`inferstack promote`)
then shifts `live` to the new version in the group's steps and moves it back when an
alarm fires. The alias must then be CodeDeploy's alone: LambdaModel ignores changes to
its version and weights after creation, so a deploy publishes without moving traffic.
LocalStack's community edition has no CodeDeploy: the stack schema refuses this option
on LocalStack targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies
from stacks.schema import AlarmRollbackConfig

# CodeDeploy's names for the traffic shapes of AlarmRollbackConfig.traffic.
TRAFFIC_TYPES = {
    "canary": "TimeBasedCanary",
    "linear": "TimeBasedLinear",
    "all_at_once": "AllAtOnce",
}
# Deployments stop and roll back on these (a stop on request rolls back too:
# `inferstack rollback` during a deployment).
ROLLBACK_EVENTS = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST"]


@dataclass
class AliasDeploymentsArgs:
    # `<prefix>-<model>`: the application, group and config are named after it.
    name: str
    function_arn: pulumi.Input[str]
    alarm_names: list[pulumi.Input[str]]
    alarm_arns: list[pulumi.Input[str]]
    config: AlarmRollbackConfig


class AliasDeployments(pulumi.ComponentResource):
    application: aws.codedeploy.Application
    group: aws.codedeploy.DeploymentGroup

    def __init__(
        self, name: str, args: AliasDeploymentsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("inferstack:index:AliasDeployments", name, None, opts)
        self._name = name
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-deploy-role",
            assume_role_policy=policies.service_trust("codedeploy.amazonaws.com"),
            opts=child,
        )
        # The actions of AWS's AWSCodeDeployRoleForLambdaLimited policy that a deployment
        # without hooks uses, on this function (its aliases are `<arn>:<name>`) and these
        # alarms instead of "*".
        role_policy = aws.iam.RolePolicy(
            f"{name}-deploy-policy",
            role=role.id,
            policy=policies.document(
                policies.allow(
                    [
                        "lambda:GetAlias",
                        "lambda:GetProvisionedConcurrencyConfig",
                        "lambda:UpdateAlias",
                    ],
                    [args.function_arn, pulumi.Output.concat(args.function_arn, ":*")],
                ),
                policies.allow(["cloudwatch:DescribeAlarms"], list(args.alarm_arns)),
            ),
            opts=child,
        )
        self.application = aws.codedeploy.Application(
            f"{name}-deploy", name=args.name, compute_platform="Lambda", opts=child
        )
        config = aws.codedeploy.DeploymentConfig(
            f"{name}-deploy-config",
            deployment_config_name=args.name,
            compute_platform="Lambda",
            traffic_routing_config=_traffic(args.config),
            opts=child,
        )
        self.group = aws.codedeploy.DeploymentGroup(
            f"{name}-deploy-group",
            app_name=self.application.name,
            deployment_group_name=args.name,
            deployment_config_name=config.deployment_config_name,
            service_role_arn=role.arn,
            # The only style CodeDeploy accepts for Lambda: traffic moves between versions.
            deployment_style=aws.codedeploy.DeploymentGroupDeploymentStyleArgs(
                deployment_type="BLUE_GREEN", deployment_option="WITH_TRAFFIC_CONTROL"
            ),
            alarm_configuration=aws.codedeploy.DeploymentGroupAlarmConfigurationArgs(
                alarms=list(args.alarm_names), enabled=True
            ),
            auto_rollback_configuration=aws.codedeploy.DeploymentGroupAutoRollbackConfigurationArgs(
                enabled=True, events=ROLLBACK_EVENTS
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )
        self.register_outputs(
            {"application": self.application.name, "group": self.group.deployment_group_name}
        )


def _traffic(
    config: AlarmRollbackConfig,
) -> aws.codedeploy.DeploymentConfigTrafficRoutingConfigArgs:
    kind = TRAFFIC_TYPES[config.traffic]
    if config.traffic == "canary":
        return aws.codedeploy.DeploymentConfigTrafficRoutingConfigArgs(
            type=kind,
            time_based_canary=aws.codedeploy.DeploymentConfigTrafficRoutingConfigTimeBasedCanaryArgs(
                interval=config.interval_minutes, percentage=config.percent
            ),
        )
    if config.traffic == "linear":
        return aws.codedeploy.DeploymentConfigTrafficRoutingConfigArgs(
            type=kind,
            time_based_linear=aws.codedeploy.DeploymentConfigTrafficRoutingConfigTimeBasedLinearArgs(
                interval=config.interval_minutes, percentage=config.percent
            ),
        )
    return aws.codedeploy.DeploymentConfigTrafficRoutingConfigArgs(type=kind)
