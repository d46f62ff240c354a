"""IAM policy documents. Every statement names its resources: no wildcards for actions,
and resources only as wide as one log group, one queue or one model's prefix, with one
exception IAM imposes: logs:DescribeLogGroups, which supports no resource-level scope (see
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


def read_write_prefix(bucket_arn: pulumi.Input[str], prefix: str) -> Statement:
    objects = pulumi.Output.concat(bucket_arn, "/", prefix, "/*")
    return allow(["s3:GetObject", "s3:PutObject"], [objects])


def list_prefixes(bucket_arn: pulumi.Input[str], prefixes: list[str]) -> Statement:
    """ListObjects on the bucket, for keys under these prefixes only.

    Also what makes S3 answer a GET or HEAD of a missing key there with 404 NoSuchKey:
    without s3:ListBucket it answers 403 AccessDenied, and it checks the grant with the
    key as s3:prefix.
    """
    return {
        **allow(["s3:ListBucket"], [bucket_arn]),
        "Condition": {"StringLike": {"s3:prefix": [f"{prefix}/*" for prefix in prefixes]}},
    }


def work_queue(queue_arn: pulumi.Input[str]) -> Statement:
    """What a function needs on its own SQS queue: the event source mapping polls it with
    the function's role (Receive, Delete, GetQueueAttributes, ChangeMessageVisibility), and
    the function itself sends to it (a batch's chunks)."""
    return allow(
        [
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ReceiveMessage",
            "sqs:SendMessage",
        ],
        [queue_arn],
    )


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
