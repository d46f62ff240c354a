"""The realizers of the event-driven resources (queues, event source mappings, bucket
notifications, S3's permission to invoke) against real botocore clients with stubbed
answers (botocore's Stubber: no network): the calls each makes, with which arguments, and
what counts as missing."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from localdev.deploy import engine
from localdev.deploy.aws import Clients
from localdev.deploy.realizers import REALIZERS, lambda_
from localdev.deploy.realizers.base import Context, Inputs
from localdev.errors import DeployError
from tests.support.boto import resource_state, stub_clients

QUEUE = "aws:sqs/queue:Queue"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
PERMISSION = "aws:lambda/permission:Permission"

URL = "http://sqs.us-east-1.localhost.localstack.cloud:4566/000000000000/jobs-abc1234"
QUEUE_ARN = "arn:aws:sqs:us-east-1:000000000000:jobs-abc1234"
DLQ_ARN = "arn:aws:sqs:us-east-1:000000000000:jobs-dlq"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:f"
ALIAS_ARN = f"{FUNCTION_ARN}:live"
UUID = "6e0c1a3b-5c1d-4b53-9f2e-8a1f0d4c7b21"
UUID_2 = "0b7f3d2e-9a41-4c55-8e6f-1d2c3b4a5e6f"
MAPPING_ARN = f"arn:aws:lambda:us-east-1:000000000000:event-source-mapping:{UUID}"
NO_QUEUE = "AWS.SimpleQueueService.NonExistentQueue"
REDRIVE = json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 3})


@pytest.fixture
def clients() -> Clients:
    return stub_clients("lambda", "s3", "sqs")


@pytest.fixture
def stubs(clients: Clients) -> Iterator[dict[str, Stubber]]:
    """A Stubber on each service's client; every stubbed answer must be used."""
    stubbers = {name: Stubber(clients(name)) for name in ("lambda", "s3", "sqs")}
    for stubber in stubbers.values():
        stubber.activate()
    yield stubbers
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()
        stubber.deactivate()


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambda_, "_POLL_S", 0.0)


def _queue_arn(sqs: Stubber, url: str = URL, arn: str = QUEUE_ARN) -> None:
    sqs.add_response(
        "get_queue_attributes",
        {"Attributes": {"QueueArn": arn}},
        {"QueueUrl": url, "AttributeNames": ["QueueArn"]},
    )


# --- queues -------------------------------------------------------------------------------


