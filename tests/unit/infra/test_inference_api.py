"""The REST API as one OpenAPI body: routes follow the models, the deployment follows the
body, and API Gateway's account setting has exactly one owner per account and region.

Under Pulumi's mock runtime (through `infra.evaluate`) and on the pure body builder.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra import openapi
from infra.errors import StackConfigError
from infra.evaluate import Evaluation, evaluate
from infra.gpu_network import GpuNetwork, GpuNetworkArgs, GpuTarget, listener_port
from infra.inference_api import InferenceApi, InferenceApiArgs, ModelRoute, ServerRoute
from infra.stack_loader import available_stacks, load_stack
from stacks.schema import ApiConfig, ApiKeys, ClusterNetwork, Cors, StackConfig

Leaf = tuple[Any, ...]
ARNS: dict[str, openapi.Integration] = {
    model: openapi.LambdaIntegration(
        f"arn:aws:apigateway:us-east-1:lambda:path/functions/{model}:live/invocations"
    )
    for model in ("digits", "text")
}


def body_of(config: ApiConfig, models: list[str], default: str = "digits") -> dict[str, Any]:
    table = openapi.route_table(models, default)
    return openapi.rest_api_body("api", "description", config, table, ARNS)


def trigger_of(body: dict[str, Any]) -> str:
    return openapi.deployment_trigger(openapi.serialize(body))


def deployed(evaluation: Evaluation) -> tuple[dict[str, Any], str]:
    """The REST API's body and the deployment's trigger, as the program declared them."""
    (api,) = evaluation.of_type("aws:apigateway/restApi:RestApi")
    (deployment,) = evaluation.of_type("aws:apigateway/deployment:Deployment")
    return json.loads(api.inputs["body"]), deployment.inputs["triggers"]["body"]


# --- the route set ------------------------------------------------------------------


def test_removing_a_model_removes_its_routes_and_changes_the_deployment(
    run_program: Callable[[StackConfig, str], Evaluation],
    evaluations: dict[str, Evaluation],
) -> None:
    config = load_stack("local")
    removed = config.models[2].name
    fewer = config.model_copy(
        update={"models": [model for model in config.models if model.name != removed]}
    )
    before_body, before = deployed(evaluations["local"])
    after_body, after = deployed(run_program(fewer, "local"))
    assert after != before
    gone = {path for path in before_body["paths"] if path.startswith(f"/v2/models/{removed}")}
    assert gone == {f"/v2/models/{removed}", f"/v2/models/{removed}/{{proxy+}}"}
    assert set(after_body["paths"]) == set(before_body["paths"]) - gone
    # The same route set is the same trigger: an unchanged stack is not redeployed.
    assert deployed(run_program(config, "local"))[1] == before


def test_the_trigger_is_the_bodys_hash_in_every_stack(stack: Evaluation) -> None:
    (api,) = stack.of_type("aws:apigateway/restApi:RestApi")
    assert deployed(stack)[1] == openapi.deployment_trigger(api.inputs["body"])


def test_preflights_and_key_security_follow_the_config() -> None:
    plain = body_of(ApiConfig(), ["digits"])
    assert all(set(item) == {"x-amazon-apigateway-any-method"} for item in plain["paths"].values())
    assert "components" not in plain and "x-amazon-apigateway-api-key-source" not in plain
    cors = Cors(allow_origin="https://app.example.com", allow_headers=["content-type"])
    full = body_of(ApiConfig(cors=cors, keys=ApiKeys(clients=["a"])), ["digits"])
    for item in full["paths"].values():
        preflight = item["options"]
        assert "security" not in preflight
        (response,) = preflight["x-amazon-apigateway-integration"]["responses"].values()
        assert response["responseParameters"] == {
            "method.response.header.Access-Control-Allow-Origin": "'https://app.example.com'",
            "method.response.header.Access-Control-Allow-Methods": "'GET,POST,OPTIONS'",
            "method.response.header.Access-Control-Allow-Headers": "'content-type'",
            "method.response.header.Access-Control-Max-Age": "'600'",
        }
        # Every mapped header is declared on the method response (API Gateway checks it).
        declared = set(preflight["responses"]["204"]["headers"])
        assert {f"method.response.header.{h}" for h in declared} == set(
            response["responseParameters"]
        )
    for response in full["x-amazon-apigateway-gateway-responses"].values():
        assert response["responseParameters"] == {
            "gatewayresponse.header.Access-Control-Allow-Origin": "'https://app.example.com'"
        }


# --- the trigger is a function of every route input --------------------------------


def leaves(value: Any, path: Leaf = ()) -> Iterator[Leaf]:
    """The path to every leaf (and every dict key, as ("key", path)) of a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield ("key", *path, key)
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, (*path, index))
    else:
        yield path


