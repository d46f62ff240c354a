"""Bad requests over real HTTP to uvicorn: a 4xx with {"error": ...} naming the problem."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from model_runtime.middleware import DEFAULT_MAX_BODY_BYTES


@pytest.fixture(scope="module")
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=30.0) as client:
        yield client


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    return str(body["error"])


def _image_request(batch: int = 1, value: str = "0.5") -> str:
    data = ", ".join([value] * (batch * 64))
    return (
        '{"inputs": [{"name": "image", "datatype": "FP32",'
        f' "shape": [{batch}, 1, 8, 8], "data": [{data}]}}]}}'
    )


def _post(
    http: httpx.Client, content: str | bytes, path: str = "/v2/models/digits/infer"
) -> httpx.Response:
    return http.post(path, content=content, headers={"content-type": "application/json"})


def test_a_good_request(http: httpx.Client) -> None:
    response = _post(http, _image_request(2))
    assert response.status_code == 200
    outputs = {output["name"]: output for output in response.json()["outputs"]}
    assert outputs["label"]["shape"] == [2]
    np.testing.assert_allclose(
        np.array(outputs["probabilities"]["data"]).reshape(2, 10).sum(axis=1), 1.0, rtol=1e-5
    )


def test_malformed_json(http: httpx.Client) -> None:
    assert _error(_post(http, '{"inputs": [}'), 400).startswith("malformed JSON")


def test_unknown_datatype(http: httpx.Client) -> None:
    body = json.loads(_image_request())
    body["inputs"][0]["datatype"] = "FLOAT"
    assert "inputs.0.datatype" in _error(_post(http, json.dumps(body)), 422)


def test_shape_data_mismatch(http: httpx.Client) -> None:
    body = _image_request().replace('"shape": [1, 1, 8, 8]', '"shape": [2, 1, 8, 8]')
    assert "needs 128 values, but data has 64" in _error(_post(http, body), 400)


def test_wrong_rank(http: httpx.Client) -> None:
    body = _image_request().replace('"shape": [1, 1, 8, 8]', '"shape": [1, 64]')
    assert "model expects rank 4" in _error(_post(http, body), 400)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite(http: httpx.Client, value: str) -> None:
    body = _image_request(value=value)
    assert "contains NaN or infinite values" in _error(_post(http, body), 400)


def test_empty_batch(http: httpx.Client) -> None:
    assert "empty batch" in _error(_post(http, _image_request(0)), 400)


def test_batch_over_the_limit(http: httpx.Client) -> None:
    assert "over this model's limit of 256" in _error(_post(http, _image_request(257)), 413)


def test_body_over_6_mb(http: httpx.Client) -> None:
    body = b'{"inputs": [' + b" " * DEFAULT_MAX_BODY_BYTES + b"]}"
    message = _error(_post(http, body), 413)
    assert message == f"request body is over the limit of {DEFAULT_MAX_BODY_BYTES} bytes"
    # The server is still fine afterwards.
    assert http.get("/v2/health/live").status_code == 200


def test_chunked_body_over_6_mb(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"inputs": ['
        for _ in range(7):
            yield b" " * (1024 * 1024)

    response = http.post(
        "/v2/models/digits/infer", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "request body is over the limit" in _error(response, 413)


def test_unknown_model(http: httpx.Client) -> None:
    message = _error(_post(http, _image_request(), path="/v2/models/cats/infer"), 404)
    assert message == "model 'cats' is not served here; served models: 'digits'"


def test_wrong_method(http: httpx.Client) -> None:
    response = http.get("/v2/models/digits/infer")
    assert _error(response, 405) == "method GET is not allowed on /v2/models/digits/infer"
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize("size", [DEFAULT_MAX_BODY_BYTES + 1, 3 * DEFAULT_MAX_BODY_BYTES])
def test_a_client_that_sends_the_whole_body_first_reads_the_413(server_url: str, size: int) -> None:
    """urllib writes the whole body before it reads a byte of the answer: the server must
    not close the connection under it (a reset instead of the 413)."""
    request = urllib.request.Request(
        f"{server_url}/v2/models/digits/infer",
        data=b"{" + b" " * (size - 2) + b"}",
        headers={"content-type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 413
    body = json.loads(caught.value.read())
    assert body == {"error": f"request body is over the limit of {DEFAULT_MAX_BODY_BYTES} bytes"}
