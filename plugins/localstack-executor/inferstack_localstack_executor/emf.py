"""A stand-in for CloudWatch's Embedded Metric Format extraction, which LocalStack lacks.

On AWS, CloudWatch Logs turns each EMF line a function writes (a JSON object with
``_aws.CloudWatchMetrics``) into metrics. LocalStack ships the lines to CloudWatch Logs
and stops there, so for each invocation's output we publish the metrics of its EMF lines
with ``PutMetricData``: the line's namespace, its dimension sets (but see ``_queryable``),
the values and units, at the line's timestamp. It runs on a worker thread after the
invocation returned (never on its path), and a line or a call that fails is logged, never
the invocation's failure.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

LOG = logging.getLogger(__name__)

# PutMetricData's limit on items per call.
_BATCH = 1000

# (namespace, MetricData items) -> None; raises what the CloudWatch client raises.
Put = Callable[[str, list[dict[str, Any]]], None]


def metric_data(line: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(namespace, PutMetricData item) for each metric of each directive and dimension set
    of an EMF line; nothing for any other line or a metric without a numeric value."""
    text = line.strip()
    if not text.startswith("{") or '"_aws"' not in text:
        return
    try:
        document = json.loads(text)
        meta = document["_aws"]
        stamp = datetime.fromtimestamp(int(meta["Timestamp"]) / 1000, UTC)
        directives = meta["CloudWatchMetrics"]
    except (ValueError, KeyError, TypeError):
        return
    for directive in directives:
        namespace = directive.get("Namespace")
        if not isinstance(namespace, str):
            continue
        for dimension_set in _queryable(directive.get("Dimensions", [])):
            dimensions = [{"Name": name, "Value": str(document[name])} for name in dimension_set
                          if name in document]  # fmt: skip
            if len(dimensions) != len(dimension_set):
                continue
            for metric in directive.get("Metrics", []):
                value = document.get(metric.get("Name"))
                if isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                item: dict[str, Any] = {
                    "MetricName": metric["Name"],
                    "Dimensions": dimensions,
                    "Timestamp": stamp,
                    "Value": float(value),
                }
                if metric.get("Unit"):
                    item["Unit"] = metric["Unit"]
                yield namespace, item


def _queryable(dimension_sets: list[list[str]]) -> list[list[str]]:
    """The dimension sets that contain no other of the directive's sets.

    LocalStack matches a query's dimensions as a subset of a datapoint's (SQL ``LIKE``),
    not exactly as CloudWatch does: the datapoints of ``[model, version]`` would also
    count in a query by ``[model]``, doubling its Sums and SampleCounts. So a set that
    contains another is left out; a query by it still finds that set's datapoints here.
    """
    sets = [set(names) for names in dimension_sets]
    return [
        names
        for names, own in zip(dimension_sets, sets, strict=True)
        if not any(other < own for other in sets)
    ]


def publish(output: str, put: Put) -> None:
    """Publish the metrics of every EMF line of an invocation's output, a call per
    namespace and batch of items."""
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for line in output.splitlines():
        for namespace, item in metric_data(line):
            by_namespace.setdefault(namespace, []).append(item)
    for namespace, items in by_namespace.items():
        for start in range(0, len(items), _BATCH):
            put(namespace, items[start : start + _BATCH])


def localstack_put(account_id: str, region: str) -> Put:
    """PutMetricData on LocalStack's own CloudWatch, through its internal client factory
    (as its Lambda service publishes the AWS/Lambda metrics)."""
    from localstack.aws.connect import connect_to

    client = connect_to(aws_access_key_id=account_id, region_name=region).cloudwatch

    def put(namespace: str, items: list[dict[str, Any]]) -> None:
        client.put_metric_data(Namespace=namespace, MetricData=items)

    return put


class Publisher:
    """One worker thread publishing invocations' EMF metrics in the order they came."""

    def __init__(self, put_for: Callable[[str, str], Put] = localstack_put) -> None:
        self._put_for = put_for
        self._queue: queue.SimpleQueue[tuple[str, str, str]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def submit(self, output: str | None, account_id: str, region: str) -> None:
        if not output or '"_aws"' not in output:
            return
        self._queue.put((output, account_id, region))
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._run, name="inferstack-emf", daemon=True
                )
                self._worker.start()

    def _run(self) -> None:
        while True:
            output, account_id, region = self._queue.get()
            try:
                publish(output, self._put_for(account_id, region))
            except Exception:  # a stand-in for CloudWatch: never the function's failure
                LOG.exception("Could not publish the EMF metrics of an invocation")
