"""EMF lines: every declared metric has a value, in the shared namespace and dimension
sets; one status metric; the init breakdown once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from model_runtime.telemetry.coldstart import ColdStart
from model_runtime.telemetry.emf import DIMENSIONS, NAMESPACE, EmfWriter, status_metric
from model_runtime.telemetry.record import RequestRecord
from model_runtime.telemetry.stages import StageTimes

INIT = {
    "init_imports_ms",
    "init_artifact_ms",
    "init_session_ms",
    "init_first_inference_ms",
    "init_total_ms",
}


def _times(**values: Any) -> StageTimes:
    times = StageTimes()
    for name, value in values.items():
        setattr(times, name, value)
    return times


def _record(status: int = 200, times: StageTimes | None = None) -> RequestRecord:
    full = _times(decode_ms=0.1, preprocess_ms=0.2, infer_ms=1.5, encode_ms=0.3, batch_size=4)
    return RequestRecord("tiny", "3", status, 2.5, 1234, times or full, "req-1")


def _parse(line: str) -> dict[str, Any]:
    assert line.endswith("\n") and "\n" not in line[:-1]
    document: dict[str, Any] = json.loads(line)
    return document


def _declared(document: dict[str, Any]) -> dict[str, str]:
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE
    assert directive["Dimensions"] == DIMENSIONS == [["model"], ["model", "version"]]
    return {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]}


def test_a_request_line_has_every_metric_and_the_log_fields() -> None:
    document = _parse(EmfWriter(clock=lambda: 1700000000.123).line(_record()))
    declared = _declared(document)
    assert declared == {
        "latency_ms": "Milliseconds",
        "decode_ms": "Milliseconds",
        "preprocess_ms": "Milliseconds",
        "infer_ms": "Milliseconds",
        "encode_ms": "Milliseconds",
        "batch_size": "Count",
        "payload_bytes": "Bytes",
        "requests": "Count",
        "status_2xx": "Count",
        "status_4xx": "Count",
        "status_5xx": "Count",
    }
    assert document["_aws"]["Timestamp"] == 1700000000123
    assert {name: document[name] for name in declared} == {
        "latency_ms": 2.5,
        "decode_ms": 0.1,
        "preprocess_ms": 0.2,
        "infer_ms": 1.5,
        "encode_ms": 0.3,
        "batch_size": 4,
        "payload_bytes": 1234,
        "requests": 1,
        "status_2xx": 1,
        "status_4xx": 0,
        "status_5xx": 0,
    }
    assert (document["model"], document["version"]) == ("tiny", "3")
    assert (document["request_id"], document["status"]) == ("req-1", 200)


def test_stages_a_failed_request_did_not_reach_are_not_declared() -> None:
    document = _parse(EmfWriter().line(_record(400, _times(decode_ms=0.2))))
    assert set(_declared(document)) == {
        "latency_ms",
        "decode_ms",
        "payload_bytes",
        "requests",
        "status_2xx",
        "status_4xx",
        "status_5xx",
    }
    assert "infer_ms" not in document


@pytest.mark.parametrize(
    ("status", "metric"),
    [(200, "status_2xx"), (204, "status_2xx"), (404, "status_4xx"), (413, "status_4xx"),
     (500, "status_5xx"), (503, "status_5xx"), (302, "status_5xx")],
)  # fmt: skip
def test_status_metric(status: int, metric: str) -> None:
    assert status_metric(status) == metric


@pytest.mark.parametrize("status", [200, 404, 500])
def test_a_line_counts_its_status_class_1_and_the_others_0(status: int) -> None:
    document = _parse(EmfWriter().line(_record(status)))
    counts = {name: document[name] for name in ("status_2xx", "status_4xx", "status_5xx")}
    assert counts == {name: int(name == status_metric(status)) for name in counts}
    assert sum(counts.values()) == document["requests"] == 1


def test_the_init_breakdown_rides_on_the_first_request_that_ran_the_model() -> None:
    cold_start = ColdStart(started=0.0)
    cold_start.phases.update({"imports": 300.0, "artifact": 50.0, "session": 110.0})
    lines: list[str] = []
    writer = EmfWriter(cold_start, write=lines.append)
    writer(_record(400, _times(decode_ms=0.2)))  # failed before the model ran
    writer(_record())
    writer(_record())
    first, second, third = (_parse(line) for line in lines)
    assert not INIT & set(first)
    assert set(_declared(second)) >= INIT
    assert {name: second[name] for name in INIT} == {
        "init_imports_ms": 300.0,
        "init_artifact_ms": 50.0,
        "init_session_ms": 110.0,
        "init_first_inference_ms": 1.5,
        "init_total_ms": 461.5,
    }
    assert not INIT & set(third)
