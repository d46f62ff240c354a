"""SQS events -> a partial batch response (`ReportBatchItemFailures`).

Each message is handled alone: one that fails is reported, so SQS delivers it again
(and, after the queue's maximum receives, moves it to the dead-letter queue), while the
others of its batch are deleted. A message counts as done only once its result is
stored.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
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
# A job is mostly S3 round trips (status, request, result): the messages of one batch
# wait on them side by side, each on its own thread and event loop. SQS hands Lambda
# at most 10 messages a batch without a batching window.
MESSAGE_THREADS = 10


class Worker:
    def __init__(self, jobs: Jobs, batches: Batches | None = None) -> None:
        self.jobs = jobs
        self.batches = batches
        self._threads = ThreadPoolExecutor(MESSAGE_THREADS, thread_name_prefix="message")

    async def handle(self, event: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
        loop = asyncio.get_running_loop()
        records = event["Records"]
        done = await asyncio.gather(
            *(loop.run_in_executor(self._threads, self._handle_alone, r) for r in records)
        )
        failures = [
            {"itemIdentifier": record["messageId"]}
            for record, ok in zip(records, done, strict=True)
            if not ok
        ]
        return {"batchItemFailures": failures}

    def _handle_alone(self, record: dict[str, Any]) -> bool:
        """Whether the message is done (its outcome stored); a failure is logged."""
        try:
            asyncio.run(self._handle(record))
        except Exception:
            logger.exception(
                "message %s failed; SQS will deliver it again", record.get("messageId")
            )
            return False
        return True

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
