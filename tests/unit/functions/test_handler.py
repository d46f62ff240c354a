"""The Lambda entry point, driven with API Gateway REST (1.0) and HTTP API (2.0) events."""

from __future__ import annotations

import base64
import importlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model_runtime.engine import Engine
from model_runtime.middleware import DEFAULT_MAX_BODY_BYTES
from tests.support.tiny_model import MAX_BATCH_SIZE

INFER = "/v2/models/tiny/infer"
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
EventFactory = Callable[..., dict[str, Any]]


@dataclass
class LambdaContext:
    """The attributes of the context object the Python runtime passes to a handler."""

    function_name: str = "digits"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:digits"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
    log_group_name: str = "/aws/lambda/digits"
    log_stream_name: str = "2024/01/01/[$LATEST]abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture(scope="module")
def handler(tiny_dir: Path) -> Iterator[Handler]:
    """`functions.handler.handler`, imported (so initialized) with MODEL_DIR set."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODEL_DIR", str(tiny_dir))
        sys.modules.pop("functions.handler", None)
        module = importlib.import_module("functions.handler")
        yield module.handler
    sys.modules.pop("functions.handler", None)


def _encode(body: str | bytes | None, base64_encoded: bool) -> str | None:
    if body is None:
        return None
    raw = body.encode() if isinstance(body, str) else body
    return base64.b64encode(raw).decode() if base64_encoded else raw.decode()


@pytest.fixture
def rest_event() -> EventFactory:
    """An API Gateway REST API proxy event (payload format 1.0), stage `prod`."""

    def build(
        method: str, path: str, body: str | bytes | None = None, *, base64_encoded: bool = False
    ) -> dict[str, Any]:
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "Host": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "User-Agent": "python-requests/2.32",
            "X-Amzn-Trace-Id": "Root=1-5e66d96f-7491f09xmpl79d18acf3d050",
            "X-Forwarded-For": "192.0.2.10",
            "X-Forwarded-Port": "443",
            "X-Forwarded-Proto": "https",
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
                "apiId": "abcdef1234",
                "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "abcdef1234",
                "extendedRequestId": "JbHcxHm3oAMFkHQ=",
                "httpMethod": method,
                "identity": {
                    "accessKey": None,
                    "accountId": None,
                    "caller": None,
                    "cognitoIdentityId": None,
                    "cognitoIdentityPoolId": None,
                    "sourceIp": "192.0.2.10",
                    "user": None,
                    "userAgent": "python-requests/2.32",
                    "userArn": None,
                },
                "path": f"/prod{path}",
                "protocol": "HTTP/1.1",
                "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
                "requestTime": "09/Apr/2015:12:34:56 +0000",
                "requestTimeEpoch": 1428582896000,
                "resourceId": "roq9wj",
                "resourcePath": "/{proxy+}",
                "stage": "prod",
            },
            "body": _encode(body, base64_encoded),
            "isBase64Encoded": base64_encoded,
        }

    return build


@pytest.fixture
def http_event() -> EventFactory:
    """An API Gateway HTTP API event (payload format 2.0), `$default` stage."""

    def build(
        method: str, path: str, body: str | bytes | None = None, *, base64_encoded: bool = False
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": "",
            "headers": {
                "accept": "application/json",
                "content-type": "application/json",
                "host": "abcdef1234.execute-api.us-east-1.amazonaws.com",
                "user-agent": "python-requests/2.32",
                "x-amzn-trace-id": "Root=1-5e66d96f-7491f09xmpl79d18acf3d050",
                "x-forwarded-for": "192.0.2.10",
                "x-forwarded-port": "443",
                "x-forwarded-proto": "https",
            },
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abcdef1234",
                "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "abcdef1234",
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "192.0.2.10",
                    "userAgent": "python-requests/2.32",
                },
                "requestId": "JKJaXmPLvHcESHA=",
                "routeKey": "$default",
                "stage": "$default",
                "time": "10/Mar/2020:00:03:14 +0000",
                "timeEpoch": 1583798594638,
            },
            "isBase64Encoded": base64_encoded,
        }
        if body is not None:
            event["body"] = _encode(body, base64_encoded)
        return event

    return build


@pytest.fixture(params=["rest", "http"])
def make_event(
    request: pytest.FixtureRequest, rest_event: EventFactory, http_event: EventFactory
) -> EventFactory:
    return rest_event if request.param == "rest" else http_event


def _infer_body(images: np.ndarray, nested: bool = False) -> str:
    data = images.tolist() if nested else images.ravel().tolist()
    tensor = {"name": "image", "shape": list(images.shape), "datatype": "FP32", "data": data}
    return json.dumps({"id": "lambda-1", "inputs": [tensor]})


def _json_body(response: dict[str, Any]) -> Any:
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body)


def _error(response: dict[str, Any], status: int) -> str:
    assert response["statusCode"] == status, response["body"]
    assert response["headers"]["content-type"] == "application/json"
    body = _json_body(response)
    assert list(body) == ["error"]
    return str(body["error"])


@pytest.mark.parametrize("base64_encoded", [False, True], ids=["text-body", "base64-body"])
@pytest.mark.parametrize("batch", [1, 16])
def test_infer_matches_the_engine(
    handler: Handler,
    make_event: EventFactory,
    tiny_engine: Engine,
    tiny_inputs: np.ndarray,
    base64_encoded: bool,
    batch: int,
) -> None:
    images = tiny_inputs[:batch]
    event = make_event("POST", INFER, _infer_body(images), base64_encoded=base64_encoded)

    response = handler(event, LambdaContext())

    assert response["statusCode"] == 200, response["body"]
    assert response["headers"]["content-type"] == "application/json"
    result = _json_body(response)
    assert result["id"] == "lambda-1"
    outputs = {output["name"]: output for output in result["outputs"]}
    expected = tiny_engine.infer({"image": images})
    labels = np.array(outputs["label"]["data"])
    probabilities = np.array(outputs["probabilities"]["data"], np.float32).reshape(
        outputs["probabilities"]["shape"]
    )
    np.testing.assert_array_equal(labels, expected["label"])
    np.testing.assert_allclose(probabilities, expected["probabilities"], rtol=1e-6, atol=0)


def test_nested_data_gives_the_same_response(
    handler: Handler, make_event: EventFactory, tiny_inputs: np.ndarray
) -> None:
    images = tiny_inputs[:4]
    flat = handler(make_event("POST", INFER, _infer_body(images)), LambdaContext())
    nested = handler(make_event("POST", INFER, _infer_body(images, nested=True)), LambdaContext())
    assert _json_body(flat) == _json_body(nested)


def test_binary_body_that_is_not_utf8_json(handler: Handler, make_event: EventFactory) -> None:
    event = make_event("POST", INFER, b"\x89PNG\r\n\x1a\n\x00", base64_encoded=True)
    _error(handler(event, LambdaContext()), 400)


def test_health_and_metadata(handler: Handler, make_event: EventFactory) -> None:
    live = handler(make_event("GET", "/v2/health/live"), LambdaContext())
    assert live["statusCode"] == 200 and _json_body(live) == {"live": True}
    ready = handler(make_event("GET", "/v2/health/ready"), LambdaContext())
    assert _json_body(ready) == {"ready": True}
    metadata = _json_body(handler(make_event("GET", "/v2/models/tiny"), LambdaContext()))
    assert metadata["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]


def test_bad_requests(handler: Handler, make_event: EventFactory, tiny_inputs: np.ndarray) -> None:
    assert "malformed JSON" in _error(
        handler(make_event("POST", INFER, '{"inputs": ['), LambdaContext()), 400
    )
    assert "model 'cats' is not served here" in _error(
        handler(
            make_event("POST", "/v2/models/cats/infer", _infer_body(tiny_inputs[:1])),
            LambdaContext(),
        ),
        404,
    )
    assert "method GET is not allowed" in _error(
        handler(make_event("GET", INFER), LambdaContext()), 405
    )
    oversized = np.resize(tiny_inputs, (MAX_BATCH_SIZE + 1, 1, 8, 8))
    assert f"over this model's limit of {MAX_BATCH_SIZE}" in _error(
        handler(make_event("POST", INFER, _infer_body(oversized)), LambdaContext()), 413
    )
    wrong_rank = json.dumps(
        {"inputs": [{"name": "image", "shape": [64], "datatype": "FP32", "data": [0.0] * 64}]}
    )
    assert "model expects rank 4" in _error(
        handler(make_event("POST", INFER, wrong_rank), LambdaContext()), 400
    )


def test_body_over_6_mb(handler: Handler, make_event: EventFactory) -> None:
    body = '{"inputs": [' + " " * DEFAULT_MAX_BODY_BYTES + "]}"
    event = make_event("POST", INFER, body)
    message = _error(handler(event, LambdaContext()), 413)
    assert message == f"request body is over the limit of {DEFAULT_MAX_BODY_BYTES} bytes"


def test_the_stacks_jobs_environment_enables_jobs_and_batches(tiny_dir: Path) -> None:
    env = {
        "MODEL_DIR": str(tiny_dir),
        "INFERSTACK_JOBS_BUCKET": "inferstack-test-jobs",
        "INFERSTACK_JOBS_PREFIX": "jobs/tiny",
        "INFERSTACK_JOBS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/inferstack-test-tiny-jobs",
        "INFERSTACK_JOBS_MAX_RECEIVES": "4",
        "INFERSTACK_BATCH_PREFIX": "batches/tiny",
        "INFERSTACK_BATCH_CHUNK_LINES": "50",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        sys.modules.pop("functions.handler", None)
        try:
            module = importlib.import_module("functions.handler")
        finally:
            sys.modules.pop("functions.handler", None)
    entry = module.handler
    assert entry.worker is not None and entry.worker.jobs.settings.max_receives == 4
    assert entry.batches is not None and entry.batches.settings.chunk_lines == 50
    assert module.app is entry.app
    routes = {getattr(route, "path", "") for route in entry.app.routes}
    assert {"/v2/models/{model_name}/jobs", "/v2/models/{model_name}/jobs/{job_id}"} <= routes
    entry.close()


def test_an_sqs_event_without_jobs_is_refused(handler: Handler) -> None:
    event = {"Records": [{"eventSource": "aws:sqs", "messageId": "m", "body": "{}"}]}
    with pytest.raises(RuntimeError, match="jobs are not enabled for this function"):
        handler(event, LambdaContext())


def test_http_still_works_after_another_event_loop_ran(
    handler: Handler, make_event: EventFactory
) -> None:
    import asyncio

    asyncio.run(asyncio.sleep(0))  # leaves no current loop behind
    live = handler(make_event("GET", "/v2/health/live"), LambdaContext())
    assert live["statusCode"] == 200
