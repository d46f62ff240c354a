"""The event-driven resources realized by the in-process engine on real LocalStack, from a
tiny Pulumi program: a queue with a dead-letter queue (redrive policy), an event source
mapping from it to a function's alias with partial batch responses, and a bucket
notification to the same alias for one prefix and suffix, with S3's permission to invoke
it. Messages and objects reach the function; a message it reports in `batchItemFailures`
alone comes back, then goes to the dead-letter queue; a second `up` changes nothing, a
third updates the queue and the mapping in place; `down` leaves nothing behind."""

from __future__ import annotations

import json
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from botocore.exceptions import ClientError

from localdev.deploy import Summary, down
from localdev.deploy.aws import Clients, ProviderConfig
from localdev.deploy.engine import deploy
from localdev.deploy.realizers import REALIZERS
from localdev.deploy.realizers.base import Context, Inputs
from localdev.deploy.state import StackState, state_path
from tests.support.deploy import aws as client

STACK = "t-events"
ROLE = "arn:aws:iam::000000000000:role/lambda-test"
ACCOUNT = "000000000000"
MAX_RECEIVES = 3

# Records what reached it under seen/ in the data bucket (boto3 reaches LocalStack through
# the AWS_ENDPOINT_URL LocalStack gives every function); a message whose body starts with
# "fail" is reported as a failure of its batch, alone.
WORKER = textwrap.dedent(
    """
    import json
    import os

    import boto3

    s3 = boto3.client("s3")

    def handler(event, context):
        failures = []
        for record in event["Records"]:
            if record["eventSource"] == "aws:sqs":
                receives = record["attributes"]["ApproximateReceiveCount"]
                key = "seen/sqs/%s/%s" % (record["body"], receives)
                if record["body"].startswith("fail"):
                    failures.append({"itemIdentifier": record["messageId"]})
            else:
                key = "seen/s3/" + record["s3"]["object"]["key"]
            s3.put_object(Bucket=os.environ["BUCKET"], Key=key, Body=json.dumps(record))
        return {"batchItemFailures": failures}
    """
)


@dataclass(frozen=True)
class Settings:
    """What the third `up` changes."""

    batch_size: int = 10
    retention_s: int = 345600


