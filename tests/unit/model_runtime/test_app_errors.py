"""The HTTP app: every bad request is a 4xx with {"error": "<what was wrong>"}."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from model_build.errors import ExportError
from model_runtime.answers import status_for
from model_runtime.app import create_app
from model_runtime.backends.onnxruntime_backend import create_session
from model_runtime.engine import Engine
from model_runtime.errors import (
    ArtifactError,
    ArtifactIntegrityError,
    BatchTooLarge,
    InferenceError,
    InferstackError,
    InvalidInput,
    MalformedRequest,
    ModelNotFound,
    ModelNotReady,
    PayloadTooLarge,
)
from model_runtime.middleware import DEFAULT_MAX_BODY_BYTES
from tests.support.error_cases import BAD_REQUESTS, image_input
from tests.support.tiny_model import save_double_model

INFER = "/v2/models/tiny/infer"


@pytest.fixture(scope="module")
def client(tiny_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app([tiny_engine]), raise_server_exceptions=False) as client:
        yield client


def _post(client: TestClient, body: Any, path: str = INFER, **kwargs: Any) -> httpx.Response:
    content = body if isinstance(body, str | bytes) else json.dumps(body)
    headers = kwargs.pop("headers", {"content-type": "application/json"})
    return client.post(path, content=content, headers=headers, **kwargs)


def _error(response: httpx.Response, status: int) -> str:
    """Assert the status and the error body's exact shape; return the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    assert isinstance(body["error"], str) and body["error"]
    return str(body["error"])


def test_infer_returns_the_engines_outputs(
    client: TestClient, tiny_engine: Engine, tiny_inputs: np.ndarray
) -> None:
    images = tiny_inputs[:5]
    body = {
        "id": "r1",
        "parameters": {"trace": {"on": True}},
        "inputs": [
            {"name": "image", "shape": [5, 1, 8, 8], "datatype": "FP32", "data": images.tolist()}
        ],
    }
    response = _post(client, body)

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["model_name"] == "tiny"
    assert result["model_version"] == "1"
    assert result["id"] == "r1"
    assert result["parameters"] == {"trace": {"on": True}}
    expected = tiny_engine.infer({"image": images})
    by_name = {output["name"]: output for output in result["outputs"]}
    assert by_name["probabilities"]["datatype"] == "FP32"
    assert by_name["probabilities"]["shape"] == [5, 10]
    np.testing.assert_array_equal(
        np.array(by_name["probabilities"]["data"], np.float32).reshape(5, 10),
        expected["probabilities"],
    )
    assert by_name["label"] == {
        "name": "label",
        "datatype": "INT64",
        "shape": [5],
        "data": expected["label"].tolist(),
    }


def test_flat_and_nested_requests_agree(client: TestClient) -> None:
    flat = _post(client, {"inputs": [image_input(3)]}).json()
    nested = _post(client, {"inputs": [image_input(3, nested=True)]}).json()
    assert flat == nested


def test_requested_output_only(client: TestClient) -> None:
    body = {"inputs": [image_input(2)], "outputs": [{"name": "label"}]}
    outputs = _post(client, body).json()["outputs"]
    assert [output["name"] for output in outputs] == ["label"]


def test_versioned_infer_route(client: TestClient) -> None:
    response = _post(client, {"inputs": [image_input()]}, path="/v2/models/tiny/versions/1/infer")
    assert response.status_code == 200


def test_json_without_content_type_is_accepted(client: TestClient) -> None:
    # tritonclient sends no Content-Type; Triton accepts that.
    response = _post(client, {"inputs": [image_input()]}, headers={})
    assert response.status_code == 200, response.text


