"""`find` of the types whose id the cloud chooses: what an interrupted create made is
found by listing, by the name the create chose (its auto-name's random part comes from
the context), and nothing else matches (botocore's Stubber, no network)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.stub import Stubber

from localdev.deploy.aws import Clients
from localdev.deploy.realizers import REALIZERS
from localdev.deploy.realizers.base import Context, Inputs
from tests.support.boto import stub_clients


@pytest.fixture
def clients() -> Clients:
    return stub_clients("apigateway", "lambda")


@pytest.fixture
def gateway(clients: Clients) -> Iterator[Stubber]:
    with Stubber(clients("apigateway")) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def test_a_rest_api_is_found_by_the_auto_name_its_create_chose(
    clients: Clients, gateway: Stubber
) -> None:
    ctx = Context(clients, "api", {}, suffix="abc1234")
    gateway.add_response(
        "get_rest_apis",
        {
            "items": [
                {"id": "ours", "name": "api-abc1234"},
                {"id": "another-run", "name": "api-fff0000"},
                {"id": "someone-else", "name": "api"},
            ]
        },
        {},
    )
    assert REALIZERS["aws:apigateway/restApi:RestApi"].find(ctx, Inputs({})) == {"ours"}


def test_an_api_key_is_found_by_its_explicit_name(clients: Clients, gateway: Stubber) -> None:
    ctx = Context(clients, "key", {})
    gateway.add_response(
        "get_api_keys",
        {"items": [{"id": "k1", "name": "the-key"}, {"id": "k2", "name": "the-key-2"}]},
        {"nameQuery": "the-key"},
    )
    found = REALIZERS["aws:apigateway/apiKey:ApiKey"].find(ctx, Inputs({"name": "the-key"}))
    assert found == {"k1"}


def test_every_version_of_a_layer_is_listed(clients: Clients) -> None:
    """The engine subtracts the versions listed before the publish: the rest are its."""
    arn = "arn:aws:lambda:us-east-1:000000000000:layer:model"
    with Stubber(clients("lambda")) as lam:
        lam.add_response(
            "list_layer_versions",
            {"LayerVersions": [{"LayerVersionArn": f"{arn}:1"}, {"LayerVersionArn": f"{arn}:2"}]},
            {"LayerName": "model"},
        )
        found = REALIZERS["aws:lambda/layerVersion:LayerVersion"].find(
            Context(clients, "layer", {}), Inputs({"layerName": "model"})
        )
        lam.assert_no_pending_responses()
    assert found == {f"{arn}:1", f"{arn}:2"}
