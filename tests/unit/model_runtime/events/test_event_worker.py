"""The SQS worker: a job runs once through the data plane; client errors fail at once,
anything else is retried until the last receive; the answer is a partial batch
response."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import numpy as np
import pytest

from model_runtime.dataplane import DataPlane
from model_runtime.engine import Engine
from model_runtime.events.jobs import Jobs
from model_runtime.events.worker import Worker
from model_runtime.protocol import InferenceRequest
from tests.unit.model_runtime.events.conftest import BUCKET, MAX_RECEIVES
from tests.unit.model_runtime.events.in_memory import MemoryQueue, MemoryStore, sqs_event


def _request(images: np.ndarray) -> InferenceRequest:
    tensor = {
        "name": "image",
        "shape": list(images.shape),
        "datatype": "FP32",
        "data": images.ravel().tolist(),
    }
    return InferenceRequest.model_validate({"id": "j", "inputs": [tensor]})


def _record(store: MemoryStore, job_id: str) -> dict[str, Any]:
    record: dict[str, Any] = store.json(BUCKET, f"jobs/tiny/{job_id}/status.json")
    return record


def _deliver(worker: Worker, queue: MemoryQueue, receive_count: int = 1) -> dict[str, Any]:
    event = sqs_event(*(body for _, body in queue.sent), receive_count=receive_count)
    return asyncio.run(worker.handle(event))


def _failing(plane: DataPlane, monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    async def infer(*_: Any, **__: Any) -> dict[str, Any]:
        raise error

    monkeypatch.setattr(plane, "infer", infer)


def test_a_job_runs_and_its_result_is_stored(
    worker: Worker,
    jobs: Jobs,
    store: MemoryStore,
    queue: MemoryQueue,
    tiny_engine: Engine,
    tiny_inputs: np.ndarray,
) -> None:
    images = tiny_inputs[:3]
    job_id = jobs.submit("tiny", _request(images)).id
    assert _deliver(worker, queue, receive_count=1) == {"batchItemFailures": []}
    record = _record(store, job_id)
    assert record["status"] == "succeeded" and record["attempts"] == 1
    assert record["started_at"] <= record["finished_at"]
    assert "error" not in record and "last_error" not in record
    response = record["response"]
    assert response["model_name"] == "tiny" and response["id"] == "j"
    outputs = {output["name"]: output for output in response["outputs"]}
    expected = tiny_engine.infer({"image": images})
    np.testing.assert_array_equal(outputs["label"]["data"], expected["label"])
    np.testing.assert_allclose(
        np.array(outputs["probabilities"]["data"]).reshape(3, 10),
        expected["probabilities"],
        rtol=1e-6,
    )


def test_a_redelivered_finished_job_is_not_run_again(
    worker: Worker,
    jobs: Jobs,
    store: MemoryStore,
    queue: MemoryQueue,
    plane: DataPlane,
    tiny_inputs: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = jobs.submit("tiny", _request(tiny_inputs[:1])).id
    _deliver(worker, queue)
    before = _record(store, job_id)
    _failing(plane, monkeypatch, AssertionError("ran a finished job again"))
    assert _deliver(worker, queue, receive_count=2) == {"batchItemFailures": []}
    assert _record(store, job_id) == before


def test_a_client_error_fails_the_job_without_a_retry(
    worker: Worker,
    jobs: Jobs,
    store: MemoryStore,
    queue: MemoryQueue,
) -> None:
    # An input_uri object is validated only when the job runs.
    key = "jobs/tiny/inputs/bad.json"
    store.put(
        BUCKET,
        key,
        json.dumps(
            {"inputs": [{"name": "image", "shape": [64], "datatype": "FP32", "data": [0.0] * 64}]}
        ).encode(),
    )
    job_id = jobs.submit("tiny", jobs.parse({"input_uri": f"s3://{BUCKET}/{key}"})).id
    assert _deliver(worker, queue) == {"batchItemFailures": []}
    record = _record(store, job_id)
    assert record["status"] == "failed" and "response" not in record
    assert record["error"]["status"] == 400
    assert "model expects rank 4" in record["error"]["message"]


def test_malformed_input_uri_json_fails_the_job(
    worker: Worker,
    jobs: Jobs,
    store: MemoryStore,
    queue: MemoryQueue,
) -> None:
    key = "jobs/tiny/inputs/broken.json"
    store.put(BUCKET, key, b'{"inputs": [')
    job_id = jobs.submit("tiny", jobs.parse({"input_uri": f"s3://{BUCKET}/{key}"})).id
    assert _deliver(worker, queue) == {"batchItemFailures": []}
    error = _record(store, job_id)["error"]
    assert error["status"] == 400 and error["message"].startswith("malformed JSON")


def test_an_unexpected_error_is_retried_then_fails_at_the_last_receive(
    worker: Worker,
    jobs: Jobs,
    store: MemoryStore,
    queue: MemoryQueue,
    plane: DataPlane,
    tiny_inputs: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = jobs.submit("tiny", _request(tiny_inputs[:1])).id
    _failing(plane, monkeypatch, RuntimeError("injected"))
    for attempt in range(1, MAX_RECEIVES):
        assert _deliver(worker, queue, attempt) == {
            "batchItemFailures": [{"itemIdentifier": "m-0"}]
        }
        record = _record(store, job_id)
        assert record["status"] == "pending" and record["attempts"] == attempt
        assert record["last_error"] == "RuntimeError: injected" and "error" not in record
    # The last receive: the record says failed, and SQS moves the message to the DLQ.
    failures = _deliver(worker, queue, MAX_RECEIVES)
    assert failures == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    record = _record(store, job_id)
    assert record["status"] == "failed" and record["attempts"] == MAX_RECEIVES
    assert record["error"] == {"status": 500, "message": "RuntimeError: injected"}
    assert record["finished_at"] is not None and "last_error" not in record


def test_a_failed_retry_that_then_succeeds_clears_the_last_error(
    worker: Worker,
    jobs: Jobs,
    store: MemoryStore,
    queue: MemoryQueue,
    plane: DataPlane,
    tiny_inputs: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = jobs.submit("tiny", _request(tiny_inputs[:1])).id
    with monkeypatch.context() as patch:
        _failing(plane, patch, RuntimeError("once"))
        _deliver(worker, queue, 1)
    assert _deliver(worker, queue, 2) == {"batchItemFailures": []}
    record = _record(store, job_id)
    assert record["status"] == "succeeded" and record["attempts"] == 2
    assert "last_error" not in record


def test_one_bad_message_does_not_block_the_others(
    worker: Worker,
    jobs: Jobs,
    store: MemoryStore,
    queue: MemoryQueue,
    tiny_inputs: np.ndarray,
) -> None:
    good = jobs.submit("tiny", _request(tiny_inputs[:1])).id
    bodies = [
        "not json",
        queue.sent[0][1],
        json.dumps({"kind": "job", "model": "tiny", "id": "f" * 32}),  # no such job
        json.dumps({"kind": "job", "model": "cats", "id": good}),
        json.dumps({"kind": "nonsense", "model": "tiny"}),
    ]
    answer = asyncio.run(worker.handle(sqs_event(*bodies)))
    assert answer == {
        "batchItemFailures": [{"itemIdentifier": f"m-{index}"} for index in (0, 2, 3, 4)]
    }
    assert _record(store, good)["status"] == "succeeded"


def test_a_result_that_cannot_be_stored_is_reported(
    worker: Worker,
    jobs: Jobs,
    store: MemoryStore,
    queue: MemoryQueue,
    tiny_inputs: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = jobs.submit("tiny", _request(tiny_inputs[:1])).id
    put = store.put

    def put_no_results(bucket: str, key: str, body: bytes, *, if_absent: bool = False) -> None:
        if b'"succeeded"' in body:
            raise OSError("disk full")
        put(bucket, key, body, if_absent=if_absent)

    monkeypatch.setattr(store, "put", put_no_results)
    # Not deleted before its result is stored.
    assert _deliver(worker, queue) == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert _record(store, job_id)["status"] == "running"


def test_chunk_messages_go_to_the_batches(
    worker: Worker, store: MemoryStore, queue: MemoryQueue, tiny_inputs: np.ndarray
) -> None:
    key = "batches/tiny/in/chunks.jsonl"
    lines = [json.dumps({"image": image.tolist()}) for image in tiny_inputs[:9]]
    store.put(BUCKET, key, "\n".join(lines).encode())
    assert worker.batches is not None
    asyncio.run(worker.batches.on_upload(BUCKET, key, store.etag(BUCKET, key)))
    assert len(queue.sent) == 3
    assert _deliver(worker, queue) == {"batchItemFailures": []}
    summary = store.json(BUCKET, "batches/tiny/out/chunks.summary.json")
    assert (summary["lines"], summary["succeeded"], summary["chunks"]) == (9, 9, 3)


def test_the_messages_of_a_batch_wait_on_storage_side_by_side(
    worker: Worker,
    jobs: Jobs,
    store: MemoryStore,
    queue: MemoryQueue,
    tiny_inputs: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every job's first read waits until all three are reading at once: handled one
    # after another, the barrier breaks and every message fails.
    together = threading.Barrier(3, timeout=5.0)
    reads: set[str] = set()
    get = store.get

    def get_together(bucket: str, key: str, **kwargs: Any) -> bytes:
        if key.endswith("status.json") and key not in reads:
            reads.add(key)
            together.wait()
        return get(bucket, key, **kwargs)

    ids = [jobs.submit("tiny", _request(tiny_inputs[i : i + 1])).id for i in range(3)]
    monkeypatch.setattr(store, "get", get_together)
    assert _deliver(worker, queue) == {"batchItemFailures": []}
    assert [_record(store, job_id)["status"] for job_id in ids] == ["succeeded"] * 3
