"""The events package's ObjectStore and MessageQueue in memory: our own seams, not
stand-ins for AWS (model_runtime.events.aws is tested on botocore's Stubber)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from model_runtime.errors import ObjectChanged, ObjectExists, ObjectNotFound, QueueError


class MemoryStore:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.puts: list[str] = []  # keys, in the order they were written

    def etag(self, bucket: str, key: str) -> str:
        return hashlib.md5(self.objects[bucket, key]).hexdigest()

    def get(
        self,
        bucket: str,
        key: str,
        *,
        etag: str | None = None,
        byte_range: tuple[int, int] | None = None,
    ) -> bytes:
        if (bucket, key) not in self.objects:
            raise ObjectNotFound(f"s3://{bucket}/{key}")
        if etag is not None and etag != self.etag(bucket, key):
            raise ObjectChanged(f"s3://{bucket}/{key} is not {etag}")
        data = self.objects[bucket, key]
        return data if byte_range is None else data[byte_range[0] : byte_range[1]]

    def put(self, bucket: str, key: str, body: bytes, *, if_absent: bool = False) -> None:
        if if_absent and (bucket, key) in self.objects:
            raise ObjectExists(f"s3://{bucket}/{key}")
        self.objects[bucket, key] = bytes(body)
        self.puts.append(key)

    def exists(self, bucket: str, key: str) -> bool:
        return (bucket, key) in self.objects

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        return sorted(k for b, k in self.objects if b == bucket and k.startswith(prefix))

    def json(self, bucket: str, key: str) -> Any:
        return json.loads(self.objects[bucket, key])


class MemoryQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []  # (queue URL, body)
        self.failing = False

    def send(self, queue_url: str, bodies: Sequence[str]) -> None:
        if self.failing:
            raise QueueError(f"{queue_url} is unreachable")
        self.sent.extend((queue_url, body) for body in bodies)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.sent]


def sqs_event(*bodies: str, receive_count: int = 1) -> dict[str, Any]:
    """An SQS event as Lambda's event source mapping delivers it."""
    return {
        "Records": [
            {
                "messageId": f"m-{index}",
                "receiptHandle": f"r-{index}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": "1700000000000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1700000000001",
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:tiny-jobs",
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }


def s3_event(bucket: str, key: str, etag: str, size: int) -> dict[str, Any]:
    """An S3 ObjectCreated event; `key` as S3 sends it (URL-encoded)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-01-01T00:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "tiny-batches",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": key, "size": size, "eTag": etag, "sequencer": "0A1B"},
                },
            }
        ]
    }
