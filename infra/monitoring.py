"""The stack's alarms, the SNS topic they notify, and its dashboard (CloudWatch).

Per model function: its 5xx rate and p99 latency (from the handler's Embedded Metric
Format lines, namespace `inferstack`, dimension `model`), its throttles and, where it has
them, its dead-letter queue's depth and its provisioned-concurrency spillover. Every
alarm notifies the one topic on ALARM and on OK. GPU endpoints are Prometheus's to watch:
they get no alarm and no dashboard row here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.lambda_model import ALIAS
from stacks.schema import AlarmSubscription, MonitoringConfig

# What the handler's EMF lines are written under (issue 13's shared names).
NAMESPACE = "inferstack"
# A dashboard is 24 grid units wide: one row of three widgets per model.
_WIDGET_WIDTH = 8
_WIDGET_HEIGHT = 6


@dataclass(frozen=True)
class MonitoredFunction:
    model: str
    function_name: str
    # The model's p99 objective (ms); None: no latency alarm.
    p99_ms: int | None = None
    # The model's dead-letter queue (models with jobs).
    dead_letter_queue: pulumi.Input[str] | None = None
    # Whether the function's alias has provisioned concurrency (it can spill over).
    provisioned: bool = False


@dataclass
class MonitoringArgs:
    # `inferstack-<stack>`: the topic, the dashboard and every alarm are named after it.
    prefix: str
    config: MonitoringConfig
    region: str
    functions: list[MonitoredFunction]


class Monitoring(pulumi.ComponentResource):
    topic: aws.sns.Topic
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    dashboard: aws.cloudwatch.Dashboard

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("inferstack:index:Monitoring", name, None, opts)
        self._name = name
        self._config = args.config
        child = pulumi.ResourceOptions(parent=self)
        # Not KMS-encrypted: CloudWatch cannot publish to a topic under the AWS-managed
        # key aws/sns, only under a customer key whose policy lets it in. Notifications
        # carry alarm states, never request data.
        self.topic = aws.sns.Topic(f"{name}-alarms", name=f"{args.prefix}-alarms", opts=child)
        self._create_topic_policy(args.prefix)
        for subscription in args.config.subscriptions:
            self._create_subscription(subscription)
        self.alarms = {}
        for function in args.functions:
            self.alarms.update(self._create_alarms(function))
        self.dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=args.prefix,
            dashboard_body=dashboard_body(args.region, args.functions, args.config.period_s),
            opts=child,
        )
        self.register_outputs(
            {"topic_arn": self.topic.arn, "dashboard": self.dashboard.dashboard_name}
        )

    def _create_topic_policy(self, prefix: str) -> aws.sns.TopicPolicy:
        # The topic's own policy replaces SNS's default (every principal of the account):
        # only CloudWatch may publish, for this stack's alarms in this account. The
        # account's own principals manage the topic through their IAM policies.
        arn = self.topic.arn
        region = arn.apply(lambda value: value.split(":")[3])
        account = arn.apply(lambda value: value.split(":")[4])
        alarms = pulumi.Output.concat(
            "arn:aws:cloudwatch:", region, ":", account, ":alarm:", prefix, "-*"
        )
        statement = {
            "Sid": "CloudWatchAlarmsOfThisStack",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": arn,
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": alarms},
            },
        }
        return aws.sns.TopicPolicy(
            f"{self._name}-alarms-policy",
            arn=arn,
            policy=policies.document(statement),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_subscription(self, subscription: AlarmSubscription) -> aws.sns.TopicSubscription:
        # Named by what it is, not by its place in the list: reordering the config
        # replaces nothing.
        key = hashlib.sha256(subscription.endpoint.encode()).hexdigest()[:8]
        return aws.sns.TopicSubscription(
            f"{self._name}-alarms-{subscription.protocol}-{key}",
            topic=self.topic.arn,
            protocol=subscription.protocol,
            endpoint=subscription.endpoint,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_alarms(self, function: MonitoredFunction) -> dict[str, aws.cloudwatch.MetricAlarm]:
        config = self._config
        name = function.function_name
        by_model = {"model": function.model}
        # Lambda publishes an alias's metrics with its own Resource dimension.
        by_alias = {"FunctionName": name, "Resource": f"{name}:{ALIAS}"}
        alarms = {
            # Every EMF line carries status_5xx (1 or 0): its Average over the period
            # is the share of requests answered 5xx. A plain alarm, not metric math, so
            # LocalStack evaluates it too.
            "5xx-rate": self._alarm(
                f"{name}-5xx-rate",
                f"More than {config.error_rate_percent:g} % of {function.model}'s requests "
                "answered 5xx",
                threshold=config.error_rate_percent / 100,
                namespace=NAMESPACE,
                metric_name="status_5xx",
                dimensions=by_model,
                statistic="Average",
            ),
            "throttles": self._alarm(
                f"{name}-throttles",
                f"{name} throttled requests (its reserved concurrency or the account's pool)",
                namespace="AWS/Lambda",
                metric_name="Throttles",
                dimensions=by_alias,
                statistic="Sum",
            ),
        }
        if function.p99_ms is not None:
            alarms["p99-latency"] = self._alarm(
                f"{name}-p99-latency",
                f"{function.model}'s p99 latency above its objective of {function.p99_ms} ms",
                threshold=function.p99_ms,
                namespace=NAMESPACE,
                metric_name="latency_ms",
                dimensions=by_model,
                extended_statistic="p99",
            )
        if function.dead_letter_queue is not None:
            alarms["dlq-depth"] = self._alarm(
                f"{name}-dlq-depth",
                f"Jobs of {function.model} failed into its dead-letter queue",
                namespace="AWS/SQS",
                metric_name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": function.dead_letter_queue},
                statistic="Maximum",
            )
        if function.provisioned:
            alarms["spillover"] = self._alarm(
                f"{name}-spillover",
                f"{name} served requests beyond its provisioned concurrency (cold starts)",
                namespace="AWS/Lambda",
                metric_name="ProvisionedConcurrencySpilloverInvocations",
                dimensions=by_alias,
                statistic="Sum",
            )
        return {f"{name}-{kind}": alarm for kind, alarm in alarms.items()}

    def _alarm(
        self, alarm_name: str, description: str, threshold: float = 0, **metric: Any
    ) -> aws.cloudwatch.MetricAlarm:
        config = self._config
        topic = [self.topic.arn]
        return aws.cloudwatch.MetricAlarm(
            alarm_name,
            name=alarm_name,
            alarm_description=description,
            comparison_operator="GreaterThanThreshold",
            threshold=threshold,
            evaluation_periods=config.evaluation_periods,
            # No requests (or no queue activity) is no sign of trouble.
            treat_missing_data="notBreaching",
            alarm_actions=topic,
            ok_actions=topic,
            period=config.period_s,
            opts=pulumi.ResourceOptions(parent=self),
            **metric,
        )


def dashboard_body(
    region: str, functions: list[MonitoredFunction], period_s: int
) -> pulumi.Output[str]:
    """The dashboard's JSON: a row per model of requests by status class, latency by
    stage, and the function's own metrics (with its queue and spillover, if any)."""
    widgets: list[dict[str, Any]] = []
    for row, function in enumerate(functions):
        y = row * _WIDGET_HEIGHT
        panels = [
            (f"{function.model}: requests by status", _request_metrics(function)),
            (f"{function.model}: latency (ms)", _latency_metrics(function)),
            (f"{function.model}: function", _function_metrics(function)),
        ]
        for column, (title, metrics) in enumerate(panels):
            properties: dict[str, Any] = {
                "title": title,
                "view": "timeSeries",
                "region": region,
                "period": period_s,
                "metrics": metrics,
            }
            if column == 1 and function.p99_ms is not None:
                properties["annotations"] = {
                    "horizontal": [{"label": "p99 objective", "value": function.p99_ms}]
                }
            widgets.append(
                {
                    "type": "metric",
                    "x": column * _WIDGET_WIDTH,
                    "y": y,
                    "width": _WIDGET_WIDTH,
                    "height": _WIDGET_HEIGHT,
                    "properties": properties,
                }
            )
    return pulumi.Output.json_dumps({"widgets": widgets})


