"""The Lambda direct infer path answers exactly as the app does through Mangum, or leaves
the request to it: every event below goes both ways and the answers are compared whole
(status, headers, body), with the telemetry each path recorded."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_runtime.app import create_app
from model_runtime.backends.onnxruntime_backend import create_session
from model_runtime.engine import Engine
from model_runtime.events.direct_infer import _run_inline
from model_runtime.events.entry import LambdaEntry
from model_runtime.protocol import InferenceRequest
from model_runtime.telemetry.record import RequestRecord
from tests.support.tiny_model import MAX_BATCH_SIZE, save_double_model, tiny_images

INFER = "/v2/models/tiny/infer"
MAX_BODY_BYTES = 200_000  # over a batch of MAX_BATCH_SIZE + 1 as JSON
ORIGIN = "https://app.example.com"
CONTEXT = SimpleNamespace(aws_request_id="8476a536-e9f4-11e8-9739-2dfe598c3fcd")


def _tensor(batch: int = 1, nested: bool = False, **overrides: Any) -> dict[str, Any]:
    images = tiny_images(batch)
    data = images.tolist() if nested else images.ravel().tolist()
    tensor = {"name": "image", "shape": list(images.shape), "datatype": "FP32", "data": data}
    return tensor | overrides


def _body(*tensors: dict[str, Any], **fields: Any) -> str:
    return json.dumps({"inputs": list(tensors or [_tensor()]), **fields})


def rest_event(
    body: str | bytes | None,
    path: str = INFER,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    base64_body: bool = False,
    content_type: str | None = "application/json",
) -> dict[str, Any]:
    """An API Gateway REST API proxy event (payload format 1.0), as Lambda gets it."""
    headers = {"Host": "abc.execute-api.amazonaws.com"} | (headers or {})
    if content_type is not None:
        headers["Content-Type"] = content_type
    raw = body.encode() if isinstance(body, str) else body
    encoded = None
    if raw is not None:
        encoded = base64.b64encode(raw).decode() if base64_body else raw.decode("latin-1")
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "httpMethod": method,
            "identity": {"sourceIp": "192.0.2.10"},
            "path": f"/prod{path}",
            "requestId": "c6af9ac6",
            "resourcePath": "/{proxy+}",
            "stage": "prod",
        },
        "body": encoded,
        "isBase64Encoded": base64_body,
    }


def http_api_event(body: str, path: str = INFER) -> dict[str, Any]:
    """An API Gateway HTTP API event (payload format 2.0)."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "abc.execute-api.amazonaws.com"},
        "requestContext": {
            "http": {"method": "POST", "path": path, "sourceIp": "192.0.2.10"},
            "requestId": "JKJaXmPLvHcESHA=",
            "stage": "$default",
        },
        "body": body,
        "isBase64Encoded": False,
    }


class Recorded:
    """A telemetry sink that keeps the records."""

    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def __call__(self, record: RequestRecord) -> None:
        self.records.append(record)

    def pop(self) -> list[tuple[Any, ...]]:
        """The records since the last pop, without their timings' values."""
        records = [
            (
                record.model,
                record.version,
                record.status,
                record.payload_bytes,
                record.request_id,
                sorted(record.times.measured()),
                record.times.batch_size,
            )
            for record in self.records
        ]
        self.records.clear()
        return records


def _entry(engine: Engine, **options: Any) -> tuple[LambdaEntry, Recorded]:
    sink = Recorded()
    return LambdaEntry(create_app([engine], telemetry=sink, **options)), sink


@pytest.fixture
def entry(tiny_engine: Engine) -> Iterator[tuple[LambdaEntry, Recorded]]:
    made = _entry(tiny_engine, max_body_bytes=MAX_BODY_BYTES)
    yield made
    made[0].close()


def _both_ways(entry: LambdaEntry, sink: Recorded, event: dict[str, Any]) -> dict[str, Any]:
    """The direct answer, after checking it against the app's; records compared too."""
    direct = entry.direct(event, CONTEXT)
    assert direct is not None, "the direct path left a plain request to the app"
    direct_record = sink.pop()
    reference = entry.http(event, CONTEXT)
    assert direct == reference
    assert direct_record == sink.pop()
    return direct


