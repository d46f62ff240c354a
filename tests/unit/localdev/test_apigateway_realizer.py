"""The API Gateway realizers where they differ from a plain create/get/delete: a REST API
declared from an OpenAPI body, and the account setting's delete (botocore's Stubber, no
network)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from localdev.deploy.aws import Clients
from localdev.deploy.realizers import REALIZERS
from localdev.deploy.realizers.base import Context, Inputs
from localdev.errors import DeployError
from tests.support.boto import resource_state, stub_clients

REST_API = "aws:apigateway/restApi:RestApi"
ACCOUNT = "aws:apigateway/account:Account"
BODY = json.dumps(
    {
        "openapi": "3.0.1",
        "info": {"title": "from-the-document", "version": "1"},
        "paths": {},
        "x-amazon-apigateway-gateway-responses": {
            "MISSING_AUTHENTICATION_TOKEN": {
                "statusCode": "404",
                "responseTemplates": {"application/json": '{"error": "no such route"}'},
            }
        },
    }
)


@pytest.fixture
def clients() -> Clients:
    return stub_clients("apigateway", "sts")


@pytest.fixture
def gateway(clients: Clients) -> Iterator[Stubber]:
    """A Stubber on the API Gateway client; every stubbed answer must be used. (STS is
    stubbed too, where the outputs' ARNs ask who the account is.)"""
    stubber = Stubber(clients("apigateway"))
    sts = Stubber(clients("sts"))
    sts.add_response("get_caller_identity", {"Account": "000000000000"}, {})
    stubber.activate()
    sts.activate()
    yield stubber
    stubber.assert_no_pending_responses()
    stubber.deactivate()
    sts.deactivate()


def _expect_body_put(gateway: Stubber, stale: list[str]) -> None:
    """The document put whole, then its gateway responses (`stale` ones reset)."""
    gateway.add_response(
        "put_rest_api", {}, {"restApiId": "api1", "mode": "overwrite", "body": BODY.encode()}
    )
    items = [{"responseType": "DEFAULT_4XX", "defaultResponse": True}]
    items += [{"responseType": kind, "defaultResponse": False} for kind in stale]
    gateway.add_response(
        "get_gateway_responses", {"items": items}, {"restApiId": "api1", "limit": 500}
    )
    for kind in stale:
        gateway.add_response(
            "delete_gateway_response", {}, {"restApiId": "api1", "responseType": kind}
        )
    gateway.add_response(
        "put_gateway_response",
        {},
        {
            "restApiId": "api1",
            "responseType": "MISSING_AUTHENTICATION_TOKEN",
            "statusCode": "404",
            "responseParameters": {},
            "responseTemplates": {"application/json": '{"error": "no such route"}'},
        },
    )


def _api(name: str, root: str) -> dict[str, Any]:
    return {"id": "api1", "name": name, "description": "d", "rootResourceId": root}


def test_a_rest_api_with_a_body_is_put_whole_after_it_is_created(
    clients: Clients, gateway: Stubber
) -> None:
    realizer = REALIZERS[REST_API]
    inputs = {"name": "inferstack-t-api", "description": "d", "body": BODY}
    gateway.add_response(
        "create_rest_api",
        _api("inferstack-t-api", "root0"),
        {
            "name": "inferstack-t-api",
            "description": "d",
            "endpointConfiguration": {"types": ["EDGE"]},
            "binaryMediaTypes": [],
            "tags": {},
        },
    )
    _expect_body_put(gateway, stale=[])
    # The document renamed the API (info.title): the resource's own name wins.
    gateway.add_response("get_rest_api", _api("from-the-document", "root1"), {"restApiId": "api1"})
    gateway.add_response(
        "update_rest_api",
        {},
        {
            "restApiId": "api1",
            "patchOperations": [{"op": "replace", "path": "/name", "value": "inferstack-t-api"}],
        },
    )
    gateway.add_response("get_rest_api", _api("inferstack-t-api", "root1"), {"restApiId": "api1"})
    realized = realizer.create(Context(clients, "r", {}), Inputs(inputs))
    assert realized.id == "api1"
    # Read back after the put: the import may give the API a new root resource.
    assert realized.outputs["rootResourceId"] == "root1"


def test_a_changed_body_is_put_again_and_stale_gateway_responses_reset(
    clients: Clients, gateway: Stubber
) -> None:
    realizer = REALIZERS[REST_API]
    inputs = {"name": "inferstack-t-api", "description": "d", "body": BODY}
    old = resource_state(
        REST_API, "api1", {**inputs, "body": "{}"}, {"name": "inferstack-t-api", "arn": "a"}
    )
    _expect_body_put(gateway, stale=["THROTTLED"])
    gateway.add_response("get_rest_api", _api("inferstack-t-api", "root1"), {"restApiId": "api1"})
    gateway.add_response("get_rest_api", _api("inferstack-t-api", "root1"), {"restApiId": "api1"})
    realizer.update(Context(clients, "r", {}), Inputs(inputs), old, {"body"})


def test_removing_a_body_is_refused(clients: Clients) -> None:
    realizer = REALIZERS[REST_API]
    old = resource_state(REST_API, "api1", {"name": "n", "body": BODY}, {"name": "n", "arn": "a"})
    with pytest.raises(DeployError, match="removing a REST API's body is not realized by the"):
        realizer.update(Context(clients, "r", {}), Inputs({"name": "n"}), old, {"body"})


@pytest.mark.parametrize("input_", ["endpointConfiguration", "binaryMediaTypes"])
def test_a_change_the_engine_cannot_patch_is_refused_not_ignored(
    clients: Clients, input_: str
) -> None:
    realizer = REALIZERS[REST_API]
    old = resource_state(REST_API, "api1", {"name": "n"}, {"name": "n", "arn": "a"})
    with pytest.raises(DeployError, match=f"changing a REST API's {input_} in place is not"):
        realizer.update(Context(clients, "r", {}), Inputs({"name": "n"}), old, {input_})


def test_deleting_the_account_setting_resets_the_cloudwatch_role(
    clients: Clients, gateway: Stubber
) -> None:
    """As pulumi-aws v7: whoever wrote the role last, a delete leaves none."""
    realizer = REALIZERS[ACCOUNT]
    role = {"cloudwatchRoleArn": "arn:aws:iam::1:role/r"}
    old = resource_state(ACCOUNT, "api-gateway-account", role, {})
    gateway.add_response(
        "update_account",
        {},
        {"patchOperations": [{"op": "replace", "path": "/cloudwatchRoleArn", "value": ""}]},
    )
    realizer.delete(Context(clients, "r", {}), old)
    assert "resetOnDelete" not in realizer.supported  # not an input in v7
