"""The API Gateway types that update in place where the provider does (no ForceNew): a
usage plan, a resource, a deployment's description and a response's status code; the
exact calls each sends (botocore's Stubber, no network)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from localdev.deploy.aws import Clients
from localdev.deploy.realizers import REALIZERS
from localdev.deploy.realizers.base import Context, Inputs
from localdev.deploy.state import ResourceState
from localdev.errors import DeployError
from tests.support.boto import resource_state, stub_clients

USAGE_PLAN = "aws:apigateway/usagePlan:UsagePlan"
PLAN_ARN = "arn:aws:apigateway:us-east-1::/usageplans/plan1"


@pytest.fixture
def clients() -> Clients:
    return stub_clients("apigateway")


@pytest.fixture
def gateway(clients: Clients) -> Iterator[Stubber]:
    """A Stubber on the API Gateway client; every stubbed answer must be used."""
    stubber = Stubber(clients("apigateway"))
    stubber.activate()
    yield stubber
    stubber.assert_no_pending_responses()
    stubber.deactivate()


def _plan_state(inputs: dict[str, Any], tags: dict[str, str] | None = None) -> ResourceState:
    return resource_state(
        USAGE_PLAN,
        "plan1",
        {**inputs, "tagsAll": tags or {}},
        {"name": inputs.get("name", "r-1234567"), "arn": PLAN_ARN, "tagsAll": tags or {}},
    )


def test_a_usage_plan_change_is_one_patch_of_every_changed_input(
    clients: Clients, gateway: Stubber
) -> None:
    before = {
        "name": "plan",
        "description": "old",
        "productCode": "code-1",
        "apiStages": [{"apiId": "api1", "stage": "dev"}, {"apiId": "api1", "stage": "old"}],
        "throttleSettings": {"burstLimit": 5.0, "rateLimit": 10.0},
    }
    after = {
        "name": "plan-2",
        "description": "new",
        "apiStages": [{"apiId": "api1", "stage": "dev"}, {"apiId": "api2", "stage": "prod"}],
        "throttleSettings": {"burstLimit": 20.0, "rateLimit": 2.5},
        "quotaSettings": {"limit": 1000.0, "period": "DAY"},
    }
    gateway.add_response(
        "update_usage_plan",
        {"id": "plan1", "name": "plan-2"},
        {
            "usagePlanId": "plan1",
            "patchOperations": [
                {"op": "replace", "path": "/name", "value": "plan-2"},
                {"op": "replace", "path": "/description", "value": "new"},
                {"op": "remove", "path": "/productCode"},
                {"op": "remove", "path": "/apiStages", "value": "api1:old"},
                {"op": "add", "path": "/apiStages", "value": "api2:prod"},
                {"op": "replace", "path": "/throttle/burstLimit", "value": "20"},
                {"op": "replace", "path": "/throttle/rateLimit", "value": "2.5"},
                # No quota before: added, the unset offset as the provider's default.
                {"op": "add", "path": "/quota/limit", "value": "1000"},
                {"op": "add", "path": "/quota/offset", "value": "0"},
                {"op": "add", "path": "/quota/period", "value": "DAY"},
            ],
        },
    )
    realizer = REALIZERS[USAGE_PLAN]
    changed = {"name", "description", "productCode", "apiStages", "throttleSettings"}
    realized = realizer.update(
        Context(clients, "r", {}),
        Inputs(after),
        _plan_state(before),
        changed | {"quotaSettings"},
    )
    assert realized.id == "plan1"
    assert realized.outputs == {"name": "plan-2", "arn": PLAN_ARN, "tagsAll": {}}


def test_removed_usage_plan_limits_are_removed_whole(clients: Clients, gateway: Stubber) -> None:
    before = {
        "name": "plan",
        "throttleSettings": {"burstLimit": 5.0, "rateLimit": 10.0},
        "quotaSettings": {"limit": 1000.0, "offset": 0.0, "period": "DAY"},
    }
    gateway.add_response(
        "update_usage_plan",
        {"id": "plan1", "name": "plan"},
        {
            "usagePlanId": "plan1",
            "patchOperations": [
                {"op": "remove", "path": "/throttle"},
                {"op": "remove", "path": "/quota"},
            ],
        },
    )
    REALIZERS[USAGE_PLAN].update(
        Context(clients, "r", {}),
        Inputs({"name": "plan"}),
        _plan_state(before),
        {"throttleSettings", "quotaSettings"},
    )


def test_a_usage_plan_whose_tags_alone_change_is_retagged(
    clients: Clients, gateway: Stubber
) -> None:
    gateway.add_response(
        "get_usage_plan", {"id": "plan1", "name": "plan"}, {"usagePlanId": "plan1"}
    )
    gateway.add_response("untag_resource", {}, {"resourceArn": PLAN_ARN, "tagKeys": ["gone"]})
    gateway.add_response("tag_resource", {}, {"resourceArn": PLAN_ARN, "tags": {"team": "ml"}})
    realized = REALIZERS[USAGE_PLAN].update(
        Context(clients, "r", {"team": "ml"}),
        Inputs({"name": "plan"}),
        _plan_state({"name": "plan"}, tags={"gone": "x"}),
        {"tagsAll"},
    )
    assert realized.outputs["tagsAll"] == {"team": "ml"}


def test_a_usage_plans_product_code_is_patched_after_the_create(
    clients: Clients, gateway: Stubber
) -> None:
    gateway.add_response(
        "create_usage_plan",
        {"id": "plan1", "name": "plan"},
        {"name": "plan", "description": "", "apiStages": [], "tags": {}},
    )
    gateway.add_response(
        "update_usage_plan",
        {"id": "plan1", "name": "plan"},
        {
            "usagePlanId": "plan1",
            "patchOperations": [{"op": "add", "path": "/productCode", "value": "code-1"}],
        },
    )
    created = REALIZERS[USAGE_PLAN].create(
        Context(clients, "r", {}), Inputs({"name": "plan", "productCode": "code-1"})
    )
    assert created.id == "plan1"


def test_per_method_throttles_of_a_usage_plan_stage_are_refused(clients: Clients) -> None:
    stages = [{"apiId": "api1", "stage": "dev", "throttles": [{"path": "/x/GET"}]}]
    with pytest.raises(DeployError, match="throttles"):
        REALIZERS[USAGE_PLAN].create(
            Context(clients, "r", {}), Inputs({"name": "plan", "apiStages": stages})
        )


def test_a_quota_without_its_period_is_refused(clients: Clients) -> None:
    with pytest.raises(DeployError, match="period"):
        REALIZERS[USAGE_PLAN].update(
            Context(clients, "r", {}),
            Inputs({"name": "plan", "quotaSettings": {"limit": 5.0}}),
            _plan_state({"name": "plan"}),
            {"quotaSettings"},
        )


def test_a_resource_moves_by_patch_and_keeps_its_id(clients: Clients, gateway: Stubber) -> None:
    resource = "aws:apigateway/resource:Resource"
    gateway.add_response(
        "update_resource",
        {"id": "res1", "path": "/v2/predict"},
        {
            "restApiId": "api1",
            "resourceId": "res1",
            "patchOperations": [
                {"op": "replace", "path": "/pathPart", "value": "predict"},
                {"op": "replace", "path": "/parentId", "value": "v2"},
            ],
        },
    )
    old = resource_state(
        resource,
        "res1",
        {"restApi": "api1", "parentId": "root", "pathPart": "infer"},
        {"path": "/infer"},
    )
    realized = REALIZERS[resource].update(
        Context(clients, "r", {}),
        Inputs({"restApi": "api1", "parentId": "v2", "pathPart": "predict"}),
        old,
        {"parentId", "pathPart"},
    )
    assert realized.id == "res1"
    assert realized.outputs == {"path": "/v2/predict"}


def test_a_deployments_description_is_patched(clients: Clients, gateway: Stubber) -> None:
    deployment = "aws:apigateway/deployment:Deployment"
    gateway.add_response(
        "update_deployment",
        {"id": "dep1", "description": "new"},
        {
            "restApiId": "api1",
            "deploymentId": "dep1",
            "patchOperations": [{"op": "replace", "path": "/description", "value": "new"}],
        },
    )
    old = resource_state(deployment, "dep1", {"restApi": "api1", "description": "old"}, {})
    realized = REALIZERS[deployment].update(
        Context(clients, "r", {}),
        Inputs({"restApi": "api1", "description": "new"}),
        old,
        {"description"},
    )
    assert realized.id == "dep1"


def test_an_integration_responses_new_status_code_replaces_the_old_one(
    clients: Clients, gateway: Stubber
) -> None:
    """Not ForceNew, so an update; but the status code is part of the address: the
    response under the old code is deleted, then the new one put."""
    integration_response = "aws:apigateway/integrationResponse:IntegrationResponse"
    where = {"restApiId": "api1", "resourceId": "res1", "httpMethod": "POST"}
    gateway.add_response("delete_integration_response", {}, {**where, "statusCode": "200"})
    gateway.add_response(
        "put_integration_response",
        {"statusCode": "201"},
        {**where, "statusCode": "201", "responseParameters": {}, "responseTemplates": {}},
    )
    address = {"restApi": "api1", "resourceId": "res1", "httpMethod": "POST"}
    old = resource_state(
        integration_response, "agir-api1-res1-POST-200", {**address, "statusCode": "200"}, {}
    )
    realized = REALIZERS[integration_response].update(
        Context(clients, "r", {}), Inputs({**address, "statusCode": "201"}), old, {"statusCode"}
    )
    assert realized.id == "agir-api1-res1-POST-201"


def test_an_integration_is_replaced_old_one_first() -> None:
    """A new type keeps the integration's address: the old one must go before the new one
    is put, or deleting it afterwards would delete the new one."""
    assert REALIZERS["aws:apigateway/integration:Integration"].delete_before_replace
