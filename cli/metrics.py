"""`inferstack metrics --stack S [--minutes 15]`: a table per Lambda model of the stack,
from the `inferstack` CloudWatch metrics the handler's EMF lines become; where CloudWatch
has none (no EMF extraction ran), from those EMF lines in CloudWatch Logs. The
output says which source it used."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.table import Table

from cli import deployment
from cli.console import console, note
from cli.logs import (
    MinutesOption,
    StackOption,
    check_minutes,
    deployed_functions,
    log_group,
    read_events,
)

NAMESPACE = "inferstack"
COUNTS = ("requests", "status_2xx", "status_4xx", "status_5xx")
DISTRIBUTIONS = (
    "latency_ms",
    "decode_ms",
    "preprocess_ms",
    "infer_ms",
    "encode_ms",
    "batch_size",
    "payload_bytes",
    "init_total_ms",
)
METRICS = COUNTS + DISTRIBUTIONS
STATISTICS = ("SampleCount", "Sum", "Maximum")
PERCENTILES = ("p50", "p99")


@dataclass(frozen=True)
class Stats:
    samples: int
    total: float
    mean: float
    p50: float | None
    p99: float | None
    maximum: float

    @classmethod
    def of(cls, values: list[float]) -> Stats:
        ordered = sorted(values)
        return cls(
            samples=len(ordered),
            total=sum(ordered),
            mean=sum(ordered) / len(ordered),
            p50=_rank(ordered, 0.50),
            p99=_rank(ordered, 0.99),
            maximum=ordered[-1],
        )


# model -> metric -> its statistics over the window
Summary = dict[str, dict[str, Stats]]


def _rank(ordered: list[float], quantile: float) -> float:
    """Nearest-rank percentile, as CloudWatch computes pNN from raw values."""
    return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]


def from_cloudwatch(client: Any, models: Iterable[str], start: datetime, end: datetime) -> Summary:
    """Each metric's statistics over the window, by the `model` dimension. Percentiles are
    asked apart: LocalStack's CloudWatch answers them with an InternalError (then p50 and
    p99 are shown as "-")."""
    from botocore.exceptions import ClientError

    names = list(models)
    found = _query(client, names, STATISTICS, start, end)
    if not found:
        return {}
    try:
        for key, by_statistic in _query(client, names, PERCENTILES, start, end).items():
            found.setdefault(key, {}).update(by_statistic)
    except ClientError as exc:
        note(f"CloudWatch gave no percentiles ({exc.response['Error']['Code']}): p50, p99 are -")
    summary: Summary = {}
    for (model, metric), by_statistic in found.items():
        stats = _combine(by_statistic)
        if stats is not None:
            summary.setdefault(model, {})[metric] = stats
    return summary


def _query(
    client: Any, models: list[str], statistics: tuple[str, ...], start: datetime, end: datetime
) -> dict[tuple[str, str], dict[str, list[float]]]:
    """(model, metric) -> statistic -> the window's datapoints, for those with any."""
    period = max(60, int((end - start).total_seconds()) // 60 * 60)
    queries: list[dict[str, Any]] = []
    keys: dict[str, tuple[str, str, str]] = {}
    for m, model in enumerate(models):
        for n, metric in enumerate(METRICS):
            for s, statistic in enumerate(statistics):
                query_id = f"q{m}_{n}_{s}"
                keys[query_id] = (model, metric, statistic)
                metric_id = {
                    "Namespace": NAMESPACE,
                    "MetricName": metric,
                    "Dimensions": [{"Name": "model", "Value": model}],
                }
                queries.append(
                    {
                        "Id": query_id,
                        "MetricStat": {"Metric": metric_id, "Period": period, "Stat": statistic},
                    }
                )
    found: dict[tuple[str, str], dict[str, list[float]]] = {}
    for chunk in range(0, len(queries), 500):  # get_metric_data's limit per call
        request: dict[str, Any] = {
            "MetricDataQueries": queries[chunk : chunk + 500],
            "StartTime": start,
            "EndTime": end,
        }
        while True:
            answer = client.get_metric_data(**request)
            for result in answer.get("MetricDataResults", []):
                if result.get("Values"):
                    model, metric, statistic = keys[result["Id"]]
                    values = found.setdefault((model, metric), {}).setdefault(statistic, [])
                    values.extend(float(value) for value in result["Values"])
            token = answer.get("NextToken")
            if not token:
                break
            request["NextToken"] = token
    return found


def _combine(by_statistic: dict[str, list[float]]) -> Stats | None:
    """One Stats from a window's datapoints (usually one; two when it straddles periods)."""
    samples = int(sum(by_statistic.get("SampleCount", [])))
    if not samples:
        return None
    total = sum(by_statistic.get("Sum", []))
    return Stats(
        samples=samples,
        total=total,
        mean=total / samples,
        # Across two periods the larger is an upper bound, not the window's percentile.
        p50=max(by_statistic.get("p50", []), default=None),
        p99=max(by_statistic.get("p99", []), default=None),
        maximum=max(by_statistic.get("Maximum", []), default=0.0),
    )


def emf_values(message: str) -> tuple[str, dict[str, float]] | None:
    """(model, metric values) of an EMF line; None for any other log line."""
    text = message.strip()
    if not text.startswith("{") or '"_aws"' not in text:
        return None
    try:
        document = json.loads(text)
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        names = [metric["Name"] for metric in directive["Metrics"]]
        if directive.get("Namespace") != NAMESPACE:
            return None
        return str(document["model"]), {name: float(document[name]) for name in names}
    except (ValueError, KeyError, TypeError):
        return None


def from_log_lines(messages: Iterable[str]) -> Summary:
    values: dict[str, dict[str, list[float]]] = {}
    for message in messages:
        parsed = emf_values(message)
        if parsed is None:
            continue
        model, metrics = parsed
        for name, value in metrics.items():
            values.setdefault(model, {}).setdefault(name, []).append(value)
    return {
        model: {name: Stats.of(samples) for name, samples in by_metric.items()}
        for model, by_metric in values.items()
    }


def model_table(model: str, function: str, stats: dict[str, Stats]) -> Table:
    table = Table(title=f"{model} ({function})", title_justify="left")
    for column in ("metric", "samples", "sum", "mean", "p50", "p99", "max"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for metric in METRICS:
        found = stats.get(metric)
        if found is None:
            continue
        if metric in COUNTS:
            table.add_row(metric, str(found.samples), _number(found.total), "", "", "", "")
            continue
        table.add_row(
            metric,
            str(found.samples),
            "",
            _number(found.mean),
            _number(found.p50),
            _number(found.p99),
            _number(found.maximum),
        )
    requests = stats.get("requests")
    errors = stats.get("status_5xx")
    if requests is not None and requests.total:
        rate = 100 * (errors.total if errors is not None else 0.0) / requests.total
        table.caption = f"5xx rate {rate:.1f} %"
    return table


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value == int(value) and abs(value) >= 100 else f"{value:.3g}"


def metrics(stack: StackOption, minutes: MinutesOption = 15) -> None:
    """Per-model request metrics of a deployed stack over the last minutes (default 15)."""
    check_minutes(minutes)
    functions = deployed_functions(stack)
    if not functions:
        note(f"stack {stack} has no Lambda models: nothing reports to CloudWatch")
        return
    end = datetime.now(UTC)
    start = end - timedelta(minutes=minutes)
    summary = from_cloudwatch(deployment.aws_client(stack, "cloudwatch"), functions, start, end)
    if summary:
        source = f"CloudWatch metrics (namespace {NAMESPACE}, dimension model)"
    else:
        logs = deployment.aws_client(stack, "logs")
        start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        summary = from_log_lines(
            str(event.get("message", ""))
            for function in functions.values()
            for event in read_events(logs, log_group(function), start_ms, end_ms)
        )
        groups = ", ".join(log_group(function) for function in functions.values())
        source = (
            f"the EMF lines in CloudWatch Logs ({groups}): CloudWatch has no {NAMESPACE}"
            f" metrics for these models in the last {minutes} minutes"
        )
    console.print(f"source: {source}", highlight=False, soft_wrap=True)
    for model, function in sorted(functions.items()):
        stats = summary.get(model)
        if not stats:
            console.print(f"{model} ({function}): no requests in the last {minutes} minutes")
            continue
        console.print(model_table(model, function, stats))