def mutated(body: dict[str, Any], leaf: Leaf, replacement: str) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    if leaf and leaf[0] == "key":
        *parents, key = leaf[1:]
        holder = changed
        for part in parents:
            holder = holder[part]
        holder[f"{key}{replacement}"] = holder.pop(key)
        return changed
    *parents, last = leaf
    holder = changed
    for part in parents:
        holder = holder[part]
    old = holder[last]
    if isinstance(old, bool):
        holder[last] = not old
    elif isinstance(old, int):
        holder[last] = old + 1 + len(replacement)
    else:
        holder[last] = f"{old}{replacement}"
    return changed


FULL = body_of(
    ApiConfig(cors=Cors(allow_origin="https://app.example.com"), keys=ApiKeys(clients=["a"])),
    ["digits", "text"],
)
FULL_LEAVES = list(leaves(FULL))


@settings(max_examples=300, deadline=None)
@given(leaf=st.sampled_from(FULL_LEAVES), replacement=st.text(min_size=1, max_size=8))
def test_changing_any_field_of_the_body_changes_the_trigger(leaf: Leaf, replacement: str) -> None:
    """Methods, integrations (type, method, URI, timeout), preflight method and
    integration responses, security and gateway responses: all are fields of the body."""
    assert trigger_of(mutated(FULL, leaf, replacement)) != trigger_of(FULL)


def test_the_body_holds_every_kind_of_route_input() -> None:
    """So that the property above covers each: what used to be a Method, Integration,
    MethodResponse, IntegrationResponse or GatewayResponse resource."""
    parts = {part for leaf in FULL_LEAVES for part in leaf if isinstance(part, str)}
    assert {
        "x-amazon-apigateway-any-method",  # the proxy methods
        "options",  # the preflight methods
        "security",  # their API key requirement
        "x-amazon-apigateway-integration",  # their integrations
        "type",
        "httpMethod",
        "uri",
        "timeoutInMillis",
        "passthroughBehavior",
        "requestTemplates",
        "responses",  # method and integration responses
        "responseParameters",
        "statusCode",
        "x-amazon-apigateway-gateway-responses",
        "responseTemplates",
    } <= parts


configs = st.builds(
    ApiConfig,
    integration_timeout_s=st.integers(1, 29),
    keys=st.none() | st.just(ApiKeys(clients=["a"])),
    cors=st.none()
    | st.builds(
        Cors,
        allow_origin=st.sampled_from(["*", "https://a.example", "https://b.example"]),
        allow_headers=st.lists(st.sampled_from(["content-type", "x-api-key", "x-b"]), min_size=1),
        max_age_s=st.integers(0, 86400),
    ),
)
route_sets = st.tuples(
    st.lists(st.sampled_from(sorted(ARNS)), min_size=1, unique=True), st.sampled_from(sorted(ARNS))
).filter(lambda pair: pair[1] in pair[0])


@settings(max_examples=200, deadline=None)
@given(one=configs, other=configs, routes_one=route_sets, routes_other=route_sets)
def test_different_routes_never_share_a_trigger(
    one: ApiConfig,
    other: ApiConfig,
    routes_one: tuple[list[str], str],
    routes_other: tuple[list[str], str],
) -> None:
    first = body_of(one, *routes_one)
    second = body_of(other, *routes_other)
    assert (first == second) == (trigger_of(first) == trigger_of(second))


