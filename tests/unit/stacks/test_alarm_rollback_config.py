"""The alarm_rollback section: CodeDeploy's traffic steps, on AWS stacks only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from infra.stack_loader import describe_validation_error, load_stack
from stacks.schema import (
    AlarmRollbackConfig,
    AwsTarget,
    CanaryConfig,
    LambdaConfig,
    LocalStackTarget,
    ModelConfig,
    StackConfig,
)


def error_of(build: Callable[[], Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        build()
    return describe_validation_error(caught.value)


def watched_model() -> ModelConfig:
    return ModelConfig(name="digits", lambda_=LambdaConfig(), alarm_rollback=AlarmRollbackConfig())


def test_defaults_are_a_ten_percent_canary_for_five_minutes() -> None:
    config = AlarmRollbackConfig()
    assert (config.traffic, config.percent, config.interval_minutes) == ("canary", 10, 5)
    stack = StackConfig(target=AwsTarget(region="eu-west-1"), models=[watched_model()])
    assert stack.models[0].alarm_rollback == config


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"percent": 0}, "alarm_rollback.percent: 0 is out of range; allowed 1–99 %"),  # noqa: RUF001
        ({"percent": 100}, "alarm_rollback.percent: 100 is out of range; allowed 1–99 %"),  # noqa: RUF001
        (
            {"interval_minutes": 0},
            "alarm_rollback.interval_minutes: 0 is too small; allowed ≥ 1 minutes",
        ),
        (
            {"traffic": "blue"},
            "alarm_rollback.traffic: Input should be 'canary', 'linear' or 'all_at_once'",
        ),
    ],
)
def test_bad_values_name_the_field_and_the_allowed_ones(
    fields: dict[str, Any], message: str
) -> None:
    assert error_of(lambda: AlarmRollbackConfig(**fields)) == message


def test_localstack_targets_refuse_it_naming_the_model() -> None:
    assert error_of(lambda: StackConfig(target=LocalStackTarget(), models=[watched_model()])) == (
        "models[digits].alarm_rollback needs CodeDeploy, which LocalStack's community edition"
        " does not emulate; allowed on target kind 'aws' only"
    )


def test_it_excludes_a_declared_canary() -> None:
    message = error_of(
        lambda: ModelConfig(
            name="digits",
            lambda_=LambdaConfig(),
            alarm_rollback=AlarmRollbackConfig(),
            canary=CanaryConfig(live_version=1, weight=10),
        )
    )
    assert message.startswith("models[digits]: canary and alarm_rollback both set; allowed one")


def test_prod_declares_it_for_digits() -> None:
    (digits,) = [m for m in load_stack("prod").models if m.name == "digits"]
    assert digits.alarm_rollback == AlarmRollbackConfig(percent=10, interval_minutes=10)
