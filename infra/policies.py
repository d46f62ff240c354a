"""IAM policy documents. Every statement names its resources: no wildcards for actions,
and resources only as wide as one log group or one model prefix."""

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