# --- GPU-served models: HTTP proxy routes to the model server ------------------------

SERVER = openapi.HttpIntegration(
    base_url="http://inferstack-prod-gpu-nlb-0a1b2c3d4e.elb.us-east-1.amazonaws.com:24321",
    vpc_link_id="vl0a1b2c",
)
PROXY_PARAMETER = [{"name": "proxy", "in": "path", "required": True, "schema": {"type": "string"}}]


def mixed_body(config: ApiConfig, server: openapi.HttpIntegration = SERVER) -> dict[str, Any]:
    """`digits` on Lambda (and the server-level routes), `digits-gpu` on its model server."""
    table = openapi.route_table(["digits", "digits-gpu"], "digits")
    return openapi.rest_api_body(
        "api", "description", config, table, {**ARNS, "digits-gpu": server}
    )


def test_a_model_servers_routes_proxy_http_through_the_vpc_link() -> None:
    config = ApiConfig(integration_timeout_s=20, keys=ApiKeys(clients=["a"]))
    paths = mixed_body(config)["paths"]
    exact = paths["/v2/models/digits-gpu"]["x-amazon-apigateway-any-method"]
    greedy = paths["/v2/models/digits-gpu/{proxy+}"]["x-amazon-apigateway-any-method"]
    common = {
        "type": "http_proxy",
        # The client's method goes through: the server answers wrong ones itself.
        "httpMethod": "ANY",
        "passthroughBehavior": "when_no_match",
        "timeoutInMillis": 20000,
        "connectionType": "VPC_LINK",
        "connectionId": "vl0a1b2c",
    }
    assert exact["x-amazon-apigateway-integration"] == {
        **common,
        "uri": f"{SERVER.base_url}/v2/models/digits-gpu",
    }
    assert greedy["x-amazon-apigateway-integration"] == {
        **common,
        "uri": f"{SERVER.base_url}/v2/models/digits-gpu/{{proxy}}",
        "requestParameters": {"integration.request.path.proxy": "method.request.path.proxy"},
    }
    assert greedy["parameters"] == PROXY_PARAMETER and "parameters" not in exact
    # The same API key requirement as the Lambda routes.
    for method in (exact, greedy):
        assert method["security"] == [{openapi.API_KEY_SCHEME: []}]
    unkeyed = mixed_body(ApiConfig())["paths"].values()
    assert not [item for item in unkeyed if "security" in item["x-amazon-apigateway-any-method"]]


def test_the_local_stand_in_is_proxied_without_a_vpc_link() -> None:
    local = openapi.HttpIntegration(base_url="http://127.0.0.1:18123", vpc_link_id=None)
    paths = mixed_body(ApiConfig(), local)["paths"]
    for path in ("/v2/models/digits-gpu", "/v2/models/digits-gpu/{proxy+}"):
        integration = paths[path]["x-amazon-apigateway-any-method"][
            "x-amazon-apigateway-integration"
        ]
        assert integration["type"] == "http_proxy"
        assert integration["uri"].startswith("http://127.0.0.1:18123/v2/models/digits-gpu")
        assert "connectionType" not in integration and "connectionId" not in integration


def test_lambda_routes_are_unchanged_beside_a_model_server() -> None:
    config = ApiConfig(
        cors=Cors(allow_origin="https://app.example.com"), keys=ApiKeys(clients=["a"])
    )
    alone = body_of(config, ["digits"])["paths"]
    beside = mixed_body(config)["paths"]
    assert {path: beside[path] for path in alone} == alone
    # The model server's routes get the same CORS preflight.
    assert beside["/v2/models/digits-gpu"]["options"] == alone["/v2/models/digits"]["options"]