def test_health_and_metadata(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models/tiny/ready").json() == {"name": "tiny", "ready": True}
    metadata = client.get("/v2/models/tiny").json()
    assert metadata["name"] == "tiny"
    assert metadata["versions"] == ["1"]
    assert metadata["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]
    assert client.get("/v2/models/tiny/versions/1").json() == metadata


@pytest.mark.parametrize(("body", "status", "fragment"), BAD_REQUESTS)
def test_bad_request(client: TestClient, body: Any, status: int, fragment: str) -> None:
    assert fragment in _error(_post(client, body), status)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_input(client: TestClient, token: str) -> None:
    data = ", ".join([token] + ["0.5"] * 63)
    tensor = f'{{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [{data}]}}'
    body = f'{{"inputs": [{tensor}]}}'
    message = _error(_post(client, body), 400)
    assert "input 'image' contains NaN or infinite values" in message


def test_non_finite_parameters_are_refused(client: TestClient) -> None:
    request = json.dumps({"inputs": [image_input()], "parameters": {"scale": [1.0, float("nan")]}})
    assert "NaN" in request  # Python's json writes (and reads) this non-standard token
    message = _error(_post(client, request), 422)
    assert message.startswith("invalid request: parameters:")


def test_invalid_utf8_body(client: TestClient) -> None:
    _error(_post(client, b'{"inputs": "\xff\xfe"}'), 400)


def test_non_json_content_type(client: TestClient) -> None:
    response = _post(client, {"inputs": [image_input()]}, headers={"content-type": "text/plain"})
    assert "invalid request: body" in _error(response, 422)


def test_body_over_6_mb(client: TestClient) -> None:
    body = b'{"inputs": [' + b" " * DEFAULT_MAX_BODY_BYTES + b"]}"
    message = _error(_post(client, body), 413)
    assert message == f"request body is over the limit of {DEFAULT_MAX_BODY_BYTES} bytes"


def test_streamed_body_over_the_limit(tiny_engine: Engine) -> None:
    app = create_app([tiny_engine], max_body_bytes=10_000)

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 1_000

    with TestClient(app, raise_server_exceptions=False) as client:
        # No Content-Length: the limit is enforced while the body streams in.
        response = client.post(
            INFER, content=chunks(), headers={"content-type": "application/json"}
        )
        message = _error(response, 413)
    assert message == "request body is over the limit of 10000 bytes"


def test_body_at_the_limit_is_read(tiny_engine: Engine) -> None:
    body = json.dumps({"inputs": [image_input()]})
    app = create_app([tiny_engine], max_body_bytes=len(body))
    with TestClient(app, raise_server_exceptions=False) as client:
        assert _post(client, body).status_code == 200
        _error(_post(client, body + " "), 413)


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/v2/models/nope/infer", "model 'nope' is not served here; served models: 'tiny'"),
        ("/v2/models/tiny/versions/9/infer", "model 'tiny' has no version '9'"),
    ],
)
def test_unknown_model(client: TestClient, path: str, fragment: str) -> None:
    assert fragment in _error(_post(client, {"inputs": [image_input()]}, path=path), 404)


@pytest.mark.parametrize(
    "path", ["/v2/models/nope", "/v2/models/nope/ready", "/v2/models/tiny/versions/2"]
)
def test_unknown_model_metadata(client: TestClient, path: str) -> None:
    _error(client.get(path), 404)


def test_unknown_route(client: TestClient) -> None:
    assert _error(client.get("/v1/models"), 404) == "no such route: GET /v1/models"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", INFER), ("PUT", INFER), ("DELETE", "/v2/health/live"), ("POST", "/v2/models/tiny")],
)
def test_wrong_method(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert _error(response, 405) == f"method {method} is not allowed on {path}"
    assert response.headers["allow"]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (PayloadTooLarge("x"), 413),
        (BatchTooLarge("x"), 413),
        (InvalidInput("x"), 400),
        (MalformedRequest("x"), 400),
        (ModelNotFound("x"), 404),
        (ModelNotReady("x"), 503),
        (InferenceError("x"), 500),
        (ArtifactError("x"), 500),
        (ArtifactIntegrityError("x"), 500),
        (ExportError("x"), 500),
        (InferstackError("x"), 500),
    ],
)
def test_status_for_each_error(error: InferstackError, status: int) -> None:
    assert status_for(error) == status


@pytest.fixture(scope="module")
def mismatched_engine(tiny_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The tiny model's manifest over another model's session: a broken artifact."""
    out = tmp_path_factory.mktemp("models")
    model = save_double_model(out / "model.onnx")
    return Engine(tiny_engine.manifest, create_session(model), out)


def test_backend_failure_is_a_500_with_a_json_body(
    mismatched_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(create_app([mismatched_engine]), raise_server_exceptions=False) as client:
        response = _post(client, {"inputs": [image_input()]})
    assert _error(response, 500).startswith("model 'tiny' failed:")
    assert "inference failed" in caplog.text


def test_unexpected_exception_is_a_500_with_a_json_body(tiny_engine: Engine) -> None:
    app = create_app([tiny_engine])

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret detail")

    with TestClient(app, raise_server_exceptions=False) as client:
        message = _error(client.get("/boom"), 500)
    assert message == "internal error; see the server log"


def test_cors_origin_is_allowed_only_when_configured(tiny_engine: Engine) -> None:
    """The stack sets CORS_ALLOW_ORIGIN when the API enables CORS; Lambda proxy responses
    must then carry the header themselves (API Gateway does not add it)."""
    from fastapi.testclient import TestClient

    from model_runtime.app import create_app

    origin = "https://app.example.com"
    with_cors = TestClient(create_app([tiny_engine], cors_allow_origin=origin))
    without = TestClient(create_app([tiny_engine]))
    headers = {"origin": origin}
    assert (
        with_cors.get("/v2/health/live", headers=headers).headers["access-control-allow-origin"]
        == origin
    )
    assert (
        "access-control-allow-origin" not in without.get("/v2/health/live", headers=headers).headers
    )
    other = with_cors.get("/v2/health/live", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
