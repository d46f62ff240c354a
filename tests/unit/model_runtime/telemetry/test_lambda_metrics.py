"""The Lambda entry with metrics on: one EMF line on stdout per inference request of a
served model, with its stages, status class, size and request id; none otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from localdev.lambda_runner import api_gateway_event
from model_runtime.errors import InferenceError
from model_runtime.events.entry import LambdaEntry
from model_runtime.settings import RuntimeSettings
from tests.support.tiny_model import tiny_images

INFER = "/v2/models/tiny/infer"
STAGES = {"decode_ms", "preprocess_ms", "infer_ms", "encode_ms"}
STATUS = {"status_2xx", "status_4xx", "status_5xx"}
CONTEXT = SimpleNamespace(aws_request_id="8476a536-e9f4-11e8-9739-2dfe598c3fcd")


def _body(batch: int = 2, shape: list[int] | None = None) -> dict[str, Any]:
    images = tiny_images(batch)
    tensor = {
        "name": "image",
        "shape": shape or list(images.shape),
        "datatype": "FP32",
        "data": images.ravel().tolist(),
    }
    return {"inputs": [tensor]}


@pytest.fixture
def entry_for(tiny_dir: Path) -> Iterator[Callable[..., LambdaEntry]]:
    made: list[LambdaEntry] = []

    def make(**env: str) -> LambdaEntry:
        settings = RuntimeSettings.from_env({"MODEL_DIR": str(tiny_dir), **env})
        entry = LambdaEntry.from_settings(settings, None)
        made.append(entry)
        return entry

    yield make
    for entry in made:
        entry.close()


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def _metrics(line: dict[str, Any]) -> set[str]:
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["model"], ["model", "version"]]
    names = {metric["Name"] for metric in directive["Metrics"]}
    assert all(isinstance(line[name], int | float) for name in names)
    return names


def test_a_prediction_writes_every_metric_and_the_cold_start_once(
    entry_for: Callable[..., LambdaEntry], capsys: pytest.CaptureFixture[str]
) -> None:
    entry = entry_for(INFERSTACK_METRICS="on")
    event = api_gateway_event("POST", INFER, _body(batch=3))
    assert entry(event, CONTEXT)["statusCode"] == 200
    assert entry(event, CONTEXT)["statusCode"] == 200
    first, second = _lines(capsys)
    request = {"latency_ms", *STAGES, "batch_size", "payload_bytes", "requests", *STATUS}
    init = {"init_imports_ms", "init_artifact_ms", "init_session_ms",
            "init_first_inference_ms", "init_total_ms"}  # fmt: skip
    assert _metrics(first) == request | init
    assert _metrics(second) == request
    assert (first["model"], first["version"], first["status"]) == ("tiny", "1", 200)
    assert first["request_id"] == CONTEXT.aws_request_id
    assert first["batch_size"] == 3
    assert first["payload_bytes"] == len(json.dumps(_body(batch=3)))
    assert sum(second[stage] for stage in STAGES) <= second["latency_ms"]
    assert first["init_first_inference_ms"] == first["infer_ms"]
    assert first["init_artifact_ms"] > 0 and first["init_session_ms"] > 0
    assert "data" not in first and "inputs" not in first  # no request data


def test_a_bad_request_counts_as_4xx_with_the_stages_it_reached(
    entry_for: Callable[..., LambdaEntry], capsys: pytest.CaptureFixture[str]
) -> None:
    entry = entry_for(INFERSTACK_METRICS="on")
    bad_shape = api_gateway_event("POST", INFER, _body(batch=2, shape=[2, 1, 8, 9]))
    assert entry(bad_shape, CONTEXT)["statusCode"] == 400
    (line,) = _lines(capsys)
    assert _metrics(line) == {"latency_ms", "payload_bytes", "requests", *STATUS}
    assert (line["status_4xx"], line["status_2xx"], line["status_5xx"]) == (1, 0, 0)
    assert line["status"] == 400


def test_a_body_over_the_limit_counts_as_4xx(
    entry_for: Callable[..., LambdaEntry], capsys: pytest.CaptureFixture[str]
) -> None:
    entry = entry_for(INFERSTACK_METRICS="on", INFERSTACK_MAX_BODY_BYTES="100")
    assert entry(api_gateway_event("POST", INFER, _body()), CONTEXT)["statusCode"] == 413
    (line,) = _lines(capsys)
    assert line["status_4xx"] == 1 and line["status"] == 413


def test_a_model_failure_counts_as_5xx(
    entry_for: Callable[..., LambdaEntry],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entry = entry_for(INFERSTACK_METRICS="on")
    engine = entry.app.state.dataplane.engine("tiny")

    def broken(feed: Any, names: Any) -> dict[str, np.ndarray]:
        raise InferenceError("model 'tiny' failed: out of memory")

    monkeypatch.setattr(engine, "run", broken)
    assert entry(api_gateway_event("POST", INFER, _body()), CONTEXT)["statusCode"] == 500
    lines = [line for line in _lines(capsys) if "_aws" in line]
    (line,) = lines
    assert {"status_5xx", "decode_ms"} <= _metrics(line)
    assert (line["status_5xx"], line["status_2xx"], line["status_4xx"]) == (1, 0, 0)
    assert line["status"] == 500


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v2/models/nope/infer"), ("GET", "/v2/health/ready"),
     ("GET", "/v2/models/tiny"), ("POST", "/v2/models/tiny/versions/1/other")],
)  # fmt: skip
def test_no_line_for_what_is_not_an_inference_of_a_served_model(
    entry_for: Callable[..., LambdaEntry],
    capsys: pytest.CaptureFixture[str],
    method: str,
    path: str,
) -> None:
    entry = entry_for(INFERSTACK_METRICS="on")
    entry(api_gateway_event(method, path, _body() if method == "POST" else None), CONTEXT)
    assert _lines(capsys) == []


def test_the_versioned_route_is_recorded_too(
    entry_for: Callable[..., LambdaEntry], capsys: pytest.CaptureFixture[str]
) -> None:
    entry = entry_for(INFERSTACK_METRICS="on")
    event = api_gateway_event("POST", "/v2/models/tiny/versions/1/infer", _body())
    assert entry(event, CONTEXT)["statusCode"] == 200
    (line,) = _lines(capsys)
    assert line["version"] == "1" and line["status_2xx"] == 1


def test_metrics_off_writes_nothing(
    entry_for: Callable[..., LambdaEntry], capsys: pytest.CaptureFixture[str]
) -> None:
    entry = entry_for(INFERSTACK_METRICS="off")
    assert entry(api_gateway_event("POST", INFER, _body()), CONTEXT)["statusCode"] == 200
    assert capsys.readouterr().out == ""
