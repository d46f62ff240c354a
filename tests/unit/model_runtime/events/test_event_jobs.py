"""Jobs over HTTP: submit validates like /infer before anything is stored or queued,
idempotency keys, a queue that fails, status reads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from model_runtime.app import create_app
from model_runtime.dataplane import DataPlane
from model_runtime.events.jobs import Jobs
from tests.support.tiny_model import MAX_BATCH_SIZE
from tests.unit.model_runtime.events.conftest import BUCKET, QUEUE_URL
from tests.unit.model_runtime.events.in_memory import MemoryQueue, MemoryStore

JOBS = "/v2/models/tiny/jobs"
INFER = "/v2/models/tiny/infer"


@pytest.fixture
def client(plane: DataPlane, jobs: Jobs) -> Iterator[TestClient]:
    with TestClient(create_app(plane, jobs=jobs), raise_server_exceptions=False) as client:
        yield client


def _body(images: np.ndarray, **extra: Any) -> dict[str, Any]:
    tensor = {
        "name": "image",
        "shape": list(images.shape),
        "datatype": "FP32",
        "data": images.ravel().tolist(),
    }
    return {"inputs": [tensor], **extra}


def _post(
    client: TestClient, path: str, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    content = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(
        path, content=content, headers={"content-type": "application/json", **(headers or {})}
    )


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    return str(body["error"])


def test_submit_records_and_queues_the_job(
    client: TestClient, store: MemoryStore, queue: MemoryQueue, tiny_inputs: np.ndarray
) -> None:
    body = _body(tiny_inputs[:2], id="r1")
    response = _post(client, JOBS, body)
    assert response.status_code == 202, response.text
    answer = response.json()
    job_id = answer["id"]
    assert len(job_id) == 32 and int(job_id, 16) >= 0
    assert answer == {"id": job_id, "status": "pending", "status_url": f"{JOBS}/{job_id}"}
    assert response.headers["location"] == answer["status_url"]
    record = store.json(BUCKET, f"jobs/tiny/{job_id}/status.json")
    assert record["status"] == "pending" and record["model"] == "tiny"
    assert record["attempts"] == 0 and record["input_uri"] is None
    assert record["started_at"] is None and record["finished_at"] is None
    assert "response" not in record and "error" not in record
    assert store.json(BUCKET, f"jobs/tiny/{job_id}/request.json") == body
    assert queue.sent == [(QUEUE_URL, json.dumps({"kind": "job", "model": "tiny", "id": job_id}))]
    status = client.get(answer["status_url"])
    assert status.status_code == 200 and status.json() == record


BAD_BODIES: list[Any] = [
    '{"inputs": [',
    b"\x89PNG\r\n\x1a\n\x00",
    "[1, 2]",
    "{}",
    {"inputs": []},
    {"inputs": [{"name": "image", "shape": [1], "datatype": "FP32"}]},
    {"inputs": [{"name": "image", "shape": [64], "datatype": "FP32", "data": [0.0] * 64}]},
    {"inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "INT64", "data": [0] * 64}]},
    {"inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [0.0]}]},
    {"inputs": [{"name": "pixels", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [0] * 64}]},
    {
        "inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [0] * 64}],
        "outputs": [{"name": "logits"}],
    },
    {
        "inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [0] * 64}],
        "outputs": [{"name": "label"}, {"name": "label"}],
    },
    {
        "inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [0] * 64}],
        "extra": True,
    },
    {
        "inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [0] * 64}],
        "parameters": {"x": float("nan")},
    },
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=range(len(BAD_BODIES)))
def test_a_bad_request_fails_at_submit_exactly_as_infer_fails(
    client: TestClient, store: MemoryStore, queue: MemoryQueue, body: Any
) -> None:
    content = json.dumps(body) if isinstance(body, dict) else body
    infer = _post(client, INFER, content)
    submit = _post(client, JOBS, content)
    assert infer.status_code in {400, 422}, infer.text
    assert (submit.status_code, submit.json()) == (infer.status_code, infer.json())
    assert store.objects == {} and queue.sent == []


def test_an_empty_body_fails_as_infer_fails(client: TestClient, store: MemoryStore) -> None:
    infer, submit = (client.post(path) for path in (INFER, JOBS))
    assert (submit.status_code, submit.json()) == (infer.status_code, infer.json())
    assert _error(submit, 422) == "invalid request: body: Field required"
    assert store.objects == {}


def test_a_batch_over_the_limit_is_a_413_like_infer(
    client: TestClient, store: MemoryStore, tiny_inputs: np.ndarray
) -> None:
    oversized = np.resize(tiny_inputs, (MAX_BATCH_SIZE + 1, 1, 8, 8))
    infer, submit = (_post(client, path, _body(oversized)) for path in (INFER, JOBS))
    assert f"over this model's limit of {MAX_BATCH_SIZE}" in _error(submit, 413)
    assert submit.json() == infer.json()
    assert store.objects == {}


def test_an_unknown_model_is_a_404_like_infer(
    client: TestClient, store: MemoryStore, tiny_inputs: np.ndarray
) -> None:
    body = _body(tiny_inputs[:1])
    infer = _post(client, "/v2/models/cats/infer", body)
    submit = _post(client, "/v2/models/cats/jobs", body)
    assert "model 'cats' is not served here" in _error(submit, 404)
    assert submit.json() == infer.json()
    assert "model 'cats' is not served here" in _error(
        client.get(f"/v2/models/cats/jobs/{'0' * 32}"), 404
    )
    assert store.objects == {}


def test_the_same_idempotency_key_gives_the_same_job(
    client: TestClient, store: MemoryStore, queue: MemoryQueue, tiny_inputs: np.ndarray
) -> None:
    body = _body(tiny_inputs[:1])
    headers = {"Idempotency-Key": "order-42"}
    first = _post(client, JOBS, body, headers)
    # The same body in another key order and spacing is the same body.
    again = _post(client, JOBS, json.dumps(body, indent=2, sort_keys=True), headers)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert first.json()["id"] == hashlib.sha256(b"tiny\norder-42").hexdigest()[:32]
    assert len(queue.sent) == 1
    other = _post(client, JOBS, body, {"Idempotency-Key": "order-43"})
    assert other.status_code == 202 and other.json()["id"] != first.json()["id"]
    assert len(queue.sent) == 2


def test_the_same_key_with_another_body_is_a_409(
    client: TestClient, store: MemoryStore, queue: MemoryQueue, tiny_inputs: np.ndarray
) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = _post(client, JOBS, _body(tiny_inputs[:1]), headers)
    conflict = _post(client, JOBS, _body(tiny_inputs[1:2]), headers)
    message = _error(conflict, 409)
    assert first.json()["id"] in message and "different request body" in message
    assert len(queue.sent) == 1
    record = store.json(BUCKET, f"jobs/tiny/{first.json()['id']}/status.json")
    assert record["status"] == "pending"


@pytest.mark.parametrize("key", [b"has space", "ключ".encode(), b"x" * 256, b"tab\there"])
def test_a_bad_idempotency_key_is_a_400(
    client: TestClient, store: MemoryStore, key: bytes, tiny_inputs: np.ndarray
) -> None:
    headers = {b"content-type": b"application/json", b"idempotency-key": key}
    response = client.post(JOBS, content=json.dumps(_body(tiny_inputs[:1])), headers=headers)
    assert "Idempotency-Key must be 1..255 visible ASCII characters" in _error(response, 400)
    assert store.objects == {}


def test_a_queue_that_fails_fails_the_job_and_answers_503(
    client: TestClient, store: MemoryStore, queue: MemoryQueue, tiny_inputs: np.ndarray
) -> None:
    queue.failing = True
    response = _post(client, JOBS, _body(tiny_inputs[:1]), {"Idempotency-Key": "k"})
    message = _error(response, 503)
    assert "could not be queued" in message and "unreachable" in message
    job_id = hashlib.sha256(b"tiny\nk").hexdigest()[:32]
    record = store.json(BUCKET, f"jobs/tiny/{job_id}/status.json")
    assert record["status"] == "failed" and record["finished_at"] is not None
    assert record["error"]["status"] == 503 and "unreachable" in record["error"]["message"]
    # Never a pending job nobody will run: the same key now reads the failed job.
    queue.failing = False
    again = _post(client, JOBS, _body(tiny_inputs[:1]), {"Idempotency-Key": "k"})
    assert again.json()["status"] == "failed"


def test_an_unknown_job_is_a_404_naming_it(client: TestClient) -> None:
    job_id = "0123456789abcdef0123456789abcdef"
    message = _error(client.get(f"{JOBS}/{job_id}"), 404)
    assert message == f"no job {job_id!r} for model 'tiny'"
    assert _error(client.get(f"{JOBS}/..%2Fsecret"), 404)
    assert "no job 'not-an-id'" in _error(client.get(f"{JOBS}/not-an-id"), 404)


def test_jobs_not_enabled_is_a_404(plane: DataPlane, tiny_inputs: np.ndarray) -> None:
    with TestClient(create_app(plane), raise_server_exceptions=False) as client:
        submit = _post(client, JOBS, _body(tiny_inputs[:1]))
        status = client.get(f"{JOBS}/{'0' * 32}")
    for response in (submit, status):
        assert _error(response, 404) == "jobs are not enabled for model 'tiny'"


def test_input_uri_must_name_an_object_under_the_inputs_prefix(
    client: TestClient, store: MemoryStore, queue: MemoryQueue
) -> None:
    allowed = f"s3://{BUCKET}/jobs/tiny/inputs/"
    for uri in (
        "s3://elsewhere/jobs/tiny/inputs/a.json",
        f"s3://{BUCKET}/jobs/tiny/a.json",
        allowed,
    ):
        message = _error(_post(client, JOBS, {"input_uri": uri}), 400)
        assert message == f"input_uri must be an object under {allowed}, got {uri!r}"
    missing = f"{allowed}missing.json"
    assert "no such object" in _error(_post(client, JOBS, {"input_uri": missing}), 400)
    assert "input_uri" in _error(_post(client, JOBS, {"input_uri": 3}), 422)
    assert "extra" in _error(_post(client, JOBS, {"input_uri": missing, "extra": 1}), 422)
    assert store.objects == {} and queue.sent == []


def test_an_input_uri_job_is_queued_without_a_request_copy(
    client: TestClient, store: MemoryStore, queue: MemoryQueue
) -> None:
    uri = f"s3://{BUCKET}/jobs/tiny/inputs/big.json"
    store.put(BUCKET, "jobs/tiny/inputs/big.json", b"{}")
    response = _post(client, JOBS, {"input_uri": uri})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert store.json(BUCKET, f"jobs/tiny/{job_id}/status.json")["input_uri"] == uri
    assert not store.exists(BUCKET, f"jobs/tiny/{job_id}/request.json")
    assert len(queue.sent) == 1
