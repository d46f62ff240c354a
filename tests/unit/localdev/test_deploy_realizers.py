"""The realizers and `status` against real botocore clients with stubbed answers (botocore's
Stubber: no network): the calls a description makes, and what counts as missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from localdev.deploy import engine
from localdev.deploy.aws import Clients, ProviderConfig
from localdev.deploy.realizers import REALIZERS
from localdev.deploy.realizers.base import Context, Inputs
from localdev.deploy.state import ResourceState, StackState, state_path
from localdev.errors import DeployError
from tests.support.boto import stub_clients

ENDPOINT = "http://127.0.0.1:4566"
PROVIDER = "urn:pulumi:t::p::pulumi:providers:aws::local"
ALIAS_ARN = "arn:aws:lambda:us-east-1:000000000000:function:f:live"


@pytest.fixture
def clients() -> Clients:
    services = ("apigateway", "iam", "lambda", "logs", "s3", "sts")
    return stub_clients(*services)


@pytest.fixture
def stubs(clients: Clients) -> Iterator[dict[str, Stubber]]:
    """A Stubber on each of `clients`' boto3 clients; every stubbed answer must be used."""
    stubbers = {name: Stubber(clients(name)) for name in ("apigateway", "iam", "lambda", "s3")}
    for stubber in stubbers.values():
        stubber.activate()
    yield stubbers
    for stubber in stubbers.values():
        stubber.assert_no_pending_responses()
        stubber.deactivate()


def _state(type_: str, id_: str, inputs: dict[str, Any] | None = None) -> ResourceState:
    return ResourceState(
        urn=f"urn:pulumi:t::p::{type_}::r",
        type=type_,
        name="r",
        id=id_,
        provider=PROVIDER,
        inputs=inputs or {},
        inputs_hash="",
        outputs={},
    )


# type, its state, the stubbed service and call, what the call must be asked, the code
# that service answers for a resource that is not there.
CASES = [
    ("aws:iam/role:Role", "role-1", {}, "iam", "get_role", {"RoleName": "role-1"}, "NoSuchEntity"),
    (
        "aws:apigateway/restApi:RestApi",
        "api1",
        {},
        "apigateway",
        "get_rest_api",
        {"restApiId": "api1"},
        "NotFoundException",
    ),
    (
        "aws:apigateway/resource:Resource",
        "res1",
        {"restApi": "api1"},
        "apigateway",
        "get_resource",
        {"restApiId": "api1", "resourceId": "res1"},
        "NotFoundException",
    ),
    (
        "aws:lambda/alias:Alias",
        ALIAS_ARN,
        {"functionName": "f", "name": "live"},
        "lambda",
        "get_alias",
        {"FunctionName": "f", "Name": "live"},
        "ResourceNotFoundException",
    ),
    ("aws:s3/bucket:Bucket", "b1", {}, "s3", "head_bucket", {"Bucket": "b1"}, "404"),
    (
        "aws:s3/bucketPolicy:BucketPolicy",
        "b1",
        {"bucket": "b1"},
        "s3",
        "get_bucket_policy",
        {"Bucket": "b1"},
        "NoSuchBucketPolicy",
    ),
]
IDS = [case[0].rsplit(":", 1)[1] for case in CASES]


@pytest.mark.parametrize(
    ("type_", "id_", "inputs", "service", "call", "params", "code"), CASES, ids=IDS
)
def test_a_not_found_code_means_missing(
    clients: Clients,
    stubs: dict[str, Stubber],
    type_: str,
    id_: str,
    inputs: dict[str, Any],
    service: str,
    call: str,
    params: dict[str, Any],
    code: str,
) -> None:
    stubs[service].add_client_error(
        call, service_error_code=code, http_status_code=404, expected_params=params
    )
    assert engine.is_present(REALIZERS[type_], clients, _state(type_, id_, inputs)) is False


@pytest.mark.parametrize(
    ("type_", "id_", "inputs", "service", "call", "params", "code"), CASES, ids=IDS
)
def test_any_other_error_names_the_resource_and_the_code_and_is_not_missing(
    clients: Clients,
    stubs: dict[str, Stubber],
    type_: str,
    id_: str,
    inputs: dict[str, Any],
    service: str,
    call: str,
    params: dict[str, Any],
    code: str,
) -> None:
    stubs[service].add_client_error(
        call, service_error_code="AccessDenied", http_status_code=403, expected_params=params
    )
    with pytest.raises(DeployError) as caught:
        engine.is_present(REALIZERS[type_], clients, _state(type_, id_, inputs))
    assert str(caught.value) == (
        f"cannot tell whether {type_} r ({id_}) exists: AWS error AccessDenied"
    )


