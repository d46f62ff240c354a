"""Jobs and batches on LocalStack, end to end, on one stack with the production entry
point: `POST /v2/models/digits/jobs` through API Gateway, the model's queue, its event
source mapping and the function's worker; JSONL files under `batches/digits/in/` through
the bucket notification, their chunks fanned out through the queue.

The function's timeout is 30 s: LocalStack's executor counts an environment's start (the
engines loading, ~1 s alone) inside the first invocation's timeout, and 32 concurrent
clients start 32 environments at once on this 2-core machine.

The tests run in file order: the last one takes the stack down.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from localdev.deploy import down
from model_runtime.engine import Engine
from tests.support.deploy import infer_body, json_error
from tests.support.events import (
    NOT_JSON,
    UNKNOWN_INPUT,
    WRONG_RANK,
    EventsStack,
    assert_matches,
    batch_file,
    chunk_count,
    deployed_stack,
    engine_outputs,
    event_leftovers,
    events_config,
    fetch_records,
    job_bodies,
    jobs_path,
    jsonl,
    submit,
    submit_all,
    submitted_id,
    wait_finished,
    wait_object,
)

STACK = "t-ev"
CLIENTS = 32
JOBS = 500
LINES = 10_000
CHUNK_LINES = 1000
# Bad lines at both ends, on both sides of a chunk boundary, and spread through the file.
BAD = {1, CHUNK_LINES, CHUNK_LINES + 1, LINES, *range(397, LINES, 397)}


@pytest.fixture(scope="module")
def stack(
    endpoint: str, digits_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EventsStack]:
    config = events_config(timeout_s=30, batch_size=10, max_receives=3, chunk_lines=CHUNK_LINES)
    root = tmp_path_factory.mktemp(STACK) / "root"
    with deployed_stack(STACK, config, endpoint, digits_dir, root, handler=None) as deployed:
        yield deployed


@pytest.fixture(scope="module")
def http(stack: EventsStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=60.0) as client:
        yield client


def images_for(digits_images: np.ndarray, count: int) -> np.ndarray:
    return np.concatenate([digits_images] * (count // len(digits_images) + 1))[:count]


def stored_keys(stack: EventsStack) -> list[str]:
    s3 = stack.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=stack.bucket, Prefix="jobs/")
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def test_500_concurrent_jobs_equal_the_engine(
    stack: EventsStack, digits_engine: Engine, digits_images: np.ndarray
) -> None:
    images = images_for(digits_images, JOBS)
    ids = submit_all(stack.url, job_bodies(images), CLIENTS)
    assert len(set(ids)) == JOBS
    records = wait_finished(stack, ids, timeout_s=240, after_drain=True)

    expected = engine_outputs(digits_engine, images)
    for index, (job_id, record) in enumerate(zip(ids, records, strict=True)):
        assert record["id"] == job_id and record["model"] == "digits"
        assert record["status"] == "succeeded", record
        assert record["submitted_at"] <= record["started_at"] <= record["finished_at"]
        assert_matches(record["response"], expected, index)
    # The API answers each job with its record (a sample: each call goes through Lambda).
    sample = ids[::10]
    assert fetch_records(stack.url, sample, CLIENTS) == records[::10]


def test_an_idempotency_key_returns_the_same_job(
    stack: EventsStack, http: httpx.Client, digits_images: np.ndarray
) -> None:
    body = infer_body(digits_images[:1])
    first = submitted_id(submit(http, body, key="order-1234"))
    again = submitted_id(submit(http, body, key="order-1234"))
    assert again == first
    other = submitted_id(submit(http, body, key="order-1235"))
    assert other != first

    conflict = submit(http, infer_body(digits_images[1:2]), key="order-1234")
    assert conflict.status_code == 409, conflict.text
    assert json_error(conflict)

    wait_finished(stack, [first, other], timeout_s=60)
    record = http.get(jobs_path(first)).json()
    assert record["status"] == "succeeded", record


@pytest.mark.parametrize(
    "body",
    [
        # 400: a tensor the model refuses (rank 3, the model takes rank 4)
        {"inputs": [{"name": "image", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.0] * 64}]},
        # 400: an input the model does not have
        {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]},
        # 422: not an inference request
        {"inputs": []},
        {"input": "an image"},
    ],
    ids=["wrong-rank", "unknown-input", "no-inputs", "not-a-request"],
)
def test_an_invalid_job_is_refused_at_submit_like_infer(
    stack: EventsStack, http: httpx.Client, body: dict[str, Any]
) -> None:
    before = stored_keys(stack)
    infer = http.post("/v2/models/digits/infer", json=body)
    job = submit(http, body)
    assert 400 <= infer.status_code < 500, infer.text
    assert job.status_code == infer.status_code, (job.text, infer.text)
    assert json_error(job) == json_error(infer)
    assert stored_keys(stack) == before  # nothing stored, so nothing queued


def test_a_10000_line_batch_equals_the_engine_line_by_line(
    stack: EventsStack, digits_engine: Engine, digits_images: np.ndarray
) -> None:
    batch = batch_file(digits_images, LINES, BAD)
    name = "nightly/digits-10k"  # a name with a "/" in it
    key = f"{stack.batch_prefix}/in/{name}.jsonl"
    s3 = stack.client("s3")
    etag = s3.put_object(Bucket=stack.bucket, Key=key, Body=batch.text.encode())["ETag"]

    out = f"{stack.batch_prefix}/out/{name}"
    summary = json.loads(wait_object(s3, stack.bucket, f"{out}.summary.json", timeout_s=240))
    results = jsonl(s3.get_object(Bucket=stack.bucket, Key=f"{out}.jsonl")["Body"].read())
    errors = jsonl(s3.get_object(Bucket=stack.bucket, Key=f"{out}.errors.jsonl")["Body"].read())

    assert len(results) == LINES
    expected = engine_outputs(digits_engine, digits_images)
    for number, result in enumerate(results, start=1):
        if number in batch.bad:
            assert set(result) == {"error"}, (number, result)
        else:
            assert result["model_name"] == "digits", (number, result)
            assert_matches(result, expected, (number - 1) % len(digits_images))

    assert [error["line"] for error in errors] == sorted(BAD)
    for error in errors:
        number, reason = error["line"], error["error"]
        assert reason and reason == results[number - 1]["error"], error
        text = batch.bad[number]
        if text in NOT_JSON:
            assert "json" in reason.lower(), error
        if text == UNKNOWN_INPUT:
            assert "pixels" in reason, error
        if text == WRONG_RANK:
            assert "rank" in reason, error

    chunks = chunk_count(LINES, CHUNK_LINES)
    assert summary["input"] == key
    assert summary["model"] == "digits" and summary["model_version"] == "1"
    assert summary["lines"] == LINES
    assert summary["failed"] == len(BAD)
    assert summary["succeeded"] + summary["failed"] == LINES
    assert summary["chunks"] == chunks > 1
    assert summary["seconds"] >= 0 and summary["started_at"] <= summary["finished_at"]

    # The chunks fanned out: one result file per chunk in the run's work prefix.
    run = etag.strip('"')
    work = f"{stack.batch_prefix}/work/{name}/{run}/"
    listed = s3.list_objects_v2(Bucket=stack.bucket, Prefix=work).get("Contents", [])
    keys = {item["Key"].removeprefix(work) for item in listed}
    assert {f"chunk-{index:05d}.jsonl" for index in range(chunks)} <= keys, sorted(keys)
    plan = json.loads(s3.get_object(Bucket=stack.bucket, Key=f"{work}plan.json")["Body"].read())
    assert plan["lines"] == LINES and plan["chunks"] == chunks


def test_down_removes_the_queues_mappings_and_notifications(
    stack: EventsStack, endpoint: str
) -> None:
    before = event_leftovers(endpoint, STACK)
    assert len(before.queues) == 2, before  # the queue and its dead-letter queue
    assert len(before.mappings) == 1, before
    assert before.notifications == [stack.bucket], before

    down(STACK, root=stack.root)
    after = event_leftovers(endpoint, STACK)
    assert after.empty, after
