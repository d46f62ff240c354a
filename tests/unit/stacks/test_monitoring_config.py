"""The `monitoring` section of a stack and a function's `p99_ms` objective: CloudWatch's
ranges, named by field; subscription endpoints that fit their protocol."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from infra.stack_loader import describe_validation_error, load_stack
from stacks.schema import AlarmSubscription, LambdaConfig, MonitoringConfig


def error_of(build: Callable[[], Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        build()
    return describe_validation_error(caught.value)


def test_defaults_alarm_after_three_one_minute_periods_above_five_percent() -> None:
    config = MonitoringConfig()
    assert (config.error_rate_percent, config.period_s, config.evaluation_periods) == (5.0, 60, 3)
    assert config.subscriptions == []
    assert LambdaConfig().p99_ms is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("error_rate_percent", 0.0, "0.0 is out of range; allowed 0.1–100 %"),  # noqa: RUF001
        ("error_rate_percent", 101.0, "101.0 is out of range; allowed 0.1–100 %"),  # noqa: RUF001
        ("period_s", 10, "10 is not allowed; allowed 60, 300, 900, 3600 s"),
        ("period_s", 120, "120 is not allowed; allowed 60, 300, 900, 3600 s"),
        ("evaluation_periods", 0, "0 is out of range; allowed 1–1440"),  # noqa: RUF001
    ],
)
def test_monitoring_ranges_name_the_field(field: str, value: Any, message: str) -> None:
    assert error_of(lambda: MonitoringConfig(**{field: value})) == f"monitoring.{field}: {message}"


def test_the_evaluation_range_is_cloudwatchs() -> None:
    # One day for periods under an hour, seven days from an hour.
    assert MonitoringConfig(period_s=60, evaluation_periods=1440).evaluation_periods == 1440
    assert error_of(lambda: MonitoringConfig(period_s=300, evaluation_periods=289)) == (
        "monitoring: evaluation_periods 289 x period_s 300 s exceeds CloudWatch's evaluation "
        "range of 86400 s; allowed ≤ 288 periods"
    )
    assert MonitoringConfig(period_s=3600, evaluation_periods=168).evaluation_periods == 168
    assert "allowed ≤ 168 periods" in error_of(
        lambda: MonitoringConfig(period_s=3600, evaluation_periods=169)
    )


@pytest.mark.parametrize(
    ("protocol", "endpoint"),
    [
        ("email", "oncall@example.com"),
        ("https", "https://events.example.com/integration/x"),
        ("sqs", "arn:aws:sqs:us-east-1:123456789012:alarms"),
        ("lambda", "arn:aws:lambda:us-east-1:123456789012:function:notify"),
        ("lambda", "arn:aws:lambda:us-east-1:123456789012:function:notify:live"),
        ("sms", "+4915112345678"),
    ],
)
def test_an_endpoint_that_fits_its_protocol_is_accepted(protocol: str, endpoint: str) -> None:
    subscription = AlarmSubscription.model_validate({"protocol": protocol, "endpoint": endpoint})
    assert (subscription.protocol, subscription.endpoint) == (protocol, endpoint)


@pytest.mark.parametrize(
    ("protocol", "endpoint", "what"),
    [
        ("email", "oncall", "email address"),
        ("https", "http://events.example.com/x", "https URL"),
        ("sqs", "arn:aws:sns:us-east-1:123456789012:alarms", "SQS queue ARN"),
        ("lambda", "notify", "Lambda function ARN"),
        ("sms", "015112345678", "E.164 phone number"),
    ],
)
def test_an_endpoint_that_does_not_fit_its_protocol_is_refused(
    protocol: str, endpoint: str, what: str
) -> None:
    build = lambda: AlarmSubscription.model_validate(  # noqa: E731
        {"protocol": protocol, "endpoint": endpoint}
    )
    assert error_of(build) == (
        f"monitoring.subscriptions[].endpoint {endpoint!r} is not a valid {what} "
        f"for protocol {protocol!r}"
    )


def test_an_unknown_protocol_is_refused() -> None:
    message = error_of(
        lambda: AlarmSubscription.model_validate({"protocol": "http", "endpoint": "http://x"})
    )
    assert message.startswith("monitoring.subscriptions[].protocol:")
    assert "'email'" in message and "'sms'" in message


def test_a_subscription_listed_twice_is_refused() -> None:
    email = AlarmSubscription(protocol="email", endpoint="oncall@example.com")
    assert error_of(lambda: MonitoringConfig(subscriptions=[email, email])) == (
        "monitoring.subscriptions: duplicate subscription(s) email oncall@example.com"
    )


def test_the_latency_objective_has_a_range_and_fits_inside_the_timeout() -> None:
    assert error_of(lambda: LambdaConfig(p99_ms=0)) == (
        "lambda.p99_ms: 0 is out of range; allowed 1–900000 ms"  # noqa: RUF001
    )
    assert LambdaConfig(timeout_s=10, p99_ms=10000).p99_ms == 10000
    assert error_of(lambda: LambdaConfig(timeout_s=10, p99_ms=10001)) == (
        "lambda.p99_ms: 10001 ms exceeds the function's timeout of 10 s; allowed ≤ 10000 ms"
    )


def test_the_shipped_stacks_declare_objectives_and_who_hears_of_the_alarms() -> None:
    local, dev, prod = (load_stack(name) for name in ("local", "dev", "prod"))
    for stack in (local, dev, prod):
        assert all(function.p99_ms for _model, function in stack.lambda_functions)
    # LocalStack sends no email: the local topic has no subscriber, and one period decides.
    assert local.monitoring.subscriptions == []
    assert local.monitoring.evaluation_periods == 1
    assert [s.protocol for s in dev.monitoring.subscriptions] == ["email"]
    assert [s.protocol for s in prod.monitoring.subscriptions] == ["email", "https"]
    assert prod.monitoring.error_rate_percent < dev.monitoring.error_rate_percent
