"""The canary section: which published version stays live and the new version's share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from infra.stack_loader import describe_validation_error
from stacks.schema import CanaryConfig, GpuConfig, ModelConfig


def error_of(build: Callable[[], Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        build()
    return describe_validation_error(caught.value)


def test_a_canary_keeps_a_version_and_weighs_the_new_one() -> None:
    canary = CanaryConfig(live_version=3, weight=10)
    assert (canary.live_version, canary.weight) == (3, 10.0)
    assert CanaryConfig(live_version=1, weight=0.5).weight == 0.5


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"live_version": 1, "weight": 150},
            "canary.weight: 150.0 is out of range; allowed 0–100 %",  # noqa: RUF001
        ),
        (
            {"live_version": 1, "weight": -1},
            "canary.weight: -1.0 is out of range; allowed 0–100 %",  # noqa: RUF001
        ),
        (
            {"live_version": 1, "weight": 0},
            "canary.weight 0 % is no canary: allowed above 0 and below 100 % (remove `canary`"
            " to move all traffic with the deploy)",
        ),
        (
            {"live_version": 1, "weight": 100},
            "canary.weight 100 % is no canary: allowed above 0 and below 100 % (remove `canary`"
            " to move all traffic with the deploy)",
        ),
        ({"live_version": 0, "weight": 10}, "canary.live_version: 0 is too small; allowed ≥ 1"),
    ],
)
def test_bad_canaries_name_the_field_and_range(fields: dict[str, Any], message: str) -> None:
    assert error_of(lambda: CanaryConfig(**fields)) == message


def test_a_canary_needs_lambda_serving() -> None:
    gpu = GpuConfig(image="r/server:1.0")
    canary = CanaryConfig(live_version=1, weight=10)
    assert error_of(lambda: ModelConfig(name="big", gpu=gpu, canary=canary)).startswith(
        "models[big].canary needs lambda_ serving"
    )
