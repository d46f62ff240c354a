"""Which input changes replace an API Gateway resource (the rest update it in place), per
realizer, as the AWS provider decides (see test_deploy_replace_on.py): the table cites the
schema of each type (hashicorp/terraform-provider-aws, internal/service/apigateway/<file>.go,
the attributes with `ForceNew: true`), in Pulumi's camelCase input names (`rest_api_id` is
Pulumi's `restApi` for most types, but `restApiId` for a gateway response). Provider v6's
per-resource `region` is not realized, so it is left out."""

from __future__ import annotations

import pytest

from localdev.deploy.realizers import REALIZERS
from localdev.deploy.realizers.base import Described, Realizer

# type -> the ForceNew inputs (None: the type has no update at all, every change replaces).
FORCE_NEW: dict[str, frozenset[str] | None] = {
    # rest_api.go: none (name, description, body, ... are PATCHed or put again).
    "aws:apigateway/restApi:RestApi": frozenset(),
    # resource.go: rest_api_id (parent_id and path_part are PATCHed).
    "aws:apigateway/resource:Resource": frozenset({"restApi"}),
    # method.go: rest_api_id, resource_id, http_method.
    "aws:apigateway/method:Method": frozenset({"restApi", "resourceId", "httpMethod"}),
    # integration.go: rest_api_id, resource_id, http_method, type, integration_http_method,
    # passthrough_behavior, credentials.
    "aws:apigateway/integration:Integration": frozenset(
        {
            "restApi",
            "resourceId",
            "httpMethod",
            "type",
            "integrationHttpMethod",
            "passthroughBehavior",
            "credentials",
        }
    ),
    # method_response.go, integration_response.go: rest_api_id, resource_id, http_method
    # (status_code is not ForceNew).
    "aws:apigateway/methodResponse:MethodResponse": frozenset(
        {"restApi", "resourceId", "httpMethod"}
    ),
    "aws:apigateway/integrationResponse:IntegrationResponse": frozenset(
        {"restApi", "resourceId", "httpMethod"}
    ),
    # gateway_response.go: rest_api_id, response_type.
    "aws:apigateway/response:Response": frozenset({"restApiId", "responseType"}),
    # deployment.go: rest_api_id, triggers, variables (description is PATCHed).
    "aws:apigateway/deployment:Deployment": frozenset({"restApi", "triggers", "variables"}),
    # stage.go: rest_api_id, stage_name.
    "aws:apigateway/stage:Stage": frozenset({"restApi", "stageName"}),
    # method_settings.go: rest_api_id, stage_name, method_path.
    "aws:apigateway/methodSettings:MethodSettings": frozenset(
        {"restApi", "stageName", "methodPath"}
    ),
    # account.go: none.
    "aws:apigateway/account:Account": frozenset(),
    # api_key.go: value (name, description, enabled, customer_id are PATCHed).
    "aws:apigateway/apiKey:ApiKey": frozenset({"value"}),
    # usage_plan.go: none (name, description, product_code, api_stages, throttle_settings,
    # quota_settings are PATCHed).
    "aws:apigateway/usagePlan:UsagePlan": frozenset(),
    # usage_plan_key.go: no Update; every argument is ForceNew.
    "aws:apigateway/usagePlanKey:UsagePlanKey": None,
}


def test_the_table_covers_every_api_gateway_realizer() -> None:
    assert set(FORCE_NEW) == {t for t in REALIZERS if t.startswith("aws:apigateway/")}


@pytest.mark.parametrize("type_", sorted(FORCE_NEW), ids=lambda t: t.rsplit(":", 1)[1])
def test_a_realizer_replaces_on_exactly_the_providers_force_new_inputs(type_: str) -> None:
    realizer = REALIZERS[type_]
    expected = FORCE_NEW[type_]
    if expected is None:
        assert realizer.replace_on is None
        return
    assert realizer.replace_on == expected
    # Every ForceNew input is one the realizer accepts (an input it refuses never changes).
    assert expected <= realizer.supported


def _updates_in_place(realizer: Realizer) -> bool:
    if isinstance(realizer, Described) and type(realizer).update is Described.update:
        return realizer.description.update is not None
    return type(realizer).update is not Realizer.update


@pytest.mark.parametrize("type_", sorted(FORCE_NEW), ids=lambda t: t.rsplit(":", 1)[1])
def test_a_type_with_an_input_that_is_not_force_new_updates_in_place(type_: str) -> None:
    """A change of such an input never meets the base `Realizer.update` ("no in-place
    update")."""
    realizer = REALIZERS[type_]
    replaces = realizer.supported if realizer.replace_on is None else realizer.replace_on
    in_place = realizer.supported - replaces
    assert _updates_in_place(realizer) == bool(in_place)
