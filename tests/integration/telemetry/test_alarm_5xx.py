"""The 5xx-rate alarm on real LocalStack, from the handler's own EMF lines: a one-model
stack whose test-only entry point makes the engine raise (so every prediction answers 500
and its EMF line says status_5xx 1), predictions through API Gateway, then the metrics in
LocalStack's CloudWatch and the alarm in ALARM.

LocalStack extracts no metrics from EMF lines; the executor plugin publishes them in
CloudWatch's place (plugins/localstack-executor, emf.py). The alarm is a plain one (the
Average of status_5xx over the period), which LocalStack evaluates about once a period
(the local stack's monitoring: 60 s x 1)."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.stack_loader import load_stack
from localdev.deploy import down, up
from stacks.schema import LambdaConfig, ModelConfig, StackConfig
from tests.support.deploy import aws, infer_body, stage_root
from tests.support.tiny_model import tiny_images

STACK = "t-alarm5xx"
ALARM = f"inferstack-{STACK}-digits-5xx-rate"
BY_MODEL = [{"Name": "model", "Value": "digits"}]
REQUESTS = 3
# One evaluation after the datapoints (60 s), with room for a slow machine.
ALARM_WAIT_S = 150.0
FAILING_HANDLER = textwrap.dedent(
    """
    from functions import production
    from model_runtime.errors import InferenceError


    def _fail(feed, names):
        raise InferenceError("injected fault: the engine raised")


    for engine in production.app.state.dataplane.engines.values():
        engine.run = _fail
    handler = production.handler
    """
)


@dataclass(frozen=True)
class Failed:
    statuses: list[int]
    sent_at: float  # time.monotonic() after the last request
    started: datetime  # before the first request


@pytest.fixture(scope="module")
def failed(
    endpoint: str, digits_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Failed]:
    function = LambdaConfig(memory_mb=1024, timeout_s=30)
    config: StackConfig = load_stack("local").model_copy(
        update={"models": [ModelConfig(name="digits", delivery="layer", lambda_=function)]}
    )
    root = stage_root(
        tmp_path_factory.mktemp(STACK) / "root",
        config,
        {"digits": digits_dir},
        handler=FAILING_HANDLER,
    )
    summary = up(STACK, config=config, root=root)
    try:
        body = infer_body(tiny_images(1))
        started = datetime.now(UTC)
        with httpx.Client(base_url=str(summary.outputs["url"]), timeout=120.0) as http:
            statuses = [
                http.post("/v2/models/digits/infer", json=body).status_code for _ in range(REQUESTS)
            ]
        yield Failed(statuses, time.monotonic(), started)
    finally:
        down(STACK, root=root)


def _until(what: str, check: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(1.0)


def test_the_emf_metrics_reach_cloudwatch(failed: Failed, endpoint: str) -> None:
    assert failed.statuses == [500] * REQUESTS
    cloudwatch = aws("cloudwatch", endpoint)

    def statistic(name: str, dimensions: list[dict[str, str]], stat: str) -> float | None:
        # From this test's own first request: the session's LocalStack also holds the
        # digits metrics of the tests before it.
        end = datetime.now(UTC) + timedelta(minutes=1)
        points = cloudwatch.get_metric_statistics(
            Namespace="inferstack", MetricName=name, Dimensions=dimensions,
            StartTime=failed.started - timedelta(seconds=1), EndTime=end, Period=600,
            Statistics=[stat],
        )["Datapoints"]  # fmt: skip
        return float(points[0][stat]) if points else None

    def sums() -> dict[str, float | None] | None:
        found = {
            name: statistic(name, BY_MODEL, "Sum")
            for name in ("requests", "status_2xx", "status_4xx", "status_5xx")
        }
        return found if (found["requests"] or 0) >= REQUESTS else None

    assert _until("the inferstack metrics in CloudWatch", sums, 30.0) == {
        "requests": REQUESTS,
        "status_2xx": 0,
        "status_4xx": 0,
        "status_5xx": REQUESTS,
    }
    assert statistic("status_5xx", BY_MODEL, "Average") == 1.0  # what the alarm reads
    # The plugin publishes the smallest dimension set only (LocalStack matches a query's
    # dimensions as a subset: [model, version] would count twice in a query by model).
    # Other tests of the session publish for their own models: look at this one's only.
    listed = cloudwatch.list_metrics(Namespace="inferstack", MetricName="status_5xx")
    ours = [m["Dimensions"] for m in listed["Metrics"] if BY_MODEL[0] in m["Dimensions"]]
    assert ours == [BY_MODEL]


def test_the_5xx_rate_alarm_goes_to_alarm(failed: Failed, endpoint: str) -> None:
    cloudwatch = aws("cloudwatch", endpoint)

    def state() -> str:
        (alarm,) = cloudwatch.describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]
        return str(alarm["StateValue"])

    _until(f"{ALARM} in ALARM", lambda: state() == "ALARM", ALARM_WAIT_S)
    print(f"{ALARM} in ALARM {time.monotonic() - failed.sent_at:.0f} s after the requests")