def test_a_queue_is_created_with_its_attributes_as_strings_and_its_tags(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    inputs = {
        "visibilityTimeoutSeconds": 180.0,
        "messageRetentionSeconds": 345600.0,
        "sqsManagedSseEnabled": True,
        "redrivePolicy": REDRIVE,
    }
    stubs["sqs"].add_response(
        "create_queue",
        {"QueueUrl": URL},
        {
            "QueueName": "jobs-abc1234",
            "Attributes": {
                "VisibilityTimeout": "180",
                "MessageRetentionPeriod": "345600",
                "SqsManagedSseEnabled": "true",
                "RedrivePolicy": REDRIVE,
            },
            "tags": {"inferstack:stack": "t"},
        },
    )
    _queue_arn(stubs["sqs"])
    ctx = Context(clients, "jobs", {"inferstack:stack": "t"}, suffix="abc1234")
    created = REALIZERS[QUEUE].create(ctx, Inputs(inputs))
    # As pulumi-aws answers: the id is the queue's URL.
    assert created.id == URL
    assert created.outputs == {
        "arn": QUEUE_ARN,
        "url": URL,
        "name": "jobs-abc1234",
        "tagsAll": {"inferstack:stack": "t"},
    }


def test_a_kms_queue_with_an_explicit_name(clients: Clients, stubs: dict[str, Stubber]) -> None:
    url = URL.replace("jobs-abc1234", "f-jobs")
    inputs = {"name": "f-jobs", "kmsMasterKeyId": "alias/k", "kmsDataKeyReusePeriodSeconds": 300}
    stubs["sqs"].add_response(
        "create_queue",
        {"QueueUrl": url},
        {
            "QueueName": "f-jobs",
            "Attributes": {"KmsMasterKeyId": "alias/k", "KmsDataKeyReusePeriodSeconds": "300"},
            "tags": {},
        },
    )
    _queue_arn(stubs["sqs"], url)
    assert REALIZERS[QUEUE].create(Context(clients, "q", {}), Inputs(inputs)).id == url


def test_a_queue_change_sets_only_the_changed_attributes(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    old_inputs = {
        "visibilityTimeoutSeconds": 180.0,
        "delaySeconds": 5.0,
        "kmsMasterKeyId": "alias/k",
        "redrivePolicy": REDRIVE,
        "tagsAll": {"a": "1", "gone": "x"},
    }
    new_inputs = {"visibilityTimeoutSeconds": 240.0, "tagsAll": {"a": "2"}}
    old = resource_state(QUEUE, URL, old_inputs, {"name": "jobs-abc1234"})
    changed = {key for key in old_inputs if old_inputs[key] != new_inputs.get(key)}
    sqs = stubs["sqs"]
    sqs.add_response(
        "set_queue_attributes",
        {},
        {
            "QueueUrl": URL,
            # Removed: back to the provider's schema default, or cleared; a removed
            # redrive policy (Optional + Computed in the provider) is left as SQS has it.
            "Attributes": {"VisibilityTimeout": "240", "DelaySeconds": "0", "KmsMasterKeyId": ""},
        },
    )
    sqs.add_response("untag_queue", {}, {"QueueUrl": URL, "TagKeys": ["gone"]})
    sqs.add_response("tag_queue", {}, {"QueueUrl": URL, "Tags": {"a": "2"}})
    _queue_arn(sqs)
    ctx = Context(clients, "jobs", {"a": "2"})
    updated = REALIZERS[QUEUE].update(ctx, Inputs(new_inputs), old, changed)
    assert updated.id == URL


def test_a_queue_is_found_by_the_auto_name_its_create_chose(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    ctx = Context(clients, "jobs", {}, suffix="abc1234")
    sqs = stubs["sqs"]
    sqs.add_response("get_queue_url", {"QueueUrl": URL}, {"QueueName": "jobs-abc1234"})
    assert REALIZERS[QUEUE].find(ctx, Inputs({})) == {URL}
    sqs.add_client_error("get_queue_url", service_error_code=NO_QUEUE, http_status_code=400)
    assert REALIZERS[QUEUE].find(ctx, Inputs({})) == set()


def test_a_queue_already_gone_is_deleted(clients: Clients, stubs: dict[str, Stubber]) -> None:
    stubs["sqs"].add_client_error(
        "delete_queue", service_error_code=NO_QUEUE, expected_params={"QueueUrl": URL}
    )
    REALIZERS[QUEUE].delete(Context(clients, "jobs", {}), resource_state(QUEUE, URL, {}, {}))


def test_fifo_queues_are_refused_not_ignored() -> None:
    with pytest.raises(DeployError, match="fifoQueue"):
        engine._check_supported(REALIZERS[QUEUE], {"fifoQueue": True})


# --- event source mappings -------------------------------------------------------------


def _mapping(state: str, **extra: Any) -> dict[str, Any]:
    return {
        "UUID": UUID,
        "EventSourceArn": QUEUE_ARN,
        "FunctionArn": ALIAS_ARN,
        "State": state,
        "EventSourceMappingArn": MAPPING_ARN,
        "LastModified": datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC),
        **extra,
    }


MAPPING_INPUTS: dict[str, Any] = {
    "eventSourceArn": QUEUE_ARN,
    "functionName": ALIAS_ARN,
    "batchSize": 10.0,
    "maximumBatchingWindowInSeconds": 1.0,
    "functionResponseTypes": ["ReportBatchItemFailures"],
    "scalingConfig": {"maximumConcurrency": 5.0},
}


def test_a_mapping_is_created_then_waited_for_until_enabled(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    lam = stubs["lambda"]
    lam.add_response(
        "create_event_source_mapping",
        _mapping("Creating"),
        {
            "EventSourceArn": QUEUE_ARN,
            "FunctionName": ALIAS_ARN,
            "Enabled": True,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "Tags": {"inferstack:stack": "t"},
            "BatchSize": 10,
            "MaximumBatchingWindowInSeconds": 1,
            "ScalingConfig": {"MaximumConcurrency": 5},
        },
    )
    for state in ("Creating", "Creating", "Enabled"):
        lam.add_response("get_event_source_mapping", _mapping(state), {"UUID": UUID})
    ctx = Context(clients, "jobs", {"inferstack:stack": "t"})
    created = REALIZERS[MAPPING].create(ctx, Inputs(MAPPING_INPUTS))
    assert created.id == UUID
    assert created.outputs == {
        "uuid": UUID,
        "arn": MAPPING_ARN,
        "functionArn": ALIAS_ARN,
        "state": "Enabled",
        "stateTransitionReason": "",
        "lastModified": "2026-12-01T12:00:00Z",
        "lastProcessingResult": "",
        "tagsAll": {"inferstack:stack": "t"},
    }


def test_a_disabled_mapping_sends_only_what_was_declared_and_settles_disabled(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    lam = stubs["lambda"]
    lam.add_response(
        "create_event_source_mapping",
        _mapping("Creating"),
        {"EventSourceArn": QUEUE_ARN, "FunctionName": ALIAS_ARN, "Enabled": False, "Tags": {}},
    )
    lam.add_response("get_event_source_mapping", _mapping("Disabled"), {"UUID": UUID})
    inputs = {"eventSourceArn": QUEUE_ARN, "functionName": ALIAS_ARN, "enabled": False}
    created = REALIZERS[MAPPING].create(Context(clients, "jobs", {}), Inputs(inputs))
    assert created.outputs["state"] == "Disabled"


def test_a_mapping_that_does_not_settle_is_an_error_with_the_reason(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    lam = stubs["lambda"]
    lam.add_response("create_event_source_mapping", _mapping("Creating"))
    lam.add_response(
        "get_event_source_mapping",
        _mapping("Deleting", StateTransitionReason="the queue was deleted"),
    )
    with pytest.raises(DeployError, match="'Deleting': the queue was deleted"):
        REALIZERS[MAPPING].create(Context(clients, "jobs", {}), Inputs(MAPPING_INPUTS))


def test_a_mapping_update_sends_only_what_changed_and_undoes_what_was_removed(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    old = resource_state(MAPPING, UUID, {**MAPPING_INPUTS, "tagsAll": {}}, {})
    new = {key: value for key, value in MAPPING_INPUTS.items() if key != "scalingConfig"}
    new["batchSize"] = 100.0
    lam = stubs["lambda"]
    lam.add_response(
        "update_event_source_mapping",
        _mapping("Updating"),
        # No scaling config any more: an empty one (AWS ignores a missing one).
        {"UUID": UUID, "BatchSize": 100, "ScalingConfig": {}},
    )
    for state in ("Updating", "Enabled"):
        lam.add_response("get_event_source_mapping", _mapping(state), {"UUID": UUID})
    ctx = Context(clients, "jobs", {})
    updated = REALIZERS[MAPPING].update(ctx, Inputs(new), old, {"batchSize", "scalingConfig"})
    assert updated.outputs["state"] == "Enabled"


def test_a_mapping_retagged_in_place(clients: Clients, stubs: dict[str, Stubber]) -> None:
    old = resource_state(MAPPING, UUID, {**MAPPING_INPUTS, "tagsAll": {"old": "1"}}, {})
    lam = stubs["lambda"]
    lam.add_response("get_event_source_mapping", _mapping("Enabled"), {"UUID": UUID})
    lam.add_response("untag_resource", {}, {"Resource": MAPPING_ARN, "TagKeys": ["old"]})
    lam.add_response("tag_resource", {}, {"Resource": MAPPING_ARN, "Tags": {"new": "2"}})
    ctx = Context(clients, "jobs", {"new": "2"})
    REALIZERS[MAPPING].update(ctx, Inputs(MAPPING_INPUTS), old, {"tagsAll"})


def test_a_mapping_delete_waits_out_in_use_and_deleting(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    lam = stubs["lambda"]
    lam.add_client_error(
        "delete_event_source_mapping",
        service_error_code="ResourceInUseException",
        http_status_code=400,
        expected_params={"UUID": UUID},
    )
    lam.add_response("delete_event_source_mapping", _mapping("Deleting"), {"UUID": UUID})
    lam.add_response("get_event_source_mapping", _mapping("Deleting"), {"UUID": UUID})
    lam.add_client_error(
        "get_event_source_mapping",
        service_error_code="ResourceNotFoundException",
        http_status_code=404,
    )
    REALIZERS[MAPPING].delete(Context(clients, "jobs", {}), resource_state(MAPPING, UUID, {}, {}))


def test_a_mapping_already_gone_is_deleted(clients: Clients, stubs: dict[str, Stubber]) -> None:
    stubs["lambda"].add_client_error(
        "delete_event_source_mapping",
        service_error_code="ResourceNotFoundException",
        http_status_code=404,
    )
    REALIZERS[MAPPING].delete(Context(clients, "jobs", {}), resource_state(MAPPING, UUID, {}, {}))


def test_the_mappings_of_the_queue_to_the_function_are_found(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    """The engine subtracts those listed before the create: the rest are its."""
    stubs["lambda"].add_response(
        "list_event_source_mappings",
        {"EventSourceMappings": [{"UUID": UUID}, {"UUID": UUID_2}]},
        {"EventSourceArn": QUEUE_ARN, "FunctionName": ALIAS_ARN},
    )
    ctx = Context(clients, "jobs", {})
    assert REALIZERS[MAPPING].find(ctx, Inputs(MAPPING_INPUTS)) == {UUID, UUID_2}


# --- missing or not, for each type ---------------------------------------------------------

CASES = [
    (QUEUE, URL, {}, "sqs", "get_queue_attributes", {"QueueUrl": URL}, NO_QUEUE),
    (
        MAPPING,
        UUID,
        {},
        "lambda",
        "get_event_source_mapping",
        {"UUID": UUID},
        "ResourceNotFoundException",
    ),
    (
        NOTIFICATION,
        "b1",
        {"bucket": "b1"},
        "s3",
        "get_bucket_notification_configuration",
        {"Bucket": "b1"},
        "NoSuchBucket",
    ),
]


@pytest.mark.parametrize(
    ("type_", "id_", "inputs", "service", "call", "params", "code"),
    CASES,
    ids=[case[0].rsplit(":", 1)[1] for case in CASES],
)
def test_a_not_found_code_means_missing_any_other_error_is_named(
    clients: Clients,
    stubs: dict[str, Stubber],
    type_: str,
    id_: str,
    inputs: dict[str, Any],
    service: str,
    call: str,
    params: dict[str, Any],
    code: str,
) -> None:
    state = resource_state(type_, id_, inputs, {})
    stubs[service].add_client_error(
        call, service_error_code=code, http_status_code=404, expected_params=params
    )
    assert engine.is_present(REALIZERS[type_], clients, state) is False
    stubs[service].add_client_error(call, service_error_code="AccessDenied", http_status_code=403)
    with pytest.raises(DeployError, match="AWS error AccessDenied"):
        engine.is_present(REALIZERS[type_], clients, state)


# --- bucket notifications ------------------------------------------------------------------

NOTIFICATION_INPUTS: dict[str, Any] = {
    "bucket": "data",
    "lambdaFunctions": [
        {
            "lambdaFunctionArn": ALIAS_ARN,
            "events": ["s3:ObjectCreated:*"],
            "filterPrefix": "batches/digits/in/",
            "filterSuffix": ".jsonl",
        },
        {"lambdaFunctionArn": FUNCTION_ARN, "events": ["s3:ObjectRemoved:*"], "id": "mine"},
    ],
}
CONFIGURATIONS: list[dict[str, Any]] = [
    {
        "LambdaFunctionArn": ALIAS_ARN,
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {
            "Key": {
                "FilterRules": [
                    {"Name": "Prefix", "Value": "batches/digits/in/"},
                    {"Name": "Suffix", "Value": ".jsonl"},
                ]
            }
        },
    },
    {"LambdaFunctionArn": FUNCTION_ARN, "Events": ["s3:ObjectRemoved:*"], "Id": "mine"},
]


def test_a_notification_is_one_put_of_the_whole_configuration(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    params = {
        "Bucket": "data",
        "NotificationConfiguration": {"LambdaFunctionConfigurations": CONFIGURATIONS},
    }
    for _ in range(2):
        stubs["s3"].add_response("put_bucket_notification_configuration", {}, params)
    notification = REALIZERS[NOTIFICATION]
    ctx = Context(clients, "n", {})
    created = notification.create(ctx, Inputs(NOTIFICATION_INPUTS))
    assert created.id == "data"
    old = resource_state(NOTIFICATION, "data", NOTIFICATION_INPUTS, {})
    assert notification.update(ctx, Inputs(NOTIFICATION_INPUTS), old, {"lambdaFunctions"}).id == (
        "data"
    )
    # A put overwrites whatever was there: an interrupted one leaves nothing to find.
    assert notification.find(ctx, Inputs(NOTIFICATION_INPUTS)) == set()
    assert notification.container(old) == "s3:bucket:data"


def test_deleting_a_notification_puts_an_empty_configuration(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    stubs["s3"].add_response(
        "put_bucket_notification_configuration",
        {},
        {"Bucket": "data", "NotificationConfiguration": {}},
    )
    old = resource_state(NOTIFICATION, "data", NOTIFICATION_INPUTS, {})
    REALIZERS[NOTIFICATION].delete(Context(clients, "n", {}), old)


@pytest.mark.parametrize(
    ("live", "present"),
    [
        # S3 answers its own ids, the rules in its own case and order.
        (
            [
                {
                    "Id": "s3-chose-this",
                    "LambdaFunctionArn": ALIAS_ARN,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {
                            "FilterRules": [
                                {"Name": "suffix", "Value": ".jsonl"},
                                {"Name": "prefix", "Value": "batches/digits/in/"},
                            ]
                        }
                    },
                },
                CONFIGURATIONS[1],
            ],
            True,
        ),
        ([], False),  # every bucket answers; an empty configuration is no notification
        ([CONFIGURATIONS[0]], False),
        ([{**CONFIGURATIONS[0], "Filter": {"Key": {"FilterRules": []}}}, CONFIGURATIONS[1]], False),
    ],
    ids=["same", "empty", "one-missing", "filter-differs"],
)
def test_a_notification_is_present_only_as_declared(
    clients: Clients, stubs: dict[str, Stubber], live: list[dict[str, Any]], present: bool
) -> None:
    stubs["s3"].add_response(
        "get_bucket_notification_configuration",
        {"LambdaFunctionConfigurations": live},
        {"Bucket": "data"},
    )
    old = resource_state(NOTIFICATION, "data", NOTIFICATION_INPUTS, {})
    assert engine.is_present(REALIZERS[NOTIFICATION], clients, old) is present


def test_notifications_to_queues_or_topics_are_refused_not_ignored() -> None:
    with pytest.raises(DeployError, match="queues"):
        engine._check_supported(REALIZERS[NOTIFICATION], {"bucket": "b", "queues": [{}]})


# --- S3's permission to invoke an alias --------------------------------------------------

S3_PERMISSION = {
    "action": "lambda:InvokeFunction",
    "function": "f",
    "principal": "s3.amazonaws.com",
    "qualifier": "live",
    "sourceArn": "arn:aws:s3:::data",
    "sourceAccount": "000000000000",
}


def test_s3_may_invoke_the_alias_from_the_data_bucket_of_this_account(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    lam = stubs["lambda"]
    lam.add_response(
        "add_permission",
        {"Statement": "{}"},
        {
            "FunctionName": "f",
            "StatementId": "s3-abc1234",
            "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
            "Qualifier": "live",
            "SourceArn": "arn:aws:s3:::data",
            "SourceAccount": "000000000000",
        },
    )
    permission = REALIZERS[PERMISSION]
    created = permission.create(Context(clients, "s3", {}, suffix="abc1234"), Inputs(S3_PERMISSION))
    assert created.id == "s3-abc1234"
    old = resource_state(PERMISSION, created.id, S3_PERMISSION, created.outputs)
    # The alias's own policy holds the statement: read and removed with the qualifier.
    policy = {"Version": "2012-10-17", "Statement": [{"Sid": "s3-abc1234"}]}
    lam.add_response(
        "get_policy", {"Policy": json.dumps(policy)}, {"FunctionName": "f", "Qualifier": "live"}
    )
    assert engine.is_present(permission, clients, old) is True
    lam.add_response(
        "remove_permission",
        {},
        {"FunctionName": "f", "StatementId": "s3-abc1234", "Qualifier": "live"},
    )
    permission.delete(Context(clients, "s3", {}), old)