# The direct path answers these.
PLAIN = {
    "batch-1": rest_event(_body()),
    "batch-5-nested": rest_event(_body(_tensor(5, nested=True))),
    "id-and-parameters": rest_event(_body(id="r1", parameters={"trace": {"on": True}})),
    "one-output": rest_event(_body(outputs=[{"name": "label"}])),
    "versioned": rest_event(_body(), path="/v2/models/tiny/versions/1/infer"),
    "base64-body": rest_event(_body(), base64_body=True),
    "charset": rest_event(_body(), content_type="Application/JSON; charset=utf-8"),
    "no-content-type": rest_event(_body(), content_type=None),
    "empty-content-type": rest_event(_body(), content_type=""),
    "http-api": http_api_event(_body()),
    "unknown-model": rest_event(_body(), path="/v2/models/cats/infer"),
    "unknown-version": rest_event(_body(), path="/v2/models/tiny/versions/9/infer"),
    "shape-data-mismatch": rest_event(_body(_tensor(data=[0.5] * 63))),
    "wrong-rank": rest_event(_body(_tensor(shape=[1, 64], data=[0.5] * 64))),
    "wrong-datatype": rest_event(_body(_tensor(datatype="FP64"))),
    "strings": rest_event(_body(_tensor(data=["0.5"] * 64))),
    "ragged": rest_event(_body(_tensor(data=[[0.5] * 8] * 7 + [[0.5] * 7]))),
    "empty-batch": rest_event(_body(_tensor(shape=[0, 1, 8, 8], data=[]))),
    "batch-limit": rest_event(_body(_tensor(MAX_BATCH_SIZE + 1))),
    "unknown-input": rest_event(_body(_tensor(name="pixels"))),
    "duplicate-input": rest_event(_body(_tensor(), _tensor())),
    "unknown-output": rest_event(_body(outputs=[{"name": "logits"}])),
    "duplicate-output": rest_event(_body(outputs=[{"name": "label"}] * 2)),
    "binary-extension": rest_event(_body(_tensor(parameters={"binary_data_size": 256}))),
    "non-finite-output": rest_event(_body(_tensor(data=[3e38] * 64))),
    "nan-input": rest_event(_body(_tensor(data=[float("nan")] + [0.5] * 63))),
    "body-over-the-limit": rest_event(_body() + " " * MAX_BODY_BYTES),
    "declared-over-the-limit": rest_event(
        _body(), headers={"Content-Length": str(MAX_BODY_BYTES + 1)}
    ),
    "overflow-input": rest_event(
        '{"inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [1e400'
        + ", 0.5" * 63
        + "]}]}"
    ),
}


@pytest.mark.parametrize("event", PLAIN.values(), ids=PLAIN.keys())
def test_the_direct_answer_is_the_apps(
    entry: tuple[LambdaEntry, Recorded], event: dict[str, Any]
) -> None:
    _both_ways(*entry, event)


def test_the_entry_answers_plain_requests_directly(
    entry: tuple[LambdaEntry, Recorded], monkeypatch: pytest.MonkeyPatch
) -> None:
    lambda_entry, _ = entry

    def refused(event: Any, context: Any) -> Any:
        raise AssertionError("went through Mangum")

    monkeypatch.setattr(lambda_entry, "http", refused)
    answer = lambda_entry(rest_event(_body()), CONTEXT)
    assert answer["statusCode"] == 200
    assert {output["name"] for output in json.loads(answer["body"])["outputs"]} == {
        "probabilities",
        "label",
    }


# The app answers these: the direct path leaves them to it.
LEFT_TO_THE_APP = {
    "malformed-json": rest_event('{"inputs": ['),
    "empty-body": rest_event(""),
    "no-body": rest_event(None),
    "not-an-object": rest_event("[1, 2]"),
    "no-inputs": rest_event("{}"),
    "extra-field": rest_event(_body(extra=1)),
    "unknown-datatype": rest_event(_body(_tensor(datatype="FLOAT32"))),
    "negative-dim": rest_event(_body(_tensor(shape=[1, 1, 8, -8]))),
    "non-finite-parameters": rest_event(_body(parameters={"scale": [1.0, float("nan")]})),
    "invalid-utf8": rest_event(b'{"inputs": "\xff\xfe"}'),
    "utf8-bom": rest_event(b"\xef\xbb\xbf" + _body().encode()),
    "lone-surrogate": rest_event(_body(id="\ud800")),
    "text-plain": rest_event(_body(), content_type="text/plain"),
    "json-suffix": rest_event(_body(), content_type="application/vnd.x+json"),
    "get": rest_event(None, method="GET"),
    "put": rest_event(_body(), method="PUT"),
    "query-string": rest_event(_body(), query={"model_version": "1"}),
    "trailing-slash": rest_event(_body(), path=INFER + "/"),
    "empty-model": rest_event(_body(), path="/v2/models//infer"),
    "empty-version": rest_event(_body(), path="/v2/models/tiny/versions//infer"),
    "metadata": rest_event(None, path="/v2/models/tiny", method="GET"),
    "jobs": rest_event(_body(), path="/v2/models/tiny/jobs"),
    "deep-nesting": rest_event('{"inputs": ' + "[" * 5000 + "]" * 5000 + "}"),
}


