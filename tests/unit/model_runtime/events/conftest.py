"""One model's jobs and batches over the tiny model, on in-memory storage."""

from __future__ import annotations

import pytest

from model_runtime.dataplane import DataPlane
from model_runtime.engine import Engine
from model_runtime.events.batches import Batches
from model_runtime.events.jobs import Jobs
from model_runtime.events.settings import BatchSettings, JobsSettings
from model_runtime.events.worker import Worker
from tests.unit.model_runtime.events.in_memory import MemoryQueue, MemoryStore

BUCKET = "inferstack-test-jobs"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/inferstack-test-tiny-jobs"
MAX_RECEIVES = 3
CHUNK_LINES = 4


@pytest.fixture
def settings() -> JobsSettings:
    return JobsSettings(
        bucket=BUCKET,
        prefix="jobs/tiny",
        queue_url=QUEUE_URL,
        max_receives=MAX_RECEIVES,
        batch=BatchSettings(prefix="batches/tiny", chunk_lines=CHUNK_LINES),
    )


@pytest.fixture
def plane(tiny_engine: Engine) -> DataPlane:
    return DataPlane([tiny_engine])


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def queue() -> MemoryQueue:
    return MemoryQueue()


@pytest.fixture
def jobs(plane: DataPlane, settings: JobsSettings, store: MemoryStore, queue: MemoryQueue) -> Jobs:
    return Jobs(plane, settings, store, queue)


@pytest.fixture
def batches(
    plane: DataPlane, settings: JobsSettings, store: MemoryStore, queue: MemoryQueue
) -> Batches:
    assert settings.batch is not None
    return Batches(plane, "tiny", settings.batch, BUCKET, QUEUE_URL, store, queue)


@pytest.fixture
def worker(jobs: Jobs, batches: Batches) -> Worker:
    return Worker(jobs, batches)
