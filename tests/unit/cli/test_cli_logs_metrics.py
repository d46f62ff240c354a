"""`inferstack logs` and `inferstack metrics` against faked CloudWatch Logs and CloudWatch
clients and faked stack outputs (the `outputs` fixture): what is read, what is printed,
which source the metrics came from, and every user error as one line."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner, Result

from cli import deployment
from cli.app import app
from cli.logs import follow_events
from cli.metrics import Stats, emf_values, from_log_lines
from model_runtime.telemetry.emf import EmfWriter
from model_runtime.telemetry.record import RequestRecord
from model_runtime.telemetry.stages import StageTimes

GROUP = "/aws/lambda/inferstack-local-digits"


class NoGroup(Exception):
    pass


@dataclass
class FakeLogs:
    """filter_log_events over fixed events per group, `page` events a page."""

    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    page: int = 2
    calls: list[dict[str, Any]] = field(default_factory=list)
    exceptions: Any = field(
        default_factory=lambda: SimpleNamespace(ResourceNotFoundException=NoGroup)
    )

    def add(self, group: str, *messages: str) -> None:
        at = int(time.time() * 1000)
        found = self.events.setdefault(group, [])
        for message in messages:
            found.append(
                {"eventId": str(len(found)), "timestamp": at + len(found), "message": message}
            )

    def filter_log_events(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        if request["logGroupName"] not in self.events:
            raise NoGroup(request["logGroupName"])
        events = [
            e
            for e in self.events[request["logGroupName"]]
            if e["timestamp"] >= request["startTime"]
        ]
        offset = int(request.get("nextToken", 0))
        answer: dict[str, Any] = {"events": events[offset : offset + self.page]}
        if offset + self.page < len(events):
            answer["nextToken"] = str(offset + self.page)
        return answer


@dataclass
class FakeCloudWatch:
    """get_metric_data answering (model, metric, statistic) -> value; nothing else."""

    values: dict[tuple[str, str, str], float] = field(default_factory=dict)
    queries: list[dict[str, Any]] = field(default_factory=list)
    # LocalStack's answer to a pNN statistic: an InternalError.
    percentiles: bool = True

    def get_metric_data(self, **request: Any) -> dict[str, Any]:
        stats = {query["MetricStat"]["Stat"] for query in request["MetricDataQueries"]}
        if not self.percentiles and stats & {"p50", "p99"}:
            error = {"Error": {"Code": "InternalError", "Message": "'p50'"}}
            raise ClientError(error, "GetMetricData")  # type: ignore[arg-type]
        results = []
        for query in request["MetricDataQueries"]:
            self.queries.append(query)
            stat = query["MetricStat"]
            (dimension,) = stat["Metric"]["Dimensions"]
            key = (dimension["Value"], stat["Metric"]["MetricName"], stat["Stat"])
            value = self.values.get(key)
            results.append({"Id": query["Id"], "Values": [] if value is None else [value]})
        return {"MetricDataResults": results}


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch, outputs: dict[str, Any]) -> SimpleNamespace:
    fakes = SimpleNamespace(logs=FakeLogs(), cloudwatch=FakeCloudWatch())
    monkeypatch.setattr(deployment, "aws_client", lambda stack, service: getattr(fakes, service))
    return fakes


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _emf_line(status: int = 200, latency_ms: float = 5.0, model: str = "digits") -> str:
    times = StageTimes()
    times.decode_ms, times.preprocess_ms, times.infer_ms, times.encode_ms = 0.5, 0.1, 3.0, 0.4
    times.batch_size = 2
    record = RequestRecord(model, "1", status, latency_ms, 300, times, "r-1")
    return EmfWriter(write=lambda _: None).line(record)


def test_logs_prints_the_model_functions_lines(clients: SimpleNamespace) -> None:
    clients.logs.add(GROUP, "START RequestId: r-1", '{"level": "INFO"}', "END RequestId: r-1")
    result = invoke("logs", "--stack", "local", "--model", "digits")
    assert result.exit_code == 0, result.output
    assert [line.split(" ", 1)[1] for line in result.output.splitlines()] == [
        "START RequestId: r-1",
        '{"level": "INFO"}',
        "END RequestId: r-1",
    ]
    assert len(clients.logs.calls) == 2  # every page
    assert {call["logGroupName"] for call in clients.logs.calls} == {GROUP}


def test_logs_of_a_function_never_invoked_says_so(clients: SimpleNamespace) -> None:
    result = invoke("logs", "--stack", "local", "--model", "digits", "--minutes", "5")
    assert result.exit_code == 0
    assert f"no log lines in {GROUP} in the last 5 minutes" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model", "nope"],
            "error: stack local has no Lambda model 'nope'; its models: digits, digits-int8",
        ),
        (
            ["--model", "digits", "--minutes", "0"],
            "error: --minutes has value 0; allowed: a whole number >= 1",
        ),
    ],
)
def test_logs_user_errors_are_one_line(
    clients: SimpleNamespace, args: list[str], message: str
) -> None:
    result = invoke("logs", "--stack", "local", *args)
    assert result.exit_code == 1
    assert result.output.strip() == message


def test_an_undeployed_stack_is_one_line(clients: SimpleNamespace, outputs: dict[str, Any]) -> None:
    outputs.clear()
    for command in (["logs", "--model", "digits"], ["metrics"]):
        result = invoke(*command, "--stack", "local")
        assert result.exit_code == 1
        assert (
            result.output.strip()
            == "error: stack local is not deployed: run `inferstack up --stack local`"
        )


def test_an_unknown_stack_is_one_line_naming_the_known_ones(clients: SimpleNamespace) -> None:
    result = invoke("metrics", "--stack", "nope")
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "local" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_follow_prints_each_new_line_once() -> None:
    fake = FakeLogs(page=10)
    fake.add(GROUP, "one", "two")
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        fake.add(GROUP, f"new {len(slept)}")

    messages = [e["message"] for e in follow_events(fake, GROUP, 0, sleep=sleep, polls=3)]
    assert messages == ["one", "two", "new 1", "new 2"]
    assert slept == [2.0, 2.0]


def test_metrics_from_cloudwatch(clients: SimpleNamespace) -> None:
    values = clients.cloudwatch.values
    for metric, count, total in [("requests", 10, 10), ("status_2xx", 9, 9), ("status_5xx", 1, 1),
                                 ("latency_ms", 10, 52.0)]:  # fmt: skip
        values[("digits", metric, "SampleCount")] = count
        values[("digits", metric, "Sum")] = total
        values[("digits", metric, "Maximum")] = total / count * 2
    values[("digits", "latency_ms", "p50")] = 4.5
    values[("digits", "latency_ms", "p99")] = 9.75
    result = invoke("metrics", "--stack", "local", "--minutes", "30")
    assert result.exit_code == 0, result.output
    assert "source: CloudWatch metrics (namespace inferstack, dimension model)" in result.output
    latency = next(line for line in result.output.splitlines() if "latency_ms" in line)
    cells = [cell.strip() for cell in latency.split("│")[1:-1]]
    assert cells == ["latency_ms", "10", "", "5.2", "4.5", "9.75", "10.4"]
    assert "5xx rate 10.0 %" in result.output
    assert "digits-int8 (inferstack-local-d8): no requests in the last 30 minutes" in result.output
    queries = clients.cloudwatch.queries
    assert {q["MetricStat"]["Metric"]["Namespace"] for q in queries} == {"inferstack"}
    assert {q["MetricStat"]["Period"] for q in queries} == {1800}
    assert clients.logs.calls == []


def test_metrics_without_percentiles_show_a_dash(clients: SimpleNamespace) -> None:
    clients.cloudwatch.percentiles = False
    values = clients.cloudwatch.values
    values.update({("digits", "latency_ms", "SampleCount"): 2, ("digits", "latency_ms", "Sum"): 9.0,
                   ("digits", "latency_ms", "Maximum"): 6.0})  # fmt: skip
    result = invoke("metrics", "--stack", "local")
    assert result.exit_code == 0, result.output
    assert "CloudWatch gave no percentiles (InternalError): p50, p99 are -" in result.output
    latency = next(line for line in result.output.splitlines() if "latency_ms" in line)
    cells = [cell.strip() for cell in latency.split("│")[1:-1]]
    assert cells == ["latency_ms", "2", "", "4.5", "-", "-", "6"]


def test_metrics_fall_back_to_the_emf_lines_and_say_so(clients: SimpleNamespace) -> None:
    clients.logs.add(
        GROUP,
        "START RequestId: r-1",
        _emf_line(latency_ms=4.0),
        _emf_line(latency_ms=6.0),
        _emf_line(status=500, latency_ms=8.0),
        "END RequestId: r-1",
    )
    result = invoke("metrics", "--stack", "local")
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    groups = "/aws/lambda/inferstack-local-digits, /aws/lambda/inferstack-local-d8"
    assert f"source: the EMF lines in CloudWatch Logs ({groups}): " in output
    assert "CloudWatch has no inferstack metrics for these models in the last 15 minutes" in output
    assert "5xx rate 33.3 %" in output
    latency = next(line for line in result.output.splitlines() if "latency_ms" in line)
    cells = [cell.strip() for cell in latency.split("│")[1:-1]]
    assert cells == ["latency_ms", "3", "", "6", "6", "8", "8"]
    assert {call["logGroupName"] for call in clients.logs.calls} == {
        GROUP,
        "/aws/lambda/inferstack-local-d8",
    }


def test_log_lines_summarized_like_cloudwatch() -> None:
    lines = [_emf_line(latency_ms=float(ms)) for ms in range(1, 101)] + [
        "REPORT RequestId: x",
        "{not json",
    ]
    summary = from_log_lines(lines)
    latency = summary["digits"]["latency_ms"]
    assert latency == Stats(samples=100, total=5050.0, mean=50.5, p50=50.0, p99=99.0, maximum=100.0)
    assert summary["digits"]["requests"].total == 100
    assert summary["digits"]["batch_size"].mean == 2


def test_only_inferstack_emf_lines_count() -> None:
    other = json.loads(_emf_line())
    other["_aws"]["CloudWatchMetrics"][0]["Namespace"] = "someone-else"
    assert emf_values(json.dumps(other)) is None
    assert emf_values("[INFO] hello") is None
    parsed = emf_values(_emf_line())
    assert parsed is not None and parsed[0] == "digits" and parsed[1]["status_2xx"] == 1
