"""The handler's telemetry on real LocalStack, read back from the function's CloudWatch
Logs group: an EMF line per inference request with every metric and the shared dimension
sets, the status class of each answer, the cold-start breakdown once, and that breakdown
against the cold start the runtime measured.

"Measured cold start" is what the runtime's REPORT line of the cold invocation says, not
what the handler times: `Init Duration` (the runtime's init: from its bootstrap starting to
the handler module imported, engines loaded) plus that invocation's `Duration` (the first
request, its first inference included). On AWS the same two fields are in the same line.
The breakdown (imports, artifact, session, first inference) must add up to it within 10 %.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.logs import read_events
from cli.metrics import from_cloudwatch, from_log_lines
from infra.stack_loader import load_stack
from localdev.deploy import down, up
from model_runtime.manifest import Manifest
from stacks.schema import LambdaConfig, ModelConfig, StackConfig
from tests.support.deploy import aws, infer_body, stage_root
from tests.support.tiny_model import tiny_images

STACK = "t-telemetry"
GROUP = f"/aws/lambda/inferstack-{STACK}-digits"
REQUEST = {"latency_ms", "decode_ms", "preprocess_ms", "infer_ms", "encode_ms", "batch_size",
           "payload_bytes", "requests"}  # fmt: skip
INIT = ("init_imports_ms", "init_artifact_ms", "init_session_ms", "init_first_inference_ms")
REPORT = re.compile(
    r"REPORT RequestId: (\S+)\tDuration: ([\d.]+) ms(?:.*?Init Duration: ([\d.]+) ms)?"
)


@dataclass(frozen=True)
class Invoked:
    version: str
    emf: list[dict[str, Any]]  # the EMF lines, oldest first
    reports: dict[str, tuple[float, float | None]]  # request id -> (Duration, Init Duration)
    messages: list[str]
    statuses: list[int]
    # Before the first request: the session's LocalStack may hold other tests' metrics
    # of a model named digits.
    started: datetime


@pytest.fixture(scope="module")
def invoked(
    endpoint: str, digits_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Invoked]:
    """A one-model stack deployed, four predictions and one bad request through API
    Gateway, and what the function's log group then holds."""
    function = LambdaConfig(memory_mb=1024, timeout_s=30)
    config: StackConfig = load_stack("local").model_copy(
        update={"models": [ModelConfig(name="digits", delivery="layer", lambda_=function)]}
    )
    root = stage_root(tmp_path_factory.mktemp(STACK) / "root", config, {"digits": digits_dir})
    summary = up(STACK, config=config, root=root)
    try:
        url = str(summary.outputs["url"])
        images = tiny_images(4)
        bad = infer_body(images[:2])
        bad["inputs"][0]["shape"] = [2, 1, 8, 9]
        started = datetime.now(UTC)
        with httpx.Client(base_url=url, timeout=120.0) as http:
            statuses = [
                http.post("/v2/models/digits/infer", json=infer_body(images[:batch])).status_code
                for batch in (1, 2, 3, 4)
            ]
            statuses.append(http.post("/v2/models/digits/infer", json=bad).status_code)
        messages = _messages(endpoint, wanted=len(statuses))
        emf = [json.loads(m) for m in messages if m.lstrip().startswith('{"_aws"')]
        reports = {
            found[1]: (float(found[2]), float(found[3]) if found[3] else None)
            for found in (REPORT.search(m) for m in messages)
            if found
        }
        version = Manifest.load(digits_dir).version
        yield Invoked(version, emf, reports, messages, statuses, started)
    finally:
        down(STACK, root=root)


def _messages(endpoint: str, wanted: int, timeout_s: float = 30.0) -> list[str]:
    """The group's messages once `wanted` EMF lines and REPORT lines are in (the runtime
    ships an invocation's logs after it returns)."""
    logs = aws("logs", endpoint)
    deadline = time.monotonic() + timeout_s
    while True:
        messages = [str(event["message"]) for event in read_events(logs, GROUP, 0)]
        emf = sum('"_aws"' in message for message in messages)
        reports = sum(message.startswith("REPORT") for message in messages)
        if (emf >= wanted and reports >= wanted) or time.monotonic() > deadline:
            return messages
        time.sleep(0.5)


