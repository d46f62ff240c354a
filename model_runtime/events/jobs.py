"""Queued jobs: submit (validate, record, queue), status, and running one job from its
queue message."""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict

from model_runtime.answers import status_for
from model_runtime.dataplane import DataPlane
from model_runtime.errors import (
    InferstackError,
    InvalidInput,
    JobConflict,
    JobNotFound,
    JobsNotEnabled,
    ObjectExists,
    ObjectNotFound,
    QueueError,
)
from model_runtime.events.lines import parse_request
from model_runtime.events.records import (
    JobError,
    JobKeys,
    JobRecord,
    JobStatus,
    body_sha256,
    is_job_id,
    new_job_id,
    now,
)
from model_runtime.events.settings import JobsSettings
from model_runtime.events.storage import MessageQueue, ObjectStore
from model_runtime.protocol import InferenceRequest

logger = logging.getLogger("inferstack.jobs")


class InputUriJob(BaseModel):
    """A job whose OIP request is an object in the data bucket (for inputs over the
    API's payload limit)."""

    model_config = ConfigDict(extra="forbid")

    input_uri: str


def parse_submission(body: Any) -> InferenceRequest | InputUriJob:
    """The job body: `{"input_uri": ...}` or an OIP request; raises pydantic's
    ValidationError, which the app answers like /infer's."""
    if isinstance(body, dict) and "input_uri" in body:
        return InputUriJob.model_validate(body)
    # from_attributes as FastAPI validates bodies: the errors then read as /infer's.
    return InferenceRequest.model_validate(body, from_attributes=True)


def job_message(model: str, job_id: str) -> str:
    return json.dumps({"kind": "job", "model": model, "id": job_id})


class Jobs:
    """One model's jobs in the data bucket and its queue."""

    def __init__(
        self,
        plane: DataPlane,
        settings: JobsSettings,
        store: ObjectStore,
        queue: MessageQueue,
    ) -> None:
        self.plane = plane
        self.settings = settings
        self.keys = JobKeys(settings.prefix)
        self._store = store
        self._queue = queue

    @property
    def model(self) -> str:
        return self.settings.model

    parse = staticmethod(parse_submission)

    def status_url(self, job_id: str) -> str:
        return f"/v2/models/{self.model}/jobs/{job_id}"

    def submit(
        self,
        model: str,
        submission: InferenceRequest | InputUriJob,
        idempotency_key: str | None = None,
    ) -> JobRecord:
        """Validate like /infer, then record and queue the job; the same key gives the
        same job. Nothing is stored or queued for a request that fails validation."""
        self._check_enabled(model)
        body = submission.model_dump(mode="json", exclude_unset=True)
        input_uri = None
        if isinstance(submission, InferenceRequest):
            self.plane.validate(model, submission)
        else:
            input_uri = submission.input_uri
            self._check_input_uri(input_uri)
        job_id = new_job_id(model, idempotency_key)
        record = JobRecord(
            id=job_id,
            model=model,
            status="pending",
            submitted_at=now(),
            request_sha256=body_sha256(body),
            input_uri=input_uri,
        )
        try:
            self._put(record, if_absent=True)
        except ObjectExists:
            existing = self._load(job_id)
            if existing.request_sha256 != record.request_sha256:
                raise JobConflict(
                    f"Idempotency-Key is already used by job {job_id!r} with a different"
                    " request body"
                ) from None
            return existing
        try:
            if isinstance(submission, InferenceRequest):
                self._store.put(
                    self.settings.bucket, self.keys.request(job_id), json.dumps(body).encode()
                )
            self._queue.send(self.settings.queue_url, [job_message(model, job_id)])
        except InferstackError as exc:
            # Never leave a pending job that no message will ever run.
            reason = f"the job could not be queued: {exc}"
            self._put(self._finish(record, "failed", error=JobError(status=503, message=reason)))
            raise QueueError(f"job {job_id!r} {reason}") from exc
        return record

    def get(self, model: str, job_id: str) -> JobRecord:
        self._check_enabled(model)
        if not is_job_id(job_id):
            raise JobNotFound(f"no job {job_id!r} for model {model!r}")
        return self._load(job_id)

    async def run(self, job_id: str, attempt: int) -> None:
        """Run one job (its `attempt`-th receive). Returns once the outcome is stored
        (the message may go); raises when SQS should deliver the message again."""
        record = self._load(job_id)
        if record.finished:
            return  # a redelivery: the result is stored already, never make a second one
        record = record.model_copy(
            update={
                "status": "running",
                "attempts": attempt,
                "started_at": now(),
                "last_error": None,
            }
        )
        self._put(record)
        try:
            response = await self.plane.infer(self.model, self._request(record))
        except InferstackError as exc:
            status = status_for(exc)
            if status >= 500:
                self._retry_or_fail(record, exc, attempt)
                raise
            # The client's error: another try cannot fix it.
            self._put(
                self._finish(record, "failed", error=JobError(status=status, message=str(exc)))
            )
            return
        except Exception as exc:
            self._retry_or_fail(record, exc, attempt)
            raise
        self._put(self._finish(record, "succeeded", response=response))

    def _retry_or_fail(self, record: JobRecord, exc: Exception, attempt: int) -> None:
        reason = str(exc) if isinstance(exc, InferstackError) else f"{type(exc).__name__}: {exc}"
        logger.warning("job %s attempt %d failed: %s", record.id, attempt, reason)
        if attempt >= self.settings.max_receives:
            # Its last receive: the message goes to the dead-letter queue next.
            self._put(self._finish(record, "failed", error=JobError(status=500, message=reason)))
        else:
            self._put(record.model_copy(update={"status": "pending", "last_error": reason}))

    def _request(self, record: JobRecord) -> InferenceRequest:
        inputs = self.plane.engine(self.model).manifest.inputs
        if record.input_uri is None:
            raw = self._store.get(self.settings.bucket, self.keys.request(record.id))
            return parse_request(raw, inputs)
        bucket, _, key = record.input_uri.removeprefix("s3://").partition("/")
        try:
            raw = self._store.get(bucket, key)
        except ObjectNotFound:
            raise InvalidInput(f"input_uri {record.input_uri!r}: no such object") from None
        return parse_request(raw, inputs)

    def _check_enabled(self, model: str) -> None:
        self.plane.engine(model)  # an unknown model is a 404 of its own
        if model != self.model:
            raise JobsNotEnabled(f"jobs are not enabled for model {model!r}")

    def _check_input_uri(self, uri: str) -> None:
        allowed = f"s3://{self.settings.bucket}/{self.keys.inputs}"
        if not uri.startswith(allowed) or len(uri) == len(allowed):
            raise InvalidInput(f"input_uri must be an object under {allowed}, got {uri!r}")
        if not self._store.exists(
            self.settings.bucket, uri.removeprefix(f"s3://{self.settings.bucket}/")
        ):
            raise InvalidInput(f"input_uri {uri!r}: no such object")

    def _load(self, job_id: str) -> JobRecord:
        try:
            raw = self._store.get(self.settings.bucket, self.keys.status(job_id))
        except ObjectNotFound:
            raise JobNotFound(f"no job {job_id!r} for model {self.model!r}") from None
        return JobRecord.from_json(raw)

    def _put(self, record: JobRecord, *, if_absent: bool = False) -> None:
        self._store.put(
            self.settings.bucket, self.keys.status(record.id), record.to_json(), if_absent=if_absent
        )

    @staticmethod
    def _finish(record: JobRecord, status: JobStatus, **update: Any) -> JobRecord:
        return record.model_copy(update={"status": status, "finished_at": now(), **update})
