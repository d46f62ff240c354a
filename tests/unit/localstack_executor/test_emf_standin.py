"""The executor's stand-in for CloudWatch's EMF extraction, without LocalStack: which
metrics an EMF line publishes, and that a failure never reaches the invocation."""

from __future__ import annotations

import importlib.util
import sys
import threading
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from localdev.localstack import manager
from model_runtime.telemetry.emf import EmfWriter
from model_runtime.telemetry.record import RequestRecord
from model_runtime.telemetry.stages import StageTimes

PACKAGE = manager.EXECUTOR_SOURCE / "inferstack_localstack_executor"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_executor_{name}", PACKAGE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


emf = _load("emf")


def _line(status: int = 500) -> str:
    record = RequestRecord(
        model="digits", version="7", status=status, latency_ms=2.5, payload_bytes=10,
        times=StageTimes(), request_id="r-1",
    )  # fmt: skip
    line: str = EmfWriter(clock=lambda: 1700000000.5).line(record)
    return line


def test_an_emf_line_publishes_each_metric_under_its_smallest_dimension_set() -> None:
    # [model, version] contains [model]: LocalStack would count its datapoints twice in
    # a query by model, so only [model] is published.
    items = list(emf.metric_data(_line()))
    assert {namespace for namespace, _ in items} == {"inferstack"}
    by_name = {item["MetricName"]: item for _, item in items}
    assert len(by_name) == len(items) == 6  # latency, payload, requests, three statuses
    assert {(name, item["Value"]) for name, item in by_name.items() if "status" in name} == {
        ("status_5xx", 1.0),
        ("status_2xx", 0.0),
        ("status_4xx", 0.0),
    }
    assert by_name["requests"]["Unit"] == "Count"
    assert by_name["latency_ms"]["Unit"] == "Milliseconds"
    assert by_name["requests"]["Dimensions"] == [{"Name": "model", "Value": "digits"}]
    stamps = {item["Timestamp"] for _, item in items}
    assert stamps == {datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)}


def test_dimension_sets_that_contain_no_other_are_each_published() -> None:
    line = (
        '{"_aws":{"Timestamp":0,"CloudWatchMetrics":[{"Namespace":"n",'
        '"Dimensions":[["a"],["b"],["a","b"],["c"]],"Metrics":[{"Name":"m"}]}]},'
        '"a":"1","b":"2","m":3}'
    )
    published = [[d["Name"] for d in item["Dimensions"]] for _, item in emf.metric_data(line)]
    assert published == [["a"], ["b"]]  # ["c"] has no value on the line
    assert all("Unit" not in item for _, item in emf.metric_data(line))


def test_other_lines_publish_nothing() -> None:
    for line in ("START RequestId: x", '{"level": "info"}', '{"_aws": 1', '{"_aws": {}}'):
        assert list(emf.metric_data(line)) == []


def test_an_invocations_output_is_one_call_per_namespace() -> None:
    calls: list[tuple[str, list[dict[str, Any]]]] = []
    output = f"START RequestId: r-1\n{_line()}{_line(200)}END RequestId: r-1\n"
    emf.publish(output, lambda namespace, items: calls.append((namespace, items)))
    ((namespace, items),) = calls
    assert namespace == "inferstack" and len(items) == 2 * 6


def test_the_publisher_works_off_the_invocation_and_survives_a_failing_call() -> None:
    done = threading.Event()
    calls: list[str] = []

    def put_for(account: str, region: str) -> Any:
        def put(namespace: str, items: list[dict[str, Any]]) -> None:
            calls.append(f"{account}/{region}/{namespace}")
            if len(calls) == 1:
                raise RuntimeError("CloudWatch is down")
            done.set()

        return put

    publisher = emf.Publisher(put_for)
    publisher.submit("no metrics here\n", "000000000000", "us-east-1")  # not queued
    publisher.submit(_line(), "000000000000", "us-east-1")  # fails: logged
    publisher.submit(_line(), "000000000000", "eu-west-1")
    assert done.wait(5)
    assert calls == ["000000000000/us-east-1/inferstack", "000000000000/eu-west-1/inferstack"]