def _program(endpoint: str, run: str, settings: Settings) -> Callable[[], dict[str, Any]]:
    def run_program() -> dict[str, Any]:
        services = ("s3", "sqs", "lambda_", "iam", "sts", "logs")
        provider = aws.Provider(
            "local",
            region="us-east-1",
            endpoints=[aws.ProviderEndpointArgs(**dict.fromkeys(services, endpoint))],
        )
        opts = pulumi.ResourceOptions(provider=provider)
        bucket = aws.s3.Bucket("data", bucket=run, force_destroy=True, opts=opts)
        function = aws.lambda_.Function(
            "worker",
            name=run,
            role=ROLE,
            runtime="python3.12",
            handler="handler.handler",
            code=pulumi.AssetArchive({"handler.py": pulumi.StringAsset(WORKER)}),
            environment={"variables": {"BUCKET": bucket.bucket}},
            publish=True,
            opts=opts,
        )
        alias = aws.lambda_.Alias(
            "live",
            name="live",
            function_name=function.name,
            function_version=function.version,
            opts=opts,
        )
        dlq = aws.sqs.Queue(
            "dlq",
            name=f"{run}-dlq",
            message_retention_seconds=1209600,
            sqs_managed_sse_enabled=True,
            opts=opts,
        )
        queue = aws.sqs.Queue(
            "jobs",
            name=f"{run}-jobs",
            # As AWS requires: no shorter than the function's timeout (3 s).
            visibility_timeout_seconds=3,
            message_retention_seconds=settings.retention_s,
            sqs_managed_sse_enabled=True,
            redrive_policy=dlq.arn.apply(
                lambda arn: json.dumps(
                    {"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVES}
                )
            ),
            tags={"role": "jobs"},
            opts=opts,
        )
        mapping = aws.lambda_.EventSourceMapping(
            "jobs",
            event_source_arn=queue.arn,
            function_name=alias.arn,
            batch_size=settings.batch_size,
            maximum_batching_window_in_seconds=1,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config={"maximum_concurrency": 2},
            opts=opts,
        )
        permission = aws.lambda_.Permission(
            "s3-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="s3.amazonaws.com",
            qualifier=alias.name,
            source_arn=bucket.arn,
            source_account=ACCOUNT,
            opts=opts,
        )
        aws.s3.BucketNotification(
            "batches",
            bucket=bucket.id,
            lambda_functions=[
                {
                    "lambda_function_arn": alias.arn,
                    "events": ["s3:ObjectCreated:*"],
                    "filter_prefix": "in/",
                    "filter_suffix": ".jsonl",
                }
            ],
            opts=pulumi.ResourceOptions(provider=provider, depends_on=[permission]),
        )
        return {
            "queueUrl": queue.url,
            "queueArn": queue.arn,
            "deadLetterQueueUrl": dlq.url,
            "mapping": mapping.uuid,
            "mappingState": mapping.state,
            "aliasArn": alias.arn,
        }

    return run_program


@dataclass(frozen=True)
class Deployed:
    root: Path
    run: str
    endpoint: str
    first: Summary
    again: Summary

    def up(self, settings: Settings) -> Summary:
        program = _program(self.endpoint, self.run, settings)
        return deploy(STACK, program, state_path(self.root, STACK))


@pytest.fixture(scope="module")
def deployed(endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    root = tmp_path_factory.mktemp(STACK)
    run = f"t-events-{uuid.uuid4().hex[:8]}"
    path = state_path(root, STACK)
    first = deploy(STACK, _program(endpoint, run, Settings()), path)
    try:
        again = deploy(STACK, _program(endpoint, run, Settings()), path)
        yield Deployed(root, run, endpoint, first, again)
    finally:
        down(STACK, root=root)


def _seen(endpoint: str, bucket: str, prefix: str) -> list[str]:
    listed = client("s3", endpoint).list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"].removeprefix(prefix) for item in listed.get("Contents", []))


def _until(what: str, check: Callable[[], Any], timeout_s: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.5)


def _queue_depth(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def test_every_resource_is_realized_then_unchanged(deployed: Deployed) -> None:
    created = {change.type for change in deployed.first.changes if change.action == "create"}
    assert created >= {
        "aws:sqs/queue:Queue",
        "aws:lambda/eventSourceMapping:EventSourceMapping",
        "aws:s3/bucketNotification:BucketNotification",
        "aws:lambda/permission:Permission",
    }
    assert not deployed.first.not_emulated
    # A second `up` finds everything as declared (the notification is compared, not
    # just looked for: every bucket answers one).
    assert deployed.again.changed == 0, deployed.again.changes


def test_the_queue_is_as_declared(deployed: Deployed) -> None:
    outputs = deployed.first.outputs
    sqs = client("sqs", deployed.endpoint)
    attributes = sqs.get_queue_attributes(QueueUrl=outputs["queueUrl"], AttributeNames=["All"])[
        "Attributes"
    ]
    assert attributes["QueueArn"] == outputs["queueArn"]
    assert attributes["VisibilityTimeout"] == "3"
    assert attributes["SqsManagedSseEnabled"] == "true"
    dlq_arn = sqs.get_queue_attributes(
        QueueUrl=outputs["deadLetterQueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": MAX_RECEIVES,
    }
    assert sqs.list_queue_tags(QueueUrl=outputs["queueUrl"])["Tags"] == {"role": "jobs"}


def test_the_mapping_is_enabled_and_found_by_listing(deployed: Deployed) -> None:
    outputs = deployed.first.outputs
    assert outputs["mappingState"] == "Enabled"
    mapping = client("lambda", deployed.endpoint).get_event_source_mapping(UUID=outputs["mapping"])
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["FunctionArn"] == outputs["aliasArn"]
    # What recovers an `up` killed during the create: the queue's mappings to the alias.
    state = StackState.load(state_path(deployed.root, STACK), STACK)
    provider = ProviderConfig.from_json(next(iter(state.providers.values())))
    inputs = {"eventSourceArn": outputs["queueArn"], "functionName": outputs["aliasArn"]}
    realizer = REALIZERS["aws:lambda/eventSourceMapping:EventSourceMapping"]
    found = realizer.find(Context(Clients(provider), "jobs", {}), Inputs(inputs))
    assert found == {outputs["mapping"]}


def test_messages_reach_the_function_and_a_reported_failure_alone_comes_back(
    deployed: Deployed,
) -> None:
    """LocalStack's mapping honours ReportBatchItemFailures: the messages reported fail
    stay on the queue (received again, up to maxReceiveCount, then moved to the dead-letter
    queue); the others in the same batches are deleted, received once."""
    outputs = deployed.first.outputs
    sqs = client("sqs", deployed.endpoint)
    bodies = ["ok-1", "ok-2", "fail-1", "ok-3"]
    sqs.send_message_batch(
        QueueUrl=outputs["queueUrl"],
        Entries=[{"Id": str(index), "MessageBody": body} for index, body in enumerate(bodies)],
    )

    def in_dead_letter_queue() -> list[dict[str, Any]]:
        answer = sqs.receive_message(
            QueueUrl=outputs["deadLetterQueueUrl"], WaitTimeSeconds=1, MaxNumberOfMessages=10
        )
        return list(answer.get("Messages", []))

    dead = _until("fail-1 in the dead-letter queue", in_dead_letter_queue)
    assert [message["Body"] for message in dead] == ["fail-1"]
    seen = _seen(deployed.endpoint, deployed.run, "seen/sqs/")
    received = [str(count) for count in range(1, MAX_RECEIVES + 1)]
    assert seen == sorted(
        [f"ok-{n}/1" for n in (1, 2, 3)] + [f"fail-1/{count}" for count in received]
    )
    assert _queue_depth(sqs, outputs["queueUrl"]) == 0


def test_an_object_under_the_prefix_with_the_suffix_invokes_the_function(
    deployed: Deployed,
) -> None:
    s3 = client("s3", deployed.endpoint)
    for key in ("other/a.jsonl", "in/a.txt", "in/part/a.jsonl"):
        s3.put_object(Bucket=deployed.run, Key=key, Body=b'{"x": 1}\n')
    seen = _until(
        "the notification of in/part/a.jsonl",
        lambda: _seen(deployed.endpoint, deployed.run, "seen/s3/"),
    )
    time.sleep(2.0)  # the filtered-out puts, made first, had their chance
    assert _seen(deployed.endpoint, deployed.run, "seen/s3/") == seen == ["in/part/a.jsonl"]
    record = json.loads(
        s3.get_object(Bucket=deployed.run, Key="seen/s3/in/part/a.jsonl")["Body"].read()
    )
    assert record["eventName"].startswith("ObjectCreated:")
    assert record["s3"]["bucket"]["name"] == deployed.run


def test_the_queue_and_the_mapping_change_in_place(deployed: Deployed) -> None:
    changed = deployed.up(Settings(batch_size=5, retention_s=86400))
    actions = {
        (change.type, change.action) for change in changed.changes if change.action != "same"
    }
    assert actions == {
        ("aws:sqs/queue:Queue", "update"),
        ("aws:lambda/eventSourceMapping:EventSourceMapping", "update"),
    }
    assert changed.outputs["queueUrl"] == deployed.first.outputs["queueUrl"]
    assert changed.outputs["mapping"] == deployed.first.outputs["mapping"]
    endpoint = deployed.endpoint
    mapping = client("lambda", endpoint).get_event_source_mapping(UUID=changed.outputs["mapping"])
    assert (mapping["BatchSize"], mapping["State"]) == (5, "Enabled")
    retention = client("sqs", endpoint).get_queue_attributes(
        QueueUrl=changed.outputs["queueUrl"], AttributeNames=["MessageRetentionPeriod"]
    )["Attributes"]["MessageRetentionPeriod"]
    assert retention == "86400"


def _missing(call: Callable[[], Any], codes: set[str]) -> bool:
    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"] in codes
    return False


def test_down_removes_queues_mapping_notification_and_function(
    endpoint: str, tmp_path: Path
) -> None:
    """Its own stack, so that the module's fixture is left alone."""
    run = f"t-events-{uuid.uuid4().hex[:8]}"
    summary = deploy(STACK, _program(endpoint, run, Settings()), state_path(tmp_path, STACK))
    outputs = summary.outputs
    s3, sqs, lam = (client(service, endpoint) for service in ("s3", "sqs", "lambda"))
    assert s3.get_bucket_notification_configuration(Bucket=run)["LambdaFunctionConfigurations"]

    gone = down(STACK, root=tmp_path)

    deleted = {change.type for change in gone.changes if change.action == "delete"}
    assert {
        "aws:sqs/queue:Queue",
        "aws:lambda/eventSourceMapping:EventSourceMapping",
        "aws:s3/bucketNotification:BucketNotification",
    } <= deleted
    no_queue = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
    for url in (outputs["queueUrl"], outputs["deadLetterQueueUrl"]):
        assert _missing(partial(sqs.get_queue_attributes, QueueUrl=url), no_queue)
    not_found = {"ResourceNotFoundException"}
    assert _missing(lambda: lam.get_event_source_mapping(UUID=outputs["mapping"]), not_found)
    assert _missing(lambda: lam.get_function(FunctionName=run), not_found)
    assert _missing(lambda: s3.head_bucket(Bucket=run), {"404", "NoSuchBucket"})
    assert not state_path(tmp_path, STACK).exists()