@pytest.mark.parametrize("event", LEFT_TO_THE_APP.values(), ids=LEFT_TO_THE_APP.keys())
def test_what_the_direct_path_leaves_to_the_app(
    entry: tuple[LambdaEntry, Recorded], event: dict[str, Any]
) -> None:
    lambda_entry, sink = entry
    assert lambda_entry.direct(event, CONTEXT) is None
    assert not sink.records
    assert lambda_entry(event, CONTEXT) == lambda_entry.http(event, CONTEXT)


def test_events_that_are_not_api_gateway_are_left_alone(
    entry: tuple[LambdaEntry, Recorded],
) -> None:
    lambda_entry, _ = entry
    assert lambda_entry.direct({"anything": 1}, CONTEXT) is None
    alb = rest_event(_body()) | {"requestContext": {"elb": {"targetGroupArn": "arn"}}}
    del alb["resource"]
    assert lambda_entry.direct(alb, CONTEXT) is None


@pytest.mark.parametrize(
    "headers", [{"Origin": ORIGIN}, {"Origin": "https://evil.example"}, {}], ids=str
)
def test_cors_headers_are_the_apps(tiny_engine: Engine, headers: dict[str, str]) -> None:
    lambda_entry, sink = _entry(
        tiny_engine, cors_allow_origin=ORIGIN, max_body_bytes=MAX_BODY_BYTES
    )
    try:
        answer = _both_ways(lambda_entry, sink, rest_event(_body(), headers=headers))
        allowed = answer["headers"].get("access-control-allow-origin")
        assert allowed == (ORIGIN if headers.get("Origin") == ORIGIN else None)
        assert "Origin" in answer["headers"]["vary"]
        over = rest_event(_body() + " " * MAX_BODY_BYTES, headers=headers)
        assert _both_ways(lambda_entry, sink, over)["statusCode"] == 413
    finally:
        lambda_entry.close()


def test_an_origin_without_cors_gets_no_cors_headers(
    entry: tuple[LambdaEntry, Recorded],
) -> None:
    answer = _both_ways(*entry, rest_event(_body(), headers={"Origin": ORIGIN}))
    assert "access-control-allow-origin" not in answer["headers"]
    assert "vary" not in answer["headers"]


