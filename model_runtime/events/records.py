"""The job record (`jobs/<model>/<id>/status.json`), its keys and its ids."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from model_runtime.errors import InvalidInput

JobStatus = Literal["pending", "running", "succeeded", "failed"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed"})
# A header value of visible ASCII only: it becomes part of a hash, never of a key.
MAX_IDEMPOTENCY_KEY = 255


class JobError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: int
    message: str


class JobRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    model: str
    status: JobStatus
    submitted_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    request_sha256: str
    input_uri: str | None = None
    response: dict[str, Any] | None = None  # only when succeeded
    error: JobError | None = None  # only when failed
    last_error: str | None = None  # only when pending again, after a failed attempt

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def to_body(self) -> dict[str, Any]:
        """The record as the API shows it: `response`, `error` and `last_error` only
        when they have a value."""
        body = self.model_dump(mode="json")
        for name in ("response", "error", "last_error"):
            if body[name] is None:
                del body[name]
        return body

    def to_json(self) -> bytes:
        return json.dumps(self.to_body(), separators=(",", ":"), allow_nan=False).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> JobRecord:
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            # Only the runtime writes records: a bad one is a bug, not the client's error.
            raise ValueError(f"unreadable job record: {exc}") from exc


class JobKeys:
    """Where one model's jobs live in the data bucket."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix  # "jobs/<model>"

    @property
    def inputs(self) -> str:
        return f"{self.prefix}/inputs/"

    def status(self, job_id: str) -> str:
        return f"{self.prefix}/{job_id}/status.json"

    def request(self, job_id: str) -> str:
        return f"{self.prefix}/{job_id}/request.json"


def now() -> datetime:
    return datetime.now(UTC)


def new_job_id(model: str, idempotency_key: str | None) -> str:
    """The same id for the same model and key; a random one without a key."""
    if idempotency_key is None:
        return uuid.uuid4().hex
    if not (
        0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY
        and all("!" <= char <= "~" for char in idempotency_key)
    ):
        raise InvalidInput(
            f"Idempotency-Key must be 1..{MAX_IDEMPOTENCY_KEY} visible ASCII characters"
        )
    return hashlib.sha256(f"{model}\n{idempotency_key}".encode()).hexdigest()[:32]


def is_job_id(value: str) -> bool:
    return len(value) == 32 and all(char in "0123456789abcdef" for char in value)


def body_sha256(body: Any) -> str:
    """The hash of a JSON body, independent of key order and whitespace."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
