"""The one Lambda entry point: SQS records to the worker, S3 records to the batches,
API Gateway events to the HTTP app, all on one event loop."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from model_runtime.app import create_app
from model_runtime.dataplane import DataPlane
from model_runtime.events.batches import Batches
from model_runtime.events.entry import LambdaEntry
from model_runtime.events.jobs import Jobs
from model_runtime.events.worker import Worker
from tests.unit.model_runtime.events.conftest import BUCKET
from tests.unit.model_runtime.events.in_memory import MemoryQueue, MemoryStore, s3_event, sqs_event


def _api_event(method: str, path: str, body: Any = None) -> dict[str, Any]:
    """An API Gateway REST API proxy event (payload format 1.0)."""
    headers = {
        "Content-Type": "application/json",
        "Host": "abc.execute-api.us-east-1.amazonaws.com",
    }
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc",
            "httpMethod": method,
            "identity": {"sourceIp": "192.0.2.10"},
            "path": f"/prod{path}",
            "protocol": "HTTP/1.1",
            "requestId": "c6af9ac6",
            "resourcePath": "/{proxy+}",
            "stage": "prod",
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


@pytest.fixture
def entry(plane: DataPlane, jobs: Jobs, worker: Worker, batches: Batches) -> Iterator[LambdaEntry]:
    entry = LambdaEntry(create_app(plane, jobs=jobs), worker, batches)
    yield entry
    entry.close()


def _image_body(images: np.ndarray) -> dict[str, Any]:
    tensor = {
        "name": "image",
        "shape": list(images.shape),
        "datatype": "FP32",
        "data": images.ravel().tolist(),
    }
    return {"inputs": [tensor]}


def test_http_sqs_and_s3_events_go_where_they_belong(
    entry: LambdaEntry, store: MemoryStore, queue: MemoryQueue, tiny_inputs: np.ndarray
) -> None:
    submitted = entry(
        _api_event("POST", "/v2/models/tiny/jobs", _image_body(tiny_inputs[:1])), None
    )
    assert submitted["statusCode"] == 202, submitted
    job = json.loads(submitted["body"])
    answer = entry(sqs_event(queue.sent[0][1]), None)
    assert answer == {"batchItemFailures": []}
    # HTTP again after an SQS event: the same loop still serves the app.
    status = entry(_api_event("GET", job["status_url"]), None)
    assert status["statusCode"] == 200 and json.loads(status["body"])["status"] == "succeeded"
    key = "batches/tiny/in/my file!.jsonl"
    store.put(BUCKET, key, json.dumps({"image": tiny_inputs[0].tolist()}).encode() + b"\n")
    encoded = "batches/tiny/in/my+file%21.jsonl"  # as S3 sends keys in events
    assert entry(s3_event(BUCKET, encoded, store.etag(BUCKET, key), 10), None) is None
    summary = store.json(BUCKET, "batches/tiny/out/my file!.summary.json")
    assert (summary["lines"], summary["succeeded"]) == (1, 1)
    infer = entry(_api_event("POST", "/v2/models/tiny/infer", _image_body(tiny_inputs[:1])), None)
    assert infer["statusCode"] == 200


def test_events_for_what_is_not_enabled_raise(plane: DataPlane, tiny_inputs: np.ndarray) -> None:
    entry = LambdaEntry(create_app(plane))
    try:
        with pytest.raises(RuntimeError, match="jobs are not enabled"):
            entry(sqs_event("{}"), None)
        with pytest.raises(RuntimeError, match="batches are not enabled"):
            entry(s3_event(BUCKET, "batches/tiny/in/a.jsonl", "e", 1), None)
        submit = entry(
            _api_event("POST", "/v2/models/tiny/jobs", _image_body(tiny_inputs[:1])), None
        )
        assert submit["statusCode"] == 404
        assert json.loads(submit["body"]) == {"error": "jobs are not enabled for model 'tiny'"}
    finally:
        entry.close()
