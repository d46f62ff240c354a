"""S3ObjectStore and SqsQueue on botocore clients driven by botocore's Stubber: the
requests they make, and AWS's error codes as the runtime's errors."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from model_runtime.errors import (
    ObjectChanged,
    ObjectExists,
    ObjectNotFound,
    ObjectReadError,
    ObjectWriteError,
    QueueError,
    TransientReadError,
)
from model_runtime.events.aws import S3ObjectStore, SqsQueue

CREDENTIALS = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/q"


@pytest.fixture
def s3() -> Iterator[tuple[S3ObjectStore, Stubber]]:
    client = boto3.client("s3", **CREDENTIALS)
    with Stubber(client) as stubber:
        yield S3ObjectStore(client), stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def sqs() -> Iterator[tuple[SqsQueue, Stubber]]:
    client = boto3.client("sqs", **CREDENTIALS)
    with Stubber(client) as stubber:
        yield SqsQueue(client), stubber
        stubber.assert_no_pending_responses()


def _body(data: bytes) -> dict[str, Any]:
    return {"Body": StreamingBody(io.BytesIO(data), len(data))}


def test_put_if_absent_sends_if_none_match(s3: tuple[S3ObjectStore, Stubber]) -> None:
    store, stub = s3
    stub.add_response(
        "put_object", {}, {"Bucket": "b", "Key": "k", "Body": b"1", "IfNoneMatch": "*"}
    )
    stub.add_response("put_object", {}, {"Bucket": "b", "Key": "k", "Body": b"2"})
    store.put("b", "k", b"1", if_absent=True)
    store.put("b", "k", b"2")


def test_a_taken_key_is_object_exists(s3: tuple[S3ObjectStore, Stubber]) -> None:
    store, stub = s3
    stub.add_client_error("put_object", "PreconditionFailed", http_status_code=412)
    with pytest.raises(ObjectExists):
        store.put("b", "k", b"1", if_absent=True)


def test_a_conditional_write_conflict_is_tried_again(s3: tuple[S3ObjectStore, Stubber]) -> None:
    store, stub = s3
    stub.add_client_error("put_object", "ConditionalRequestConflict", http_status_code=409)
    stub.add_client_error("put_object", "PreconditionFailed", http_status_code=412)
    with pytest.raises(ObjectExists):
        store.put("b", "k", b"1", if_absent=True)
    for _ in range(3):
        stub.add_client_error("put_object", "ConditionalRequestConflict", http_status_code=409)
    with pytest.raises(ObjectWriteError, match="kept conflicting"):
        store.put("b", "k", b"1", if_absent=True)


def test_other_write_errors(s3: tuple[S3ObjectStore, Stubber]) -> None:
    store, stub = s3
    stub.add_client_error("put_object", "AccessDenied", http_status_code=403)
    with pytest.raises(ObjectWriteError) as caught:
        store.put("b", "k", b"1")
    assert type(caught.value) is ObjectWriteError


def test_get_a_byte_range_if_the_etag_matches(s3: tuple[S3ObjectStore, Stubber]) -> None:
    store, stub = s3
    expected = {"Bucket": "b", "Key": "k", "IfMatch": '"abc"', "Range": "bytes=10-19"}
    stub.add_response("get_object", _body(b"0123456789"), expected)
    assert store.get("b", "k", etag="abc", byte_range=(10, 20)) == b"0123456789"
    stub.add_response("get_object", _body(b"all"), {"Bucket": "b", "Key": "k"})
    assert store.get("b", "k") == b"all"


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("PreconditionFailed", 412, ObjectChanged),
        ("NoSuchKey", 404, ObjectNotFound),
        ("SlowDown", 503, TransientReadError),
        ("AccessDenied", 403, ObjectReadError),
    ],
)
def test_read_errors_by_code(
    s3: tuple[S3ObjectStore, Stubber], code: str, status: int, error: type[Exception]
) -> None:
    store, stub = s3
    stub.add_client_error("get_object", code, http_status_code=status)
    with pytest.raises(error) as caught:
        store.get("b", "k", etag="abc")
    assert type(caught.value) is error


def test_exists_and_list_keys(s3: tuple[S3ObjectStore, Stubber]) -> None:
    store, stub = s3
    stub.add_response("head_object", {}, {"Bucket": "b", "Key": "there"})
    stub.add_client_error("head_object", "404", http_status_code=404)
    assert store.exists("b", "there") and not store.exists("b", "gone")
    stub.add_response(
        "list_objects_v2",
        {"Contents": [{"Key": "w/a"}], "IsTruncated": True, "NextContinuationToken": "t"},
        {"Bucket": "b", "Prefix": "w/"},
    )
    stub.add_response(
        "list_objects_v2",
        {"Contents": [{"Key": "w/b"}], "IsTruncated": False},
        {"Bucket": "b", "Prefix": "w/", "ContinuationToken": "t"},
    )
    assert store.list_keys("b", "w/") == ["w/a", "w/b"]


def test_send_goes_in_batches_of_ten(sqs: tuple[SqsQueue, Stubber]) -> None:
    queue, stub = sqs
    bodies = [f"m{n}" for n in range(23)]
    for start, size in ((0, 10), (10, 10), (20, 3)):
        entries = [{"Id": str(i), "MessageBody": bodies[start + i]} for i in range(size)]
        stub.add_response(
            "send_message_batch",
            {"Successful": [], "Failed": []},
            {"QueueUrl": QUEUE, "Entries": entries},
        )
    queue.send(QUEUE, bodies)


def test_a_refused_message_is_a_queue_error(sqs: tuple[SqsQueue, Stubber]) -> None:
    queue, stub = sqs
    failed = [{"Id": "0", "SenderFault": False, "Code": "InternalError", "Message": "try later"}]
    stub.add_response("send_message_batch", {"Successful": [], "Failed": failed})
    with pytest.raises(QueueError, match="refused 1 of 1 message"):
        queue.send(QUEUE, ["m"])
    stub.add_client_error("send_message_batch", "AccessDenied", http_status_code=403)
    with pytest.raises(QueueError, match="AccessDenied"):
        queue.send(QUEUE, ["m"])
