"""The REST API's routes on LocalStack as the model set changes: a stack of two models
with CORS, then one model removed and `up` again: its routes answer 404 while the
other's still answer 200 (the deployment follows the OpenAPI body). `down` resets the
account's API Gateway CloudWatch role, as pulumi-aws v7 does.

The tests run in file order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from infra.stack_loader import load_stack
from localdev.deploy import Summary, down, up
from stacks.schema import Cors, LambdaConfig, ModelConfig, StackConfig
from tests.support.deploy import aws, json_error, leftovers, stage_root

STACK = "t-routes"
ORIGIN = "https://app.example.com"
KEPT, REMOVED = "digits", "digits-int8"


def routes_config(models: list[str]) -> StackConfig:
    local = load_stack("local")
    delivery = {KEPT: "layer", REMOVED: "s3"}
    return local.model_copy(
        update={
            "models": [
                ModelConfig(
                    name=name, delivery=delivery[name], lambda_=LambdaConfig(memory_mb=1024)
                )
                for name in models
            ],
            "api": local.api.model_copy(update={"cors": Cors(allow_origin=ORIGIN)}),
        }
    )


@dataclass
class Deployed:
    root: Path
    summary: Summary
    url: str


@pytest.fixture(scope="module")
def deployed(
    endpoint: str, digits_dir: Path, digits_int8_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    config = routes_config([KEPT, REMOVED])
    artifacts = {KEPT: digits_dir, REMOVED: digits_int8_dir}
    root = stage_root(tmp_path_factory.mktemp(STACK) / "root", config, artifacts)
    summary = up(STACK, config=config, root=root)
    try:
        yield Deployed(root, summary, str(summary.outputs["url"]))
    finally:
        down(STACK, root=root)


@pytest.fixture(scope="module")
def http(deployed: Deployed) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=deployed.url, timeout=60.0) as client:
        yield client


def test_every_models_routes_answer(http: httpx.Client) -> None:
    for model in (KEPT, REMOVED):
        assert http.get(f"/v2/models/{model}/ready").status_code == 200, model
        assert http.get(f"/v2/models/{model}").json()["name"] == model
    assert http.get("/v2/health/ready").json() == {"ready": True}


def test_an_unknown_route_is_the_stacks_404(http: httpx.Client) -> None:
    # The body's gateway responses are applied (LocalStack's import alone skips them).
    response = http.get("/v2/models/no-such-model/ready")
    assert response.status_code == 404
    assert set(json_error(response)) <= {"error", "message"}


def test_a_cors_preflight_is_answered_by_api_gateway(http: httpx.Client) -> None:
    response = http.options(f"/v2/models/{KEPT}/infer", headers={"origin": ORIGIN})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["access-control-allow-methods"] == "GET,POST,OPTIONS"
    # And the app's own answers carry the origin too.
    ready = http.get(f"/v2/models/{KEPT}/ready", headers={"origin": ORIGIN})
    assert ready.headers["access-control-allow-origin"] == ORIGIN


def test_a_removed_models_routes_answer_404_and_the_rest_200(
    deployed: Deployed, http: httpx.Client
) -> None:
    config = routes_config([KEPT])
    summary = up(STACK, config=config, root=deployed.root)
    prefix = f"inferstack-{STACK}"
    # The routes are one input of the REST API; the deployment follows them.
    assert f"{prefix}-api" in summary.names("update")
    assert f"{prefix}-api-deployment" in summary.names("replace")
    assert f"{prefix}-{REMOVED}" in summary.names("delete")
    for path in (f"/v2/models/{REMOVED}", f"/v2/models/{REMOVED}/ready"):
        response = http.get(path)
        assert response.status_code == 404, (path, response.text)
    assert http.post(f"/v2/models/{REMOVED}/infer", json={}).status_code == 404
    assert http.get(f"/v2/models/{KEPT}/ready").status_code == 200
    assert http.get("/v2/health/live").status_code == 200
    # Unchanged routes are no change: `up` again leaves the API and its deployment alone.
    again = up(STACK, config=config, root=deployed.root)
    assert again.changed == 0


def test_down_resets_the_account_logging_role_and_leaves_nothing(
    deployed: Deployed, endpoint: str
) -> None:
    gateway = aws("apigateway", endpoint)
    role = gateway.get_account().get("cloudwatchRoleArn")
    assert role and f"inferstack-{STACK}-api-logging-role" in role
    down(STACK, root=deployed.root)
    assert gateway.get_account().get("cloudwatchRoleArn", "") == ""
    layers = {c.name for c in deployed.summary.changes if c.type.startswith("aws:lambda/layer")}
    left = leftovers(endpoint, STACK, layers)
    assert left.empty, left
