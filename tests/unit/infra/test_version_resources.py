"""Versions: the label each published Lambda version carries, the `live` alias with and
without a canary, and what lets a function reach its own versions; under Pulumi's mock
runtime (`pulumi.runtime.set_mocks`, through `infra.evaluate`: no engine here), whose
functions all answer version "1"."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from infra.evaluate import Evaluation, Registered
from infra.stack_loader import load_stack
from model_runtime.manifest import Manifest
from model_runtime.versions.label import VersionLabel
from stacks.schema import CanaryConfig, StackConfig

FUNCTION = "aws:lambda/function:Function"
ALIAS = "aws:lambda/alias:Alias"


def one(stack: Evaluation, type_: str, name: str) -> Registered:
    (found,) = [r for r in stack.of_type(type_) if r.name == name]
    return found


def with_canary(config: StackConfig, model: str, canary: CanaryConfig) -> StackConfig:
    models = [
        m.model_copy(update={"canary": canary}) if m.name == model else m for m in config.models
    ]
    return config.model_copy(update={"models": models})


def test_each_function_is_labelled_with_its_model_version_hash_and_gate(
    evaluations: dict[str, Evaluation], project_root: Path
) -> None:
    stack = evaluations["local"]
    for model in load_stack("local").lambda_models:
        function = one(stack, FUNCTION, f"inferstack-local-{model.name}")
        label = VersionLabel.parse(function.inputs["description"])
        manifest = Manifest.load(project_root / model.artifact_dir)
        assert label == VersionLabel.of(manifest)
        assert label is not None and label.version == manifest.version
        assert manifest.content_hash().startswith(label.sha256)
        assert function.inputs["publish"] is True


def test_without_a_canary_live_is_the_published_version(evaluations: dict[str, Evaluation]) -> None:
    alias = one(evaluations["local"], ALIAS, "inferstack-local-digits-live")
    assert alias.inputs["functionVersion"] == "1"
    assert "routingConfig" not in alias.inputs


def test_a_canary_keeps_its_live_version_and_weighs_the_new_one(
    run_program: Callable[[StackConfig, str], Evaluation],
) -> None:
    config = with_canary(load_stack("local"), "digits", CanaryConfig(live_version=3, weight=10))
    stack = run_program(config, "canary")
    alias = one(stack, ALIAS, "inferstack-canary-digits-live")
    assert alias.inputs["functionVersion"] == "3"
    assert alias.inputs["routingConfig"] == {"additionalVersionWeights": {"1": 0.1}}
    # The other models move with the deploy as before.
    other = one(stack, ALIAS, "inferstack-canary-digits-int8-live")
    assert other.inputs["functionVersion"] == "1"


def test_a_canary_on_the_version_just_published_routes_nothing(
    run_program: Callable[[StackConfig, str], Evaluation],
) -> None:
    # Nothing new published (the mock's version is 1): a version cannot weigh against itself.
    config = with_canary(load_stack("local"), "digits", CanaryConfig(live_version=1, weight=10))
    alias = one(run_program(config, "canary1"), ALIAS, "inferstack-canary1-digits-live")
    assert alias.inputs["functionVersion"] == "1"
    assert not alias.inputs.get("routingConfig")


def test_a_function_may_list_and_invoke_only_its_own_versions(
    evaluations: dict[str, Evaluation],
) -> None:
    stack = evaluations["prod"]
    for model in load_stack("prod").lambda_models:
        function = one(stack, FUNCTION, f"inferstack-prod-{model.name}")
        policy = one(stack, "aws:iam/rolePolicy:RolePolicy", f"{function.name}-versions-policy")
        statements = json.loads(policy.inputs["policy"])["Statement"]
        arn = function.outputs["arn"]
        assert statements == [
            {"Effect": "Allow", "Action": ["lambda:ListVersionsByFunction"], "Resource": [arn]},
            {"Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": [f"{arn}:*"]},
        ]
