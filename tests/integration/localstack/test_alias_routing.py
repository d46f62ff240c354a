"""Weighted routing on a Lambda alias, on LocalStack as on AWS: UpdateAlias with
AdditionalVersionWeights (which LocalStack 2026.3.0 fails with an InternalError, fixed by
the executor plugin: alias_routing.py), its checks, and the weights honoured at invoke."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.localstack import CreateFunction, invoke

# Each version answers with the version it is.
VERSION = """
import os

def handler(event, context):
    return os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
"""
CALLS = 400
WEIGHT = 0.3


def _publish_two(lambda_client: Any, name: str) -> tuple[str, str]:
    first = lambda_client.publish_version(FunctionName=name)["Version"]
    lambda_client.update_function_configuration(FunctionName=name, Description="second")
    lambda_client.get_waiter("function_updated_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150}
    )
    second = lambda_client.publish_version(FunctionName=name)["Version"]
    assert first != second
    return first, second


def _answers(lambda_client: Any, name: str, calls: int) -> Counter[str]:
    """Which version answered each of `calls` invocations of the alias `live`."""
    answered: Counter[str] = Counter()
    for _ in range(calls):
        response = invoke(lambda_client, name, Qualifier="live")
        assert "FunctionError" not in response, response["Payload"]
        assert response["Payload"] == response["ExecutedVersion"]
        answered[response["Payload"]] += 1
    return answered


def _error_code(lambda_client: Any, **update: Any) -> str:
    with pytest.raises(ClientError) as caught:
        lambda_client.update_alias(Name="live", **update)
    return str(caught.value.response["Error"]["Code"])


def test_weighted_routing_set_by_update_alias_is_honoured_at_invoke(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    name = create_function({"handler.py": VERSION})
    first, second = _publish_two(lambda_client, name)
    # Empty weights, as the deploy engine's Alias realizer creates every alias.
    lambda_client.create_alias(
        FunctionName=name,
        Name="live",
        FunctionVersion=first,
        RoutingConfig={"AdditionalVersionWeights": {}},
    )
    assert "RoutingConfig" not in lambda_client.get_alias(FunctionName=name, Name="live")

    updated = lambda_client.update_alias(
        FunctionName=name, Name="live", RoutingConfig={"AdditionalVersionWeights": {second: WEIGHT}}
    )
    assert updated["FunctionVersion"] == first
    assert updated["RoutingConfig"] == {"AdditionalVersionWeights": {second: WEIGHT}}
    alias = lambda_client.get_alias(FunctionName=name, Name="live")
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {second: WEIGHT}}

    answered = _answers(lambda_client, name, CALLS)
    assert set(answered) == {first, second}
    # Binomial: the count of the weighted version within three standard deviations.
    mean = CALLS * WEIGHT
    bound = 3 * math.sqrt(CALLS * WEIGHT * (1 - WEIGHT))
    assert abs(answered[second] - mean) <= bound, answered

    lambda_client.update_alias(
        FunctionName=name, Name="live", RoutingConfig={"AdditionalVersionWeights": {}}
    )
    assert "RoutingConfig" not in lambda_client.get_alias(FunctionName=name, Name="live")
    assert _answers(lambda_client, name, 50) == {first: 50}


def test_update_alias_checks_the_weights_as_create_alias_does(
    lambda_client: Any, create_function: CreateFunction
) -> None:
    name = create_function({"handler.py": VERSION})
    first, second = _publish_two(lambda_client, name)
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion=first)

    def weights(version: str, weight: float) -> dict[str, Any]:
        return {"RoutingConfig": {"AdditionalVersionWeights": {version: weight}}}

    assert _error_code(lambda_client, FunctionName=name, **weights(second, 1.5)) == (
        "ValidationException"
    )
    # The alias's own version, and (after pointing it to the second) the new one's.
    assert _error_code(lambda_client, FunctionName=name, **weights(first, 0.1)) == (
        "InvalidParameterValueException"
    )
    assert _error_code(
        lambda_client, FunctionName=name, FunctionVersion=second, **weights(second, 0.1)
    ) == ("InvalidParameterValueException")
    assert _error_code(lambda_client, FunctionName=name, **weights("99", 0.1)) == (
        "ResourceNotFoundException"
    )
    # None of them changed the alias.
    alias = lambda_client.get_alias(FunctionName=name, Name="live")
    assert alias["FunctionVersion"] == first and "RoutingConfig" not in alias

    # Pointing the alias to the second version while routing to the first is valid.
    moved = lambda_client.update_alias(
        FunctionName=name, Name="live", FunctionVersion=second, **weights(first, 0.2)
    )
    assert moved["FunctionVersion"] == second
    assert moved["RoutingConfig"] == {"AdditionalVersionWeights": {first: 0.2}}