def test_an_unreachable_model_server_answers_503_with_retry_after() -> None:
    cors = Cors(allow_origin="https://app.example.com")
    responses = mixed_body(ApiConfig(cors=cors))["x-amazon-apigateway-gateway-responses"]
    for kind in ("API_CONFIGURATION_ERROR", "INTEGRATION_FAILURE", "INTEGRATION_TIMEOUT"):
        response = responses[kind]
        assert response["statusCode"] == "503"
        assert response["responseParameters"] == {
            "gatewayresponse.header.Retry-After": "'5'",
            "gatewayresponse.header.Access-Control-Allow-Origin": "'https://app.example.com'",
        }
        (template,) = response["responseTemplates"].values()
        # A JSON body once API Gateway fills in its message.
        rendered = json.loads(template.replace("$context.error.message", "Internal server error"))
        assert rendered == {
            "error": "the model server is not reachable (starting, or not ready); retry after"
            " 5 s: Internal server error"
        }
    assert openapi.RETRY_AFTER_S == 5
    # An API of Lambda routes only keeps API Gateway's own statuses for these.
    lambda_only = body_of(ApiConfig(cors=cors), ["digits"])["x-amazon-apigateway-gateway-responses"]
    assert set(lambda_only) == {"DEFAULT_4XX", "DEFAULT_5XX", "MISSING_AUTHENTICATION_TOKEN"}


MIXED = mixed_body(
    ApiConfig(cors=Cors(allow_origin="https://app.example.com"), keys=ApiKeys(clients=["a"]))
)
MIXED_LEAVES = list(leaves(MIXED))


@settings(max_examples=200, deadline=None)
@given(leaf=st.sampled_from(MIXED_LEAVES), replacement=st.text(min_size=1, max_size=8))
def test_changing_any_field_of_a_mixed_body_changes_the_trigger(
    leaf: Leaf, replacement: str
) -> None:
    """The HTTP integrations' URIs, VPC link, request parameters and the 503 responses too."""
    assert trigger_of(mutated(MIXED, leaf, replacement)) != trigger_of(MIXED)


def test_the_apis_gpu_routes_integrate_through_the_declared_vpc_link() -> None:
    """Under mocks, wired as the program wires them: the route's connectionId is the
    VpcLink's id, its URI the model's listener on the load balancer."""

    def declare() -> dict[str, Any]:
        network = GpuNetwork(
            "inferstack-t-gpu",
            GpuNetworkArgs(
                network=ClusterNetwork(
                    vpc_id="vpc-0123456789abcdef0",
                    subnet_ids=["subnet-0123456789abcdef0"],
                    cluster_security_group_id="sg-0123456789abcdef0",
                ),
                targets=[GpuTarget("digits-gpu", "inferstack-t-digits-gpu", "digits-gpu", 60)],
            ),
        )
        api = InferenceApi(
            "inferstack-t-api",
            InferenceApiArgs(
                config=ApiConfig(keys=ApiKeys(clients=["a"])),
                routes=[
                    ModelRoute("digits", "inferstack-t-digits", "live", ARNS["digits"].invoke_arn),
                    ServerRoute(
                        "digits-gpu",
                        base_url=network.base_urls["digits-gpu"],
                        vpc_link_id=network.vpc_link_id,
                    ),
                ],
                default_model="digits",
                log_retention_days=1,
            ),
        )
        return {"url": api.url}

    evaluation = evaluate(declare, "t")
    body, _ = deployed(evaluation)
    (link,) = evaluation.of_type("aws:apigateway/vpcLink:VpcLink")
    (balancer,) = evaluation.of_type("aws:lb/loadBalancer:LoadBalancer")
    (api,) = evaluation.of_type("aws:apigateway/restApi:RestApi")
    base = f"http://{balancer.outputs['dnsName']}:{listener_port('digits-gpu')}"
    for path in ("/v2/models/digits-gpu", "/v2/models/digits-gpu/{proxy+}"):
        method = body["paths"][path]["x-amazon-apigateway-any-method"]
        integration = method["x-amazon-apigateway-integration"]
        assert (integration["connectionType"], integration["connectionId"]) == ("VPC_LINK", link.id)
        assert integration["uri"].startswith(f"{base}/v2/models/digits-gpu")
        assert method["security"] == [{openapi.API_KEY_SCHEME: []}]
    # The RestApi is updated after the link exists (its body waits for the link's id).
    assert api.depends_on(link)
    # Only the Lambda model's alias gets an invoke permission.
    (permission,) = evaluation.of_type("aws:lambda/permission:Permission")
    assert permission.inputs["function"] == "inferstack-t-digits"


