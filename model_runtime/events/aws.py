"""The ObjectStore and MessageQueue on S3 and SQS, through botocore.

The only module of `model_runtime.events` that imports boto3 or botocore, and only on
first use (as `model_runtime.s3_reader` does): Lambda provides them. Their errors become
the runtime's by type and AWS error code.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from model_runtime.errors import (
    ObjectExists,
    ObjectNotFound,
    ObjectWriteError,
    QueueError,
)
from model_runtime.s3_reader import PRECONDITION_CODES, default_client, read_errors

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

# SendMessageBatch's limit.
SQS_BATCH = 10
# A conditional write that raced another on the same key: AWS says to retry it.
CONFLICT_CODE = "ConditionalRequestConflict"
PUT_ATTEMPTS = 3


class S3ObjectStore:
    """An ObjectStore on a botocore S3 client (by default s3_reader's, made on first use)."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = default_client()
        return self._client

    def get(
        self,
        bucket: str,
        key: str,
        *,
        etag: str | None = None,
        byte_range: tuple[int, int] | None = None,
    ) -> bytes:
        arguments: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if etag is not None:
            arguments["IfMatch"] = f'"{etag}"'
        if byte_range is not None:
            start, end = byte_range
            arguments["Range"] = f"bytes={start}-{end - 1}"  # HTTP ranges end inclusive
        with read_errors():
            data: bytes = self.client.get_object(**arguments)["Body"].read()
        return data

    def put(self, bucket: str, key: str, body: bytes, *, if_absent: bool = False) -> None:
        arguments: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": body}
        if if_absent:
            arguments["IfNoneMatch"] = "*"
        for attempt in range(1, PUT_ATTEMPTS + 1):
            try:
                with _write_errors():
                    self.client.put_object(**arguments)
                return
            except _Conflict:
                if attempt == PUT_ATTEMPTS:
                    raise ObjectWriteError(
                        f"s3://{bucket}/{key}: conditional writes kept conflicting"
                    ) from None

    def exists(self, bucket: str, key: str) -> bool:
        try:
            with read_errors():
                self.client.head_object(Bucket=bucket, Key=key)
        except ObjectNotFound:
            return False
        return True

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        keys: list[str] = []
        with read_errors():
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            ):
                keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys


class SqsQueue:
    """A MessageQueue on a botocore SQS client (by default boto3's, made on first use)."""

    def __init__(self, client: Any = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5)
            self._client = boto3.client("sqs", config=config)
        return self._client

    def send(self, queue_url: str, bodies: Sequence[str]) -> None:
        from botocore import exceptions as boto

        for start in range(0, len(bodies), SQS_BATCH):
            entries = [
                {"Id": str(index), "MessageBody": body}
                for index, body in enumerate(bodies[start : start + SQS_BATCH])
            ]
            try:
                answer = self.client.send_message_batch(QueueUrl=queue_url, Entries=entries)
            except (boto.ClientError, boto.BotoCoreError) as exc:
                raise QueueError(f"sending to {queue_url} failed: {exc}") from exc
            failed = answer.get("Failed") or []
            if failed:
                first = failed[0]
                raise QueueError(
                    f"{queue_url} refused {len(failed)} of {len(entries)} message(s):"
                    f" {first.get('Code')}: {first.get('Message', '')}"
                )


class _Conflict(Exception):
    """A conditional put raced another write of the key."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def _write_errors() -> Iterator[None]:
    from botocore import exceptions as boto

    try:
        yield
    except boto.ClientError as exc:
        code = _code(exc)
        if code in PRECONDITION_CODES:
            raise ObjectExists(str(exc)) from exc
        if code == CONFLICT_CODE:
            raise _Conflict from exc
        raise ObjectWriteError(str(exc)) from exc
    except (boto.BotoCoreError, ConnectionError, TimeoutError) as exc:
        raise ObjectWriteError(str(exc)) from exc
