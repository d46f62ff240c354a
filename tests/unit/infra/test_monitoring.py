"""The stack's alarms, alarm topic and dashboard, as each shipped stack declares them under
Pulumi's mock runtime: which alarms each function gets, on which metrics, where they
notify, who may publish to the topic, and a dashboard row per model."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from infra.evaluate import Evaluation, Registered
from infra.providers import services_used
from infra.stack_loader import load_stack
from stacks.schema import AlarmSubscription, MonitoringConfig, StackConfig

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"


def alarms(stack: Evaluation) -> dict[str, Registered]:
    return {alarm.inputs["name"]: alarm for alarm in stack.of_type(ALARM)}


def test_each_function_gets_the_alarms_its_config_calls_for(stack: Evaluation) -> None:
    config = load_stack(stack.stack)
    expected = set()
    for model, function in config.lambda_functions:
        name = f"inferstack-{stack.stack}-{model.name}"
        expected |= {f"{name}-5xx-rate", f"{name}-throttles"}
        if function.p99_ms is not None:
            expected.add(f"{name}-p99-latency")
        if model.async_ is not None:
            expected.add(f"{name}-dlq-depth")
        if function.provisioned is not None:
            expected.add(f"{name}-spillover")
    assert set(alarms(stack)) == expected


def test_the_stacks_declare_the_alarms_of_their_queues_and_warm_functions(
    evaluations: dict[str, Evaluation],
) -> None:
    local, dev, prod = (set(alarms(evaluations[name])) for name in ("local", "dev", "prod"))
    assert "inferstack-local-digits-dlq-depth" in local
    assert not [name for name in dev if name.endswith(("-dlq-depth", "-spillover"))]
    assert {"inferstack-prod-digits-int8-dlq-depth", "inferstack-prod-digits-spillover"} <= prod
    assert (len(local), len(dev), len(prod)) == (10, 9, 11)


def test_every_alarm_notifies_the_stacks_topic_on_alarm_and_ok(stack: Evaluation) -> None:
    (topic,) = stack.of_type(TOPIC)
    assert topic.inputs["name"] == f"inferstack-{stack.stack}-alarms"
    monitoring = load_stack(stack.stack).monitoring
    for alarm in stack.of_type(ALARM):
        inputs = alarm.inputs
        assert inputs["alarmActions"] == inputs["okActions"] == [topic.outputs["arn"]]
        assert inputs["comparisonOperator"] == "GreaterThanThreshold"
        assert inputs["treatMissingData"] == "notBreaching"
        assert inputs["evaluationPeriods"] == monitoring.evaluation_periods


def test_the_5xx_rate_is_the_average_of_the_models_status_5xx(stack: Evaluation) -> None:
    # A plain alarm (LocalStack evaluates no metric math): every EMF line carries
    # status_5xx as 1 or 0, so its Average is the period's share of 5xx answers.
    monitoring = load_stack(stack.stack).monitoring
    rate = alarms(stack)[f"inferstack-{stack.stack}-digits-5xx-rate"].inputs
    assert rate["threshold"] == monitoring.error_rate_percent / 100
    assert (rate["namespace"], rate["metricName"]) == ("inferstack", "status_5xx")
    assert rate["dimensions"] == {"model": "digits"}
    assert (rate["statistic"], rate["period"]) == ("Average", monitoring.period_s)
    assert rate["treatMissingData"] == "notBreaching"
    assert "metricQueries" not in rate and "extendedStatistic" not in rate


def test_the_latency_alarm_is_the_p99_of_latency_ms_against_the_objective(
    stack: Evaluation,
) -> None:
    config = load_stack(stack.stack)
    for model, function in config.lambda_functions:
        alarm = alarms(stack)[f"inferstack-{stack.stack}-{model.name}-p99-latency"].inputs
        assert (alarm["namespace"], alarm["metricName"]) == ("inferstack", "latency_ms")
        assert alarm["dimensions"] == {"model": model.name}
        assert (alarm["extendedStatistic"], alarm["threshold"]) == ("p99", function.p99_ms)
        assert "statistic" not in alarm
        assert alarm["period"] == config.monitoring.period_s


def test_throttles_spillover_and_the_dead_letter_queue_use_aws_metrics(
    evaluations: dict[str, Evaluation],
) -> None:
    prod = alarms(evaluations["prod"])
    alias = {"FunctionName": "inferstack-prod-digits", "Resource": "inferstack-prod-digits:live"}
    throttles = prod["inferstack-prod-digits-throttles"].inputs
    assert (throttles["namespace"], throttles["metricName"]) == ("AWS/Lambda", "Throttles")
    assert (throttles["dimensions"], throttles["statistic"], throttles["threshold"]) == (
        alias,
        "Sum",
        0,
    )
    spillover = prod["inferstack-prod-digits-spillover"].inputs
    assert spillover["metricName"] == "ProvisionedConcurrencySpilloverInvocations"
    assert spillover["dimensions"] == alias
    dlq = prod["inferstack-prod-digits-int8-dlq-depth"].inputs
    assert (dlq["namespace"], dlq["metricName"], dlq["statistic"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
    )
    (queue,) = [
        q
        for q in evaluations["prod"].of_type("aws:sqs/queue:Queue")
        if q.inputs["name"] == "inferstack-prod-digits-int8-dlq"
    ]
    assert dlq["dimensions"] == {"QueueName": queue.outputs["name"]}


def test_only_this_stacks_cloudwatch_alarms_may_publish_to_the_topic(stack: Evaluation) -> None:
    (topic,) = stack.of_type(TOPIC)
    (policy,) = stack.of_type("aws:sns/topicPolicy:TopicPolicy")
    arn = topic.outputs["arn"]
    assert policy.inputs["arn"] == arn
    document = json.loads(policy.inputs["policy"])
    assert document["Statement"] == [
        {
            "Sid": "CloudWatchAlarmsOfThisStack",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": arn,
            "Condition": {
                "StringEquals": {"aws:SourceAccount": "123456789012"},
                "ArnLike": {
                    "aws:SourceArn": (
                        f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:inferstack-{stack.stack}-*"
                    )
                },
            },
        }
    ]


def test_subscriptions_come_from_the_config(evaluations: dict[str, Evaluation]) -> None:
    for name in ("local", "dev", "prod"):
        declared = load_stack(name).monitoring.subscriptions
        subscribed = [
            (s.inputs["protocol"], s.inputs["endpoint"], s.inputs["topic"])
            for s in evaluations[name].of_type(SUBSCRIPTION)
        ]
        (topic,) = evaluations[name].of_type(TOPIC)
        assert sorted(subscribed) == sorted(
            (s.protocol, s.endpoint, topic.outputs["arn"]) for s in declared
        )


def test_reordering_subscriptions_renames_nothing(
    run_program: Callable[[StackConfig, str], Evaluation],
) -> None:
    config = load_stack("local")
    email = AlarmSubscription(protocol="email", endpoint="a@example.com")
    queue = AlarmSubscription(protocol="sqs", endpoint="arn:aws:sqs:us-east-1:123456789012:q")

    def names(*subscriptions: AlarmSubscription) -> list[str]:
        monitoring = MonitoringConfig(subscriptions=list(subscriptions))
        stack = run_program(config.model_copy(update={"monitoring": monitoring}), "local")
        return sorted(s.name for s in stack.of_type(SUBSCRIPTION))

    assert names(email, queue) == names(queue, email)
    assert len(names(email, queue)) == 2


def _widgets(stack: Evaluation) -> list[dict[str, Any]]:
    (dashboard,) = stack.of_type("aws:cloudwatch/dashboard:Dashboard")
    assert dashboard.inputs["dashboardName"] == f"inferstack-{stack.stack}"
    widgets: list[dict[str, Any]] = json.loads(dashboard.inputs["dashboardBody"])["widgets"]
    return widgets


def test_one_dashboard_per_stack_with_a_row_per_model(stack: Evaluation) -> None:
    config = load_stack(stack.stack)
    widgets = _widgets(stack)
    rows: dict[int, list[str]] = {}
    for widget in widgets:
        assert widget["properties"]["region"] == config.target.region
        assert widget["properties"]["period"] == config.monitoring.period_s
        assert widget["x"] + widget["width"] <= 24
        rows.setdefault(widget["y"], []).append(widget["properties"]["title"])
    assert [titles[0].split(":")[0] for _, titles in sorted(rows.items())] == [
        model.name for model in config.lambda_models
    ]
    for titles in rows.values():
        assert len(titles) == 3 and len({title.split(":")[0] for title in titles}) == 1


def test_the_dashboard_shows_stages_the_objective_and_the_queue(
    evaluations: dict[str, Evaluation],
) -> None:
    widgets = {w["properties"]["title"]: w["properties"] for w in _widgets(evaluations["prod"])}
    latency = widgets["digits: latency (ms)"]
    shown = {metric[1] for metric in latency["metrics"]}
    assert shown == {"latency_ms", "decode_ms", "preprocess_ms", "infer_ms", "encode_ms"}
    assert latency["annotations"]["horizontal"] == [{"label": "p99 objective", "value": 200}]
    function = [metric[1] for metric in widgets["digits-int8: function"]["metrics"]]
    assert "ApproximateNumberOfMessagesVisible" in function
    assert "ProvisionedConcurrencySpilloverInvocations" in [
        metric[1] for metric in widgets["digits: function"]["metrics"]
    ]
    status = {metric[1] for metric in widgets["minilm-int8: requests by status"]["metrics"]}
    assert status == {"requests", "status_2xx", "status_4xx", "status_5xx"}


def test_cloudwatch_and_sns_get_a_localstack_endpoint_with_lambda_models() -> None:
    assert {"cloudwatch", "sns"} <= set(services_used(load_stack("local")))