def test_an_answer_means_present(clients: Clients, stubs: dict[str, Stubber]) -> None:
    stubs["iam"].add_response(
        "get_role",
        {
            "Role": {
                "Path": "/",
                "RoleName": "role-1",
                "RoleId": "AROA0000000000000000",
                "Arn": "arn:aws:iam::000000000000:role/role-1",
                "CreateDate": "2024-01-01T00:00:00Z",
            }
        },
        {"RoleName": "role-1"},
    )
    role = REALIZERS["aws:iam/role:Role"]
    assert engine.is_present(role, clients, _state(role.type, "role-1")) is True


def _stack_with(tmp_path: Path, resource: ResourceState) -> None:
    config = ProviderConfig("us-east-1", {"iam": ENDPOINT}, "test", "test")
    StackState("t", resources=[resource], providers={PROVIDER: config.to_json()}).save(
        state_path(tmp_path, "t")
    )


def test_status_reports_missing_unknown_or_fails(
    tmp_path: Path, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stack_with(tmp_path, _state("aws:iam/role:Role", "role-1"))
    monkeypatch.setattr(engine, "reachable", lambda _endpoint: True)
    monkeypatch.setattr(engine, "Clients", lambda _config: clients)
    with Stubber(clients("iam")) as stub:
        stub.add_client_error("get_role", service_error_code="NoSuchEntity", http_status_code=404)
        current = engine.status("t", root=tmp_path)
        assert [resource.present for resource in current.resources] == [False]
        assert [resource.name for resource in current.missing] == ["r"]

        stub.add_client_error("get_role", service_error_code="AccessDenied", http_status_code=403)
        with pytest.raises(DeployError, match=r"aws:iam/role:Role r .*AWS error AccessDenied"):
            engine.status("t", root=tmp_path)
        stub.assert_no_pending_responses()


def test_an_endpoint_that_stops_answering_makes_status_unknown(
    tmp_path: Path, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stack_with(tmp_path, _state("aws:iam/role:Role", "role-1"))
    monkeypatch.setattr(engine, "reachable", lambda _endpoint: True)
    monkeypatch.setattr(engine, "Clients", lambda _config: clients)

    def unreachable(*_args: Any) -> bool:
        raise EndpointConnectionError(endpoint_url=ENDPOINT)

    monkeypatch.setattr(REALIZERS["aws:iam/role:Role"], "exists", unreachable)
    current = engine.status("t", root=tmp_path)
    assert [resource.present for resource in current.resources] == [None]
    assert current.missing == []


def _where(**extra: Any) -> dict[str, Any]:
    return {"restApiId": "api1", "resourceId": "res1", "httpMethod": "GET", **extra}


def test_a_described_put_is_its_own_update(clients: Clients, stubs: dict[str, Stubber]) -> None:
    integration = REALIZERS["aws:apigateway/integration:Integration"]
    inputs = {
        "restApi": "api1",
        "resourceId": "res1",
        "httpMethod": "GET",
        "type": "AWS_PROXY",
        "integrationHttpMethod": "POST",
        "uri": "arn:aws:apigateway:us-east-1:lambda:path/f",
        "timeoutMilliseconds": 29000.0,
    }
    wanted = _where(
        type="AWS_PROXY",
        integrationHttpMethod="POST",
        uri="arn:aws:apigateway:us-east-1:lambda:path/f",
        timeoutInMillis=29000,
        requestTemplates={},
        requestParameters={},
        cacheKeyParameters=[],
    )
    for _ in range(2):
        stubs["apigateway"].add_response("put_integration", {}, wanted)
    ctx = Context(clients, "r", {})
    created = integration.create(ctx, Inputs(inputs))
    assert created.id == "agi-api1-res1-GET"
    old = _state(integration.type, created.id, inputs)
    assert integration.update(ctx, Inputs(inputs), old, {"uri"}).id == created.id
    assert integration.container(old) == "apigateway:restapi:api1"


def test_a_method_response_is_deleted_before_it_is_put_again(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    response = REALIZERS["aws:apigateway/methodResponse:MethodResponse"]
    inputs = {"restApi": "api1", "resourceId": "res1", "httpMethod": "GET", "statusCode": "200"}
    gateway = stubs["apigateway"]
    gateway.add_response("delete_method_response", {}, _where(statusCode="200"))
    gateway.add_response(
        "put_method_response",
        {},
        _where(statusCode="200", responseParameters={}, responseModels={}),
    )
    old = _state(response.type, "agmr-api1-res1-GET-200", inputs)
    updated = response.update(Context(clients, "r", {}), Inputs(inputs), old, {"responseModels"})
    assert updated.id == "agmr-api1-res1-GET-200"


def test_an_alias_is_created_and_updated_by_the_same_arguments(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    alias = REALIZERS["aws:lambda/alias:Alias"]
    inputs = {"functionName": "f", "name": "live", "functionVersion": "3"}
    wanted = {
        "FunctionName": "f",
        "Name": "live",
        "FunctionVersion": "3",
        "Description": "",
        "RoutingConfig": {"AdditionalVersionWeights": {}},
    }
    stubs["lambda"].add_response("create_alias", {"AliasArn": ALIAS_ARN}, wanted)
    stubs["lambda"].add_response("update_alias", {"AliasArn": ALIAS_ARN}, wanted)
    ctx = Context(clients, "r", {})
    created = alias.create(ctx, Inputs(inputs))
    assert created.id == ALIAS_ARN
    assert created.outputs["invokeArn"].endswith(f"/functions/{ALIAS_ARN}/invocations")
    updated = alias.update(ctx, Inputs(inputs), _state(alias.type, ALIAS_ARN, inputs), {"x"})
    assert updated == created


def test_an_alias_routes_by_its_weights_and_an_update_without_them_removes_them(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    alias = REALIZERS["aws:lambda/alias:Alias"]
    # As the engine hands them over: camelCase keys, the map's keys as given.
    routed = {
        "functionName": "f",
        "name": "live",
        "functionVersion": "4",
        "description": "canary",
        "routingConfig": {"additionalVersionWeights": {"5": 0.1}},
    }
    plain = {key: value for key, value in routed.items() if key != "routingConfig"}
    named = {"FunctionName": "f", "Name": "live", "FunctionVersion": "4", "Description": "canary"}
    stubs["lambda"].add_response(
        "create_alias",
        {"AliasArn": ALIAS_ARN},
        {**named, "RoutingConfig": {"AdditionalVersionWeights": {"5": 0.1}}},
    )
    stubs["lambda"].add_response(
        "update_alias",
        {"AliasArn": ALIAS_ARN},
        {**named, "RoutingConfig": {"AdditionalVersionWeights": {}}},
    )
    ctx = Context(clients, "r", {})
    assert "routingConfig" in alias.supported
    assert alias.replace_on is not None and "routingConfig" not in alias.replace_on
    alias.create(ctx, Inputs(routed))
    old = _state(alias.type, ALIAS_ARN, routed)
    assert alias.update(ctx, Inputs(plain), old, {"routingConfig"}).id == ALIAS_ARN


def test_a_delete_of_what_is_gone_is_fine_and_other_errors_propagate(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    resource = REALIZERS["aws:apigateway/resource:Resource"]
    old = _state(resource.type, "res1", {"restApi": "api1"})
    ctx = Context(clients, "r", {})
    gateway = stubs["apigateway"]
    gateway.add_client_error("delete_resource", "NotFoundException", http_status_code=404)
    resource.delete(ctx, old)
    gateway.add_client_error("delete_resource", "TooManyRequestsException", http_status_code=429)
    with pytest.raises(ClientError, match="TooManyRequestsException"):
        resource.delete(ctx, old)


def test_a_default_gateway_response_is_not_ours(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    response = REALIZERS["aws:apigateway/response:Response"]
    old = _state(
        response.type, "aggr-api1-DEFAULT_5XX", {"restApiId": "api1", "responseType": "DEFAULT_5XX"}
    )
    for default in (True, False):
        stubs["apigateway"].add_response(
            "get_gateway_response",
            {"responseType": "DEFAULT_5XX", "defaultResponse": default},
            {"restApiId": "api1", "responseType": "DEFAULT_5XX"},
        )
    ctx = Context(clients, "r", {})
    assert response.exists(ctx, old) is False
    assert response.exists(ctx, old) is True


def test_a_bucket_that_is_not_empty_is_named_by_its_code(
    clients: Clients, stubs: dict[str, Stubber]
) -> None:
    bucket = REALIZERS["aws:s3/bucket:Bucket"]
    stubs["s3"].add_client_error("delete_bucket", "BucketNotEmpty", http_status_code=409)
    with pytest.raises(DeployError, match="bucket b1 is not empty and force_destroy is off"):
        bucket.delete(Context(clients, "r", {}), _state(bucket.type, "b1"))
    stubs["s3"].add_client_error("delete_bucket", "NoSuchBucket", http_status_code=404)
    bucket.delete(Context(clients, "r", {}), _state(bucket.type, "b1"))