def _declared(line: dict[str, Any]) -> set[str]:
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "inferstack"
    assert directive["Dimensions"] == [["model"], ["model", "version"]]
    names = {metric["Name"] for metric in directive["Metrics"]}
    assert all(isinstance(line[name], int | float) for name in names), line
    return names


def test_every_request_writes_its_metrics_with_the_dimensions(invoked: Invoked) -> None:
    assert invoked.statuses == [200, 200, 200, 200, 400]
    assert len(invoked.emf) == 5, invoked.messages
    for line in invoked.emf:
        assert (line["model"], line["version"]) == ("digits", invoked.version)
        assert line["request_id"] in invoked.reports  # the invocation's own id
    for line, batch in zip(invoked.emf[:4], (1, 2, 3, 4), strict=True):
        declared = _declared(line)
        assert REQUEST | {"status_2xx"} <= declared
        # Every line carries all three status metrics: its own class 1, the others 0.
        assert (line["status_2xx"], line["status_4xx"], line["status_5xx"]) == (1, 0, 0)
        assert line["batch_size"] == batch and line["status"] == 200
    bad = invoked.emf[4]
    assert {"latency_ms", "payload_bytes", "requests", "status_4xx"} <= _declared(bad)
    assert bad["status"] == 400 and "infer_ms" not in bad


def test_the_cold_start_breakdown_adds_up_to_the_measured_cold_start(invoked: Invoked) -> None:
    with_init = [line for line in invoked.emf if "init_total_ms" in line]
    assert len(with_init) == 1 and with_init[0] is invoked.emf[0]
    first = with_init[0]
    assert {*INIT, "init_total_ms"} <= _declared(first)
    duration, init_duration = invoked.reports[first["request_id"]]
    assert init_duration is not None, "the first prediction was not the cold invocation"
    measured = init_duration + duration
    breakdown = sum(first[name] for name in INIT)
    assert abs(first["init_total_ms"] - breakdown) < 0.01
    assert abs(breakdown - measured) <= 0.10 * measured, (
        f"breakdown {breakdown:.1f} ms vs measured {measured:.1f} ms "
        f"(Init Duration {init_duration} + Duration {duration}): "
        + ", ".join(f"{name} {first[name]}" for name in INIT)
    )
    print(
        f"\ncold start: measured {measured:.1f} ms (init {init_duration} + first {duration});"
        f" breakdown {breakdown:.1f} ms: " + ", ".join(f"{n} {first[n]}" for n in INIT)
    )


def test_metrics_table_source_on_localstack(invoked: Invoked, endpoint: str) -> None:
    """What `inferstack metrics` reads: CloudWatch's metrics when LocalStack extracts the
    EMF lines, else the lines themselves; the lines always give the right counts."""
    end = datetime.now(UTC) + timedelta(minutes=1)
    start = invoked.started - timedelta(seconds=1)
    from_metrics = from_cloudwatch(aws("cloudwatch", endpoint), ["digits"], start, end)
    # The executor plugin publishes an invocation's EMF metrics after it returned, as
    # CloudWatch does: the last of them may land a moment after its log lines.
    deadline = time.monotonic() + 15.0
    while from_metrics and time.monotonic() < deadline:
        if from_metrics["digits"]["requests"].total >= 5:
            break
        time.sleep(1.0)
        from_metrics = from_cloudwatch(aws("cloudwatch", endpoint), ["digits"], start, end)
    extracted = bool(from_metrics)
    print(f"\nLocalStack extracts EMF into CloudWatch metrics: {extracted}")
    from_lines = from_log_lines(
        str(e["message"]) for e in read_events(aws("logs", endpoint), GROUP, 0)
    )
    stats = from_lines["digits"]
    assert stats["requests"].total == 5
    assert stats["status_2xx"].total == 4 and stats["status_4xx"].total == 1
    assert stats["batch_size"].total == 10
    if extracted:
        assert from_metrics["digits"]["requests"].total == 5