def _request_metrics(function: MonitoredFunction) -> list[list[Any]]:
    return [
        [NAMESPACE, name, "model", function.model, {"stat": "Sum"}]
        for name in ("requests", "status_2xx", "status_4xx", "status_5xx")
    ]


def _latency_metrics(function: MonitoredFunction) -> list[list[Any]]:
    model = function.model
    return [
        [NAMESPACE, "latency_ms", "model", model, {"stat": "p50", "label": "p50"}],
        [NAMESPACE, "latency_ms", "model", model, {"stat": "p99", "label": "p99"}],
    ] + [
        [NAMESPACE, f"{stage}_ms", "model", model, {"stat": "p50", "label": f"{stage} p50"}]
        for stage in ("decode", "preprocess", "infer", "encode")
    ]


def _function_metrics(function: MonitoredFunction) -> list[list[Any]]:
    name = function.function_name
    alias = ["FunctionName", name, "Resource", f"{name}:{ALIAS}"]
    names = ["Invocations", "Errors", "Throttles"]
    if function.provisioned:
        names.append("ProvisionedConcurrencySpilloverInvocations")
    metrics: list[list[Any]] = [["AWS/Lambda", metric, *alias, {"stat": "Sum"}] for metric in names]
    if function.dead_letter_queue is not None:
        metrics.append(
            [
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "QueueName",
                function.dead_letter_queue,
                {"stat": "Maximum", "label": "dead-letter queue"},
            ]
        )
    return metrics
