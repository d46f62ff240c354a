"""The two services events need, as Protocols: `aws.py` implements them with botocore,
the unit tests in memory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class ObjectStore(Protocol):
    def get(
        self,
        bucket: str,
        key: str,
        *,
        etag: str | None = None,
        byte_range: tuple[int, int] | None = None,
    ) -> bytes:
        """The object's bytes, or `byte_range` (start, end exclusive) of them.

        With `etag`, raises ObjectChanged unless the object still has that ETag; raises
        ObjectNotFound when there is no object.
        """
        ...

    def put(self, bucket: str, key: str, body: bytes, *, if_absent: bool = False) -> None:
        """Store `body`; with `if_absent`, raises ObjectExists when the key is taken."""
        ...

    def exists(self, bucket: str, key: str) -> bool: ...

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        """Every key under `prefix`, in key order."""
        ...


class MessageQueue(Protocol):
    def send(self, queue_url: str, bodies: Sequence[str]) -> None:
        """Send every body (in as few calls as the service allows); raises QueueError
        unless all were accepted."""
        ...