# --- the account setting: one owner per account and region --------------------------

# Each test's stacks package gets a new name: imported modules stay cached by name.
PACKAGES = itertools.count()


def stack_file(target: str, manage: bool) -> str:
    return (
        "from stacks.schema import *\n\n"
        f"STACK = StackConfig(target={target}, "
        "models=[ModelConfig(name='m', lambda_=LambdaConfig())], "
        f"api=ApiConfig(manage_account_logging_role={manage}))\n"
    )


@pytest.fixture
def stacks_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """A stacks package of the given files (name -> source); returns its name."""

    def make(**files: str) -> str:
        name = f"ownerstacks{next(PACKAGES)}"
        package = tmp_path / name
        package.mkdir()
        (package / "__init__.py").write_text("")
        for stack, source in files.items():
            (package / f"{stack}.py").write_text(source)
        return name

    monkeypatch.syspath_prepend(str(tmp_path))
    return make


AWS = "AwsTarget(region='us-east-1')"


def test_two_stacks_owning_the_account_setting_are_refused(
    stacks_package: Callable[..., str],
) -> None:
    package = stacks_package(alpha=stack_file(AWS, True), beta=stack_file(AWS, True))
    for name in ("alpha", "beta"):
        with pytest.raises(StackConfigError) as caught:
            load_stack(name, package=package)
        message = str(caught.value)
        assert message.startswith("api.manage_account_logging_role: stacks alpha, beta ")
        assert "us-east-1" in message


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # One owner, one that relies on it.
        (stack_file(AWS, True), stack_file(AWS, False)),
        # Different regions, different settings.
        (stack_file(AWS, True), stack_file("AwsTarget(region='eu-west-1')", True)),
        # Different accounts, proven by allowed_account_ids.
        (
            stack_file("AwsTarget(region='us-east-1', allowed_account_ids=['111111111111'])", True),
            stack_file("AwsTarget(region='us-east-1', allowed_account_ids=['222222222222'])", True),
        ),
        # LocalStack is not an AWS account.
        (stack_file(AWS, True), stack_file("LocalStackTarget()", True)),
    ],
    ids=["one-owner", "regions", "accounts", "localstack"],
)
def test_stacks_in_different_places_may_each_own_it(
    stacks_package: Callable[..., str], first: str, second: str
) -> None:
    package = stacks_package(alpha=first, beta=second)
    for name in ("alpha", "beta"):
        load_stack(name, package=package)


def test_overlapping_allowed_accounts_are_one_account(stacks_package: Callable[..., str]) -> None:
    target = "AwsTarget(region='us-east-1', allowed_account_ids=['111111111111', '{}'])"
    package = stacks_package(
        alpha=stack_file(target.format("222222222222"), True),
        beta=stack_file(target.format("333333333333"), True),
    )
    with pytest.raises(StackConfigError, match="manage_account_logging_role: stacks alpha, beta"):
        load_stack("alpha", package=package)


def test_the_repositorys_stacks_have_one_owner_per_account_and_region(
    evaluations: dict[str, Evaluation],
) -> None:
    owners = [name for name in available_stacks() if load_stack(name).manages_account_logging_role]
    assert owners == ["local", "prod"]
    assert not evaluations["dev"].of_type("aws:apigateway/account:Account")
    # dev still writes access logs, with the role prod's account setting names.
    (stage,) = evaluations["dev"].of_type("aws:apigateway/stage:Stage")
    assert stage.inputs["accessLogSettings"]["destinationArn"]
