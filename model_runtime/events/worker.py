"""SQS events -> a partial batch response (`ReportBatchItemFailures`).

Each message is handled alone: one that fails is reported, so SQS delivers it again
(and, after the queue's maximum receives, moves it to the dead-letter queue), while the
others of its batch are deleted. A message counts as done only once its result is
stored.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from model_runtime.events.batches import Batches, ChunkMessage
from model_runtime.events.jobs import Jobs

logger = logging.getLogger("inferstack.worker")


class JobMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["job"]
    model: str
    id: str


Message = Annotated[JobMessage | ChunkMessage, Field(discriminator="kind")]
_MESSAGE: TypeAdapter[JobMessage | ChunkMessage] = TypeAdapter(Message)


class Worker:
    def __init__(self, jobs: Jobs, batches: Batches | None = None) -> None:
        self.jobs = jobs
        self.batches = batches

    async def handle(self, event: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
        failures = []
        for record in event["Records"]:
            try:
                await self._handle(record)
            except Exception:
                logger.exception(
                    "message %s failed; SQS will deliver it again", record.get("messageId")
                )
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    async def _handle(self, record: dict[str, Any]) -> None:
        message = _MESSAGE.validate_json(record["body"])
        if message.model != self.jobs.model:
            raise ValueError(
                f"message for model {message.model!r}; this function serves {self.jobs.model!r}"
            )
        if isinstance(message, JobMessage):
            attempt = int(record["attributes"]["ApproximateReceiveCount"])
            await self.jobs.run(message.id, attempt)
        elif self.batches is None:
            raise ValueError("a batch chunk message, but batches are not enabled here")
        else:
            await self.batches.run_chunk(message)