def test_a_backend_failure_is_the_same_500_logged_the_same(
    tiny_engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Engine(
        tiny_engine.manifest, create_session(save_double_model(tmp_path / "m.onnx")), tmp_path
    )
    lambda_entry, sink = _entry(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="inferstack"):
            answer = _both_ways(lambda_entry, sink, rest_event(_body()))
        assert answer["statusCode"] == 500
        failures = [r for r in caplog.records if r.message.startswith("inference failed")]
        assert len(failures) == 2  # one per path
    finally:
        lambda_entry.close()


def test_an_unexpected_exception_is_the_apps_500(
    entry: tuple[LambdaEntry, Recorded], monkeypatch: pytest.MonkeyPatch
) -> None:
    lambda_entry, sink = entry
    plane = lambda_entry.app.state.dataplane

    def bug(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr(plane, "infer_inline", bug)
    answer = _both_ways(lambda_entry, sink, rest_event(_body()))
    assert answer["statusCode"] == 500
    assert json.loads(answer["body"]) == {"error": "internal error; see the server log"}


def test_a_sink_that_fails_leaves_the_answer_as_the_app_does(
    tiny_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    failure = OSError("stdout is gone")

    def failing(record: RequestRecord) -> None:
        raise failure

    lambda_entry = LambdaEntry(create_app([tiny_engine], telemetry=failing))
    try:
        event = rest_event(_body())
        with caplog.at_level(logging.ERROR):
            direct = lambda_entry.direct(event, CONTEXT)
            assert [r.exc_info[1] for r in caplog.records if r.exc_info] == [failure]
            assert direct == lambda_entry.http(event, CONTEXT)
        assert direct is not None and direct["statusCode"] == 200
    finally:
        lambda_entry.close()


def test_without_telemetry_nothing_is_recorded(tiny_engine: Engine) -> None:
    lambda_entry = LambdaEntry(create_app([tiny_engine]))
    try:
        event = rest_event(_body())
        assert lambda_entry.direct(event, CONTEXT) == lambda_entry.http(event, CONTEXT)
    finally:
        lambda_entry.close()


# JSON values as Python's json writes them, NaN and Infinity included.
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["id", "inputs", "name", "x"]), children, max_size=3)
    ),
    max_leaves=12,
)
_TENSOR = st.builds(_tensor, st.integers(1, 3)) | st.fixed_dictionaries(
    {
        "name": st.sampled_from(["image", "image", ""]) | st.text(max_size=3),
        "shape": st.lists(st.integers(0, 4), max_size=4)
        | st.lists(st.integers(-1, 4) | st.floats(0, 4) | st.text(max_size=2), max_size=3),
        "datatype": st.sampled_from(["FP32", "FP32", "INT64", "BYTES", "BOOL", "FP16", "FP"]),
        "data": st.lists(_JSON, max_size=4),
    },
    optional={"parameters": st.dictionaries(st.text(max_size=2), _JSON, max_size=2)},
)
_OUTPUTS = st.lists(
    st.fixed_dictionaries({"name": st.sampled_from(["label", "probabilities", "logits"])}),
    max_size=2,
)
_REQUEST = st.fixed_dictionaries(
    {"inputs": st.lists(_TENSOR, min_size=1, max_size=2)},
    optional={
        "id": st.text(max_size=3) | st.sampled_from([None, 1]),
        "parameters": st.dictionaries(st.text(max_size=2), _JSON, max_size=2),
        "outputs": _OUTPUTS | st.sampled_from([None, [{}], {}]),
    },
)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(request=_REQUEST | _JSON, indent=st.sampled_from([None, 1]))
def test_pydantic_reads_what_json_loads_reads_the_same_or_refuses_it(
    request: Any, indent: int | None
) -> None:
    """What the direct path relies on to parse with pydantic (the app parses with json)."""
    body = json.dumps(request, indent=indent).encode()
    try:
        direct = InferenceRequest.model_validate_json(body)
    except ValueError:
        return  # the app answers it
    reference = InferenceRequest.model_validate(json.loads(body))
    assert repr(direct) == repr(reference)  # repr: NaN != NaN


def test_numbers_parse_to_the_same_values() -> None:
    values = [0.1, 1 / 3, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -0.0, 2**64]
    values += [float(np.float32(0.1)), 2**63 + 1, -(2**70)]
    tensor = {"name": "x", "shape": [len(values)], "datatype": "FP64", "data": values}
    body = json.dumps({"inputs": [tensor]}).encode()
    direct = InferenceRequest.model_validate_json(body).inputs[0].data
    reference = json.loads(body)["inputs"][0]["data"]
    assert [(type(v), v) for v in direct] == [(type(v), v) for v in reference]


@pytest.fixture(scope="module")
def module_entry(tiny_engine: Engine) -> Iterator[tuple[LambdaEntry, Recorded]]:
    made = _entry(tiny_engine, max_body_bytes=MAX_BODY_BYTES)
    yield made
    made[0].close()


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(request=_REQUEST, base64_body=st.booleans())
def test_any_request_is_answered_as_the_app_answers_it(
    module_entry: tuple[LambdaEntry, Recorded], request: Any, base64_body: bool
) -> None:
    lambda_entry, sink = module_entry
    event = rest_event(json.dumps(request), base64_body=base64_body)
    direct = lambda_entry.direct(event, CONTEXT)
    direct_records = sink.pop()
    reference = lambda_entry.http(event, CONTEXT)
    reference_records = sink.pop()
    if direct is not None:
        assert direct == reference
        assert direct_records == reference_records


def test_a_request_path_that_waits_is_refused_not_left_half_run() -> None:
    async def inner() -> int:
        return 1

    async def awaits_a_coroutine() -> int:
        return await inner() + 1

    async def waits() -> None:
        await asyncio.sleep(0)

    assert _run_inline(awaits_a_coroutine()) == 2
    with pytest.raises(RuntimeError, match="awaited something that waits"):
        _run_inline(waits())
