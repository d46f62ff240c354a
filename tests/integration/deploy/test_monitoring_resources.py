"""The monitoring component (infra/monitoring.py) realized by the in-process engine on real
LocalStack: one model's alarms, the alarm topic with its policy and an SQS subscription,
and the dashboard. A second `up` changes nothing, a third updates an alarm and the
dashboard in place, `down` leaves nothing behind.

What LocalStack community (2026.3) does with them, as these tests show:
- it evaluates a plain metric alarm (a MetricName and a Statistic): about every
  EvaluationPeriods x Period seconds, the first time when the alarm is put; the alarm
  goes to ALARM from `put_metric_data` values and publishes each state change to its
  SNS topic (ALARM and OK actions), which delivers to the subscribed queue;
- the 5xx rate is such a plain alarm (the Average of status_5xx) and fires too;
- it never evaluates a percentile alarm (`extended_statistic`, the p99 latency) or a
  metric-math one: they stay INSUFFICIENT_DATA;
- it does not extract Embedded Metric Format lines written to CloudWatch Logs into
  metrics;
- it stores dashboards (put, get, list, delete)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from botocore.exceptions import ClientError

from infra.monitoring import MonitoredFunction, Monitoring, MonitoringArgs
from localdev.deploy import Summary, down
from localdev.deploy.engine import deploy
from localdev.deploy.state import state_path
from stacks.schema import AlarmSubscription, MonitoringConfig
from tests.support.deploy import aws as client

STACK = "t-monitoring"
ACCOUNT = "000000000000"
MODEL = "m"
# LocalStack evaluates an alarm every EvaluationPeriods x Period seconds (here 60 s):
# the wait covers one evaluation after the datapoints, with room for a slow machine.
ALARM_WAIT_S = 150.0


@dataclass(frozen=True)
class Run:
    prefix: str
    queue_url: str
    queue_arn: str

    @property
    def function_name(self) -> str:
        return f"{self.prefix}-{MODEL}"

    def alarm(self, kind: str) -> str:
        return f"{self.function_name}-{kind}"


def _program(endpoint: str, run: Run, p99_ms: int) -> Callable[[], dict[str, Any]]:
    def run_program() -> dict[str, Any]:
        services = ("cloudwatch", "sns", "sts")
        provider = aws.Provider(
            "local",
            region="us-east-1",
            endpoints=[aws.ProviderEndpointArgs(**dict.fromkeys(services, endpoint))],
        )
        config = MonitoringConfig(
            evaluation_periods=1,
            subscriptions=[AlarmSubscription(protocol="sqs", endpoint=run.queue_arn)],
        )
        monitoring = Monitoring(
            run.prefix,
            MonitoringArgs(
                prefix=run.prefix,
                config=config,
                region="us-east-1",
                functions=[_function(run, p99_ms)],
            ),
            pulumi.ResourceOptions(providers=[provider]),
        )
        return {
            "topicArn": monitoring.topic.arn,
            "dashboard": monitoring.dashboard.dashboard_name,
            "dashboardArn": monitoring.dashboard.dashboard_arn,
            "alarmArns": {name: alarm.arn for name, alarm in monitoring.alarms.items()},
        }

    return run_program


def _function(run: Run, p99_ms: int) -> MonitoredFunction:
    return MonitoredFunction(model=MODEL, function_name=run.function_name, p99_ms=p99_ms)


@dataclass(frozen=True)
class Deployed:
    root: Path
    run: Run
    endpoint: str
    first: Summary
    again: Summary

    def up(self, p99_ms: int) -> Summary:
        program = _program(self.endpoint, self.run, p99_ms)
        return deploy(STACK, program, state_path(self.root, STACK))


def _new_run(endpoint: str) -> Run:
    prefix = f"t-mon-{uuid.uuid4().hex[:8]}"
    sqs = client("sqs", endpoint)
    url = sqs.create_queue(QueueName=f"{prefix}-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return Run(prefix, url, arn)


@pytest.fixture(scope="module")
def deployed(endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    root = tmp_path_factory.mktemp(STACK)
    run = _new_run(endpoint)
    path = state_path(root, STACK)
    first = deploy(STACK, _program(endpoint, run, 100), path)
    try:
        again = deploy(STACK, _program(endpoint, run, 100), path)
        yield Deployed(root, run, endpoint, first, again)
    finally:
        down(STACK, root=root)
        client("sqs", endpoint).delete_queue(QueueUrl=run.queue_url)


def _alarms(endpoint: str, run: Run) -> dict[str, dict[str, Any]]:
    listed = client("cloudwatch", endpoint).describe_alarms(AlarmNamePrefix=run.prefix)
    return {alarm["AlarmName"]: alarm for alarm in listed["MetricAlarms"]}


def _until(what: str, check: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(1.0)


def test_every_resource_is_realized_then_unchanged(deployed: Deployed) -> None:
    created = {change.type for change in deployed.first.changes if change.action == "create"}
    assert created == {
        "aws:sns/topic:Topic",
        "aws:sns/topicPolicy:TopicPolicy",
        "aws:sns/topicSubscription:TopicSubscription",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:cloudwatch/dashboard:Dashboard",
    }
    assert not deployed.first.not_emulated
    # A second `up` finds everything as declared (the topic policy is compared, not just
    # looked for: every topic has one).
    assert deployed.again.changed == 0, deployed.again.changes


def test_the_alarms_are_as_declared(deployed: Deployed) -> None:
    run, outputs = deployed.run, deployed.first.outputs
    alarms = _alarms(deployed.endpoint, run)
    assert set(alarms) == {run.alarm(kind) for kind in ("5xx-rate", "p99-latency", "throttles")}
    topic = outputs["topicArn"]
    for name, alarm in alarms.items():
        assert alarm["AlarmArn"] == outputs["alarmArns"][name]
        assert (alarm["AlarmActions"], alarm["OKActions"]) == ([topic], [topic])
        assert alarm["TreatMissingData"] == "notBreaching"
    rate = alarms[run.alarm("5xx-rate")]
    assert (rate["Namespace"], rate["MetricName"]) == ("inferstack", "status_5xx")
    assert rate["Dimensions"] == [{"Name": "model", "Value": MODEL}]
    assert (rate["Statistic"], rate["Period"]) == ("Average", 60)
    assert "Metrics" not in rate
    p99 = alarms[run.alarm("p99-latency")]
    assert (p99["ExtendedStatistic"], p99["Threshold"], p99["Period"]) == ("p99", 100.0, 60)
    throttles = alarms[run.alarm("throttles")]
    assert throttles["Dimensions"] == [
        {"Name": "FunctionName", "Value": run.function_name},
        {"Name": "Resource", "Value": f"{run.function_name}:live"},
    ]


def test_the_topic_admits_only_this_stacks_alarms_and_has_the_subscription(
    deployed: Deployed,
) -> None:
    run, topic = deployed.run, deployed.first.outputs["topicArn"]
    sns = client("sns", deployed.endpoint)
    assert topic == f"arn:aws:sns:us-east-1:{ACCOUNT}:{run.prefix}-alarms"
    policy = json.loads(sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statement["Action"] == "sns:Publish"
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {
            "aws:SourceArn": f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{run.prefix}-*"
        },
    }
    (subscription,) = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("sqs", run.queue_arn)


def test_the_dashboard_is_stored_as_declared(deployed: Deployed) -> None:
    outputs = deployed.first.outputs
    dashboard = client("cloudwatch", deployed.endpoint).get_dashboard(
        DashboardName=outputs["dashboard"]
    )
    assert dashboard["DashboardArn"] == outputs["dashboardArn"]
    body = json.loads(dashboard["DashboardBody"])
    assert [widget["properties"]["title"] for widget in body["widgets"]] == [
        f"{MODEL}: requests by status",
        f"{MODEL}: latency (ms)",
        f"{MODEL}: function",
    ]


def _state(alarms: dict[str, dict[str, Any]], name: str) -> str:
    return str(alarms[name]["StateValue"])


def test_plain_alarms_fire_and_notify_the_topic_percentiles_are_not_evaluated(
    deployed: Deployed,
) -> None:
    run, endpoint = deployed.run, deployed.endpoint
    cloudwatch = client("cloudwatch", endpoint)
    by_model = [{"Name": "model", "Value": MODEL}]
    # Every request a 5xx, slow: on AWS all three alarms would fire.
    cloudwatch.put_metric_data(
        Namespace="inferstack",
        MetricData=[
            {"MetricName": "requests", "Dimensions": by_model, "Value": 1, "Unit": "Count"},
            {"MetricName": "status_5xx", "Dimensions": by_model, "Value": 1, "Unit": "Count"},
            {
                "MetricName": "latency_ms",
                "Dimensions": by_model,
                "Value": 500,
                "Unit": "Milliseconds",
            },
        ],
    )
    alias = [
        {"Name": "FunctionName", "Value": run.function_name},
        {"Name": "Resource", "Value": f"{run.function_name}:live"},
    ]
    cloudwatch.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[{"MetricName": "Throttles", "Dimensions": alias, "Value": 3, "Unit": "Count"}],
    )
    started = time.monotonic()
    throttles = run.alarm("throttles")
    _until(
        f"{throttles} in ALARM",
        lambda: _state(_alarms(endpoint, run), throttles) == "ALARM",
        ALARM_WAIT_S,
    )
    print(f"{throttles} in ALARM after {time.monotonic() - started:.0f} s")
    sqs = client("sqs", endpoint)

    def notified() -> list[dict[str, Any]]:
        received = sqs.receive_message(
            QueueUrl=run.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        messages = [json.loads(json.loads(item["Body"])["Message"]) for item in received]
        return [m for m in messages if (m["AlarmName"], m["NewStateValue"]) == (throttles, "ALARM")]

    (message,) = _until(f"the ALARM notification of {throttles}", notified, 30.0)
    assert message["AWSAccountId"] == ACCOUNT
    # The 5xx rate is a plain alarm (the Average of status_5xx): LocalStack evaluates it.
    rate = run.alarm("5xx-rate")
    _until(
        f"{rate} in ALARM", lambda: _state(_alarms(endpoint, run), rate) == "ALARM", ALARM_WAIT_S
    )
    assert _state(_alarms(endpoint, run), run.alarm("p99-latency")) == "INSUFFICIENT_DATA"


def test_emf_lines_in_cloudwatch_logs_do_not_become_metrics(deployed: Deployed) -> None:
    endpoint = deployed.endpoint
    logs = client("logs", endpoint)
    group, namespace = f"/aws/lambda/{deployed.run.function_name}", f"emf-{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=group)
    try:
        logs.create_log_stream(logGroupName=group, logStreamName="s")
        now = int(time.time() * 1000)
        line = {
            "_aws": {
                "Timestamp": now,
                "CloudWatchMetrics": [
                    {
                        "Namespace": namespace,
                        "Dimensions": [["model"]],
                        "Metrics": [{"Name": "latency_ms", "Unit": "Milliseconds"}],
                    }
                ],
            },
            "model": MODEL,
            "latency_ms": 12.5,
        }
        logs.put_log_events(
            logGroupName=group,
            logStreamName="s",
            logEvents=[{"timestamp": now, "message": json.dumps(line)}],
        )
        events = logs.get_log_events(logGroupName=group, logStreamName="s")["events"]
        assert [json.loads(event["message"]) for event in events] == [line]
        time.sleep(15.0)  # AWS extracts within seconds
        assert client("cloudwatch", endpoint).list_metrics(Namespace=namespace)["Metrics"] == []
    finally:
        logs.delete_log_group(logGroupName=group)


def test_an_alarm_and_the_dashboard_change_in_place(deployed: Deployed) -> None:
    changed = deployed.up(p99_ms=250)
    actions = {(c.type, c.name, c.action) for c in changed.changes if c.action != "same"}
    assert actions == {
        ("aws:cloudwatch/metricAlarm:MetricAlarm", deployed.run.alarm("p99-latency"), "update"),
        ("aws:cloudwatch/dashboard:Dashboard", f"{deployed.run.prefix}-dashboard", "update"),
    }
    p99 = _alarms(deployed.endpoint, deployed.run)[deployed.run.alarm("p99-latency")]
    assert p99["Threshold"] == 250.0
    body = client("cloudwatch", deployed.endpoint).get_dashboard(
        DashboardName=changed.outputs["dashboard"]
    )["DashboardBody"]
    (latency,) = [
        widget["properties"]
        for widget in json.loads(body)["widgets"]
        if widget["properties"]["title"] == f"{MODEL}: latency (ms)"
    ]
    assert latency["annotations"]["horizontal"] == [{"label": "p99 objective", "value": 250}]


def _missing(call: Callable[[], Any], codes: set[str]) -> bool:
    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"] in codes
    return False


def test_down_removes_alarms_topic_subscription_and_dashboard(
    endpoint: str, tmp_path: Path
) -> None:
    """Its own stack, so that the module's fixture is left alone."""
    run = _new_run(endpoint)
    summary = deploy(STACK, _program(endpoint, run, 100), state_path(tmp_path, STACK))
    outputs = summary.outputs
    sns, cloudwatch = client("sns", endpoint), client("cloudwatch", endpoint)
    (subscription,) = sns.list_subscriptions_by_topic(TopicArn=outputs["topicArn"])["Subscriptions"]
    try:
        gone = down(STACK, root=tmp_path)
    finally:
        client("sqs", endpoint).delete_queue(QueueUrl=run.queue_url)

    deleted = {change.type for change in gone.changes if change.action == "delete"}
    assert deleted == {
        "aws:sns/topic:Topic",
        "aws:sns/topicSubscription:TopicSubscription",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:cloudwatch/dashboard:Dashboard",
        # Gone with its topic: no call of its own, but recorded as deleted.
        "aws:sns/topicPolicy:TopicPolicy",
    }
    assert _alarms(endpoint, run) == {}
    dashboards = cloudwatch.list_dashboards(DashboardNamePrefix=run.prefix)["DashboardEntries"]
    assert dashboards == []
    not_found = {"NotFound"}
    assert _missing(lambda: sns.get_topic_attributes(TopicArn=outputs["topicArn"]), not_found)
    arn = subscription["SubscriptionArn"]
    assert _missing(lambda: sns.get_subscription_attributes(SubscriptionArn=arn), not_found)
    assert not state_path(tmp_path, STACK).exists()
