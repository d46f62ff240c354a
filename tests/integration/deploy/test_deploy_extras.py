"""A stack with what LocalStack community cannot run and what it can: autoscaled
provisioned concurrency (the provisioned concurrency is realized, Application Auto
Scaling is declared-not-emulated), a GPU endpoint on Kubernetes (no cluster: declared,
not emulated), and API keys (API Gateway enforces them)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from infra.evaluate import evaluate
from infra.program import define_stack
from infra.stack_loader import load_stack
from localdev.deploy import Summary, down, status, up
from stacks.schema import (
    ApiKeys,
    GpuConfig,
    KubernetesConfig,
    LambdaConfig,
    ModelConfig,
    ProvisionedConcurrency,
    Quota,
    StackConfig,
)
from tests.support.deploy import aws, leftovers, stage_root

STACK = "t-extras"


def extras_config() -> StackConfig:
    local = load_stack("local")
    function = LambdaConfig(
        memory_mb=1024, reserved_concurrency=2, provisioned=ProvisionedConcurrency(min=1, max=2)
    )
    return local.model_copy(
        update={
            "models": [
                ModelConfig(name="digits", delivery="layer", lambda_=function),
                ModelConfig(name="digits-int8", gpu=GpuConfig(image="example/inferstack-gpu:1.0")),
            ],
            "kubernetes": KubernetesConfig(),
            "api": local.api.model_copy(update={"keys": ApiKeys(clients=["tester"])}),
        }
    )


@dataclass(frozen=True)
class Deployed:
    root: Path
    config: StackConfig
    summary: Summary


@pytest.fixture(scope="module")
def deployed(
    endpoint: str,
    digits_dir: Path,
    digits_int8_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployed]:
    config = extras_config()
    artifacts = {"digits": digits_dir, "digits-int8": digits_int8_dir}
    root = stage_root(tmp_path_factory.mktemp(STACK) / "root", config, artifacts)
    summary = up(STACK, config=config, root=root)
    try:
        yield Deployed(root, config, summary)
    finally:
        down(STACK, root=root)


def test_what_localstack_cannot_run_is_listed_never_dropped(deployed: Deployed) -> None:
    declared = evaluate(lambda: define_stack(deployed.config, STACK, deployed.root), STACK)
    unrealizable = {
        (r.type, r.name)
        for r in declared.resources
        if r.type.startswith(("aws:appautoscaling/", "kubernetes:"))
    }
    assert {t for t, _ in unrealizable} >= {
        "aws:appautoscaling/target:Target",
        "aws:appautoscaling/policy:Policy",
        "kubernetes:apps/v1:Deployment",
        "kubernetes:core/v1:Service",
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    }
    listed = {(item.type, item.name) for item in deployed.summary.not_emulated}
    assert listed == unrealizable
    realized = {(change.type, change.name) for change in deployed.summary.changes}
    assert not listed & realized
    # Every other declared resource was realized.
    assert (
        realized
        == {
            (r.type, r.name)
            for r in declared.resources
            if r.custom and not r.type.startswith("pulumi:providers:")
        }
        - unrealizable
    )
    # And the state keeps saying so.
    kept = {(i.type, i.name) for i in status(STACK, root=deployed.root).not_emulated}
    assert kept == listed


def test_provisioned_concurrency_is_realized(deployed: Deployed, endpoint: str) -> None:
    config = aws("lambda", endpoint).get_provisioned_concurrency_config(
        FunctionName=f"inferstack-{STACK}-digits", Qualifier="live"
    )
    assert config["Status"] == "READY"
    assert config["RequestedProvisionedConcurrentExecutions"] == 1


def test_a_request_without_the_api_key_is_403(deployed: Deployed) -> None:
    url = f"{deployed.summary.outputs['url']}/v2/models/digits/ready"
    key = deployed.summary.outputs["apiKeys"]["tester"]
    with httpx.Client(timeout=60.0) as http:
        missing = http.get(url)
        wrong = http.get(url, headers={"x-api-key": "not-the-key"})
        right = http.get(url, headers={"x-api-key": key})
    for response in (missing, wrong):
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("application/json")
    assert right.status_code == 200, right.text


def test_a_usage_plan_change_updates_the_plan_in_place(deployed: Deployed, endpoint: str) -> None:
    """A quota added: the plan is PATCHed (as the provider does, no ForceNew input
    changed), keeps its id and its keys, and the key still gets through."""
    plan_type = "aws:apigateway/usagePlan:UsagePlan"

    def plan_id() -> str:
        (plan,) = [r for r in status(STACK, root=deployed.root).resources if r.type == plan_type]
        return plan.id

    before = plan_id()
    api = deployed.config.api
    assert api.keys is not None
    keys = api.keys.model_copy(update={"quota": Quota(limit=1000, period="DAY")})
    changed = deployed.config.model_copy(update={"api": api.model_copy(update={"keys": keys})})
    again = up(STACK, config=changed, root=deployed.root)
    assert {(c.type, c.action) for c in again.changes if c.action != "same"} == {
        (plan_type, "update")
    }
    assert plan_id() == before
    quota = aws("apigateway", endpoint).get_usage_plan(usagePlanId=before)["quota"]
    assert (quota["limit"], quota["period"]) == (1000, "DAY")
    url = f"{again.outputs['url']}/v2/models/digits/ready"
    key = again.outputs["apiKeys"]["tester"]
    with httpx.Client(timeout=60.0) as http:
        assert http.get(url, headers={"x-api-key": key}).status_code == 200


def test_down_leaves_nothing_behind(deployed: Deployed, endpoint: str) -> None:
    down(STACK, root=deployed.root)
    layers = {c.name for c in deployed.summary.changes if c.type.startswith("aws:lambda/layer")}
    left = leftovers(endpoint, STACK, layers)
    assert left.empty, left
