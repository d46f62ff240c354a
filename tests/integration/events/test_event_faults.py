"""Jobs that fail on LocalStack: retried, then dead-lettered; and a function killed in the
middle of a batch.

The stack is deployed with a test-only entry point (tests/support/events.py) that wraps
the real one: an image whose first pixel is RAISE_PIXEL makes the engine raise inside the
worker's processing of that message, SLOW_PIXEL makes it slow. A 3 s function timeout
keeps the visibility timeout (6 x 3 s), and so each retry, short; few clients, so that
environments start one or two at a time (LocalStack's executor counts an environment's
start inside its first invocation's timeout).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from localdev.localstack import manager
from model_runtime.engine import Engine
from tests.support.deploy import infer_body
from tests.support.events import (
    RAISE_PIXEL,
    SLOW_PIXEL,
    TERMINAL,
    EventsStack,
    assert_matches,
    deployed_stack,
    engine_outputs,
    events_config,
    fetch_records,
    job_bodies,
    jobs_path,
    marked,
    read_record,
    submit,
    submit_all,
    submitted_id,
    wait_finished,
)
from tests.support.localstack import environment_pids

STACK = "t-ev-faults"
TIMEOUT_S = 3
MAX_RECEIVES = 2
BATCH_SIZE = 5


@pytest.fixture(scope="module")
def stack(
    endpoint: str, digits_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EventsStack]:
    config = events_config(
        timeout_s=TIMEOUT_S, batch_size=BATCH_SIZE, max_receives=MAX_RECEIVES, chunk_lines=1000
    )
    root = tmp_path_factory.mktemp(STACK) / "root"
    with deployed_stack(STACK, config, endpoint, digits_dir, root) as deployed:
        yield deployed


@pytest.fixture(scope="module")
def http(stack: EventsStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=60.0) as client:
        yield client


def images_for(digits_images: np.ndarray, count: int) -> np.ndarray:
    return np.concatenate([digits_images] * (count // len(digits_images) + 1))[:count]


def kill_while_one_is_running(stack: EventsStack, ids: list[str], localstack_pid: int) -> str:
    """SIGKILL every environment process the moment a job reads `running`, until a kill
    lands in the middle of the invocation running a job; returns that job's id.

    A kill lands when the job still reads `running` after it (a dead process writes
    nothing more); one that came just after the batch finished is tried again."""
    s3 = stack.client("s3")
    finished: set[str] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for job_id in ids:
            if job_id in finished:
                continue
            record = read_record(s3, stack.bucket, job_id)
            status = record["status"] if record is not None else "missing"
            if status == "running":
                pids = environment_pids(localstack_pid)
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                after = read_record(s3, stack.bucket, job_id)
                if pids and after is not None and after["status"] == "running":
                    return job_id
            if status in TERMINAL:
                finished.add(job_id)
        time.sleep(0.05)
    pytest.fail("no kill landed inside a running invocation within 60 s")


def test_a_job_that_makes_the_handler_raise_is_retried_then_dead_lettered(
    stack: EventsStack, http: httpx.Client, digits_images: np.ndarray
) -> None:
    job_id = submitted_id(submit(http, infer_body(marked(digits_images[:1], RAISE_PIXEL))))
    # Every receive runs the job, and each fails; the last one records the failure.
    wait_finished(stack, [job_id], timeout_s=(MAX_RECEIVES + 1) * 6 * TIMEOUT_S + 30)
    record = http.get(jobs_path(job_id)).json()
    assert record["status"] == "failed", record
    assert record["attempts"] == MAX_RECEIVES, record
    assert "injected fault: the engine raised" in record["error"]["message"], record
    assert "response" not in record or record["response"] is None

    # After the last receive the message stays invisible one visibility timeout, then SQS
    # moves it to the dead-letter queue instead of delivering it again.
    sqs = stack.client("sqs")
    deadline = time.monotonic() + 6 * TIMEOUT_S + 40
    bodies: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        messages = sqs.receive_message(
            QueueUrl=stack.dead_letter_queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=5,
            AttributeNames=["All"],
        ).get("Messages", [])
        bodies += [json.loads(message["Body"]) for message in messages]
        if any(body.get("id") == job_id for body in bodies):
            break
    assert {"kind": "job", "model": "digits", "id": job_id} in bodies, bodies
    # ... and it is dead-lettered, not run again: the record is unchanged.
    assert read_record(stack.client("s3"), stack.bucket, job_id) == record


def test_killing_the_function_in_the_middle_of_a_batch_loses_no_job(
    stack: EventsStack,
    localstack: manager.Status,
    digits_engine: Engine,
    digits_images: np.ndarray,
) -> None:
    assert localstack.pid is not None
    # Slow jobs (SLOW_S each, BATCH_SIZE a batch): the kill lands inside an invocation.
    images = marked(images_for(digits_images, 60), SLOW_PIXEL)
    ids = submit_all(stack.url, job_bodies(images), clients=2)
    interrupted = kill_while_one_is_running(stack, ids, localstack.pid)
    wait_finished(stack, ids, timeout_s=150)

    expected = engine_outputs(digits_engine, images)
    records = fetch_records(stack.url, ids, clients=2)
    assert [record["status"] for record in records] == ["succeeded"] * len(ids)
    # The batch the kill interrupted came back: its jobs ran a second time.
    assert records[ids.index(interrupted)]["attempts"] >= 2, records
    for index, record in enumerate(records):
        assert_matches(record["response"], expected, index)
