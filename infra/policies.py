"""IAM policy documents. Every statement names its resources: no wildcards for actions,
and resources only as wide as one log group or one model prefix, with one exception IAM
imposes: logs:DescribeLogGroups, which supports no resource-level scope (see
`api_gateway_logging`)."""

from __future__ import annotations

from typing import Any

import pulumi

Statement = dict[str, Any]


def document(*statements: Statement) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions: list[str], resources: list[pulumi.Input[str]]) -> Statement:
    return {"Effect": "Allow", "Action": actions, "Resource": resources}


def service_trust(service: str) -> pulumi.Output[str]:
    """Who may assume the role: one AWS service principal."""
    return document(
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    )


def write_log_group(log_group_arn: pulumi.Input[str]) -> Statement:
    # Log streams live under the group's ARN + ":*"; the group itself already exists,
    # so no logs:CreateLogGroup (which would need a wider resource).
    stream_arn = pulumi.Output.concat(log_group_arn, ":*")
    return allow(["logs:CreateLogStream", "logs:PutLogEvents"], [stream_arn])


def read_prefix(bucket_arn: pulumi.Input[str], prefix: str) -> Statement:
    return allow(["s3:GetObject"], [pulumi.Output.concat(bucket_arn, "/", prefix, "/*")])


def api_gateway_logging(log_groups: pulumi.Input[str]) -> list[Statement]:
    """What API Gateway's account-wide CloudWatch role needs: the actions of AWS's
    AmazonAPIGatewayPushToCloudWatchLogs policy (API Gateway checks them when the account
    setting is written), each on the narrowest resource IAM accepts for it.

    `log_groups` is an ARN pattern of the log groups it may write (`...:log-group:<prefix>*`).
    """
    streams = pulumi.Output.concat(log_groups, ":log-stream:*")
    return [
        allow(
            [
                # Creates a group it writes to when it is missing (as for execution
                # logs); the stack creates its access-log groups, the scope is only those.
                "logs:CreateLogGroup",
                # Looks up a group's streams before it writes.
                "logs:DescribeLogStreams",
                # Reads a group back: in AWS's policy for this role.
                "logs:FilterLogEvents",
            ],
            [log_groups],
        ),
        allow(
            [
                # The streams it writes a stage's records into.
                "logs:CreateLogStream",
                # The records themselves.
                "logs:PutLogEvents",
                # Reads a stream back: in AWS's policy for this role.
                "logs:GetLogEvents",
            ],
            [streams],
        ),
        # Finds the destination group. DescribeLogGroups has no resource type in IAM's
        # Service Authorization Reference: "*" is the only resource it can be granted on.
        allow(["logs:DescribeLogGroups"], ["*"]),
    ]
