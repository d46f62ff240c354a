"""Defect 5 on LocalStack: after a model change, the older published Lambda version still
loads its model (the old content-addressed prefix is retained, not deleted) and answers;
`down` still leaves nothing behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from infra.stack_loader import load_stack
from localdev.deploy import down, preview, up
from localdev.deploy.state import state_path
from model_runtime.engine import Engine
from model_runtime.manifest import MANIFEST_FILE, Manifest
from stacks.schema import ModelConfig, StackConfig
from tests.support.deploy import aws, infer_event, leftovers, package, perturb_model, stage_root

STACK = "t-rollback"
FUNCTION = f"inferstack-{STACK}-digits"


def _config() -> StackConfig:
    local = load_stack("local")
    digits = next(model for model in local.models if model.name == "digits")
    # Delivered from S3 (MODEL_URI), the path whose objects a model change replaces.
    model: ModelConfig = digits.model_copy(update={"delivery": "s3"})
    return local.model_copy(update={"models": [model]})


def _invoke(lam: Any, qualifier: str, images: np.ndarray) -> np.ndarray:
    """The function version itself, with the event API Gateway would send it."""
    event = infer_event("digits", images)
    answer = lam.invoke(FunctionName=FUNCTION, Qualifier=qualifier, Payload=json.dumps(event))
    payload = json.loads(answer["Payload"].read())
    assert payload.get("statusCode") == 200, payload
    (probabilities,) = [
        np.array(o["data"]).reshape(o["shape"])
        for o in json.loads(payload["body"])["outputs"]
        if o["name"] == "probabilities"
    ]
    return probabilities


def _model_uri(lam: Any, version: str) -> str:
    config = lam.get_function_configuration(FunctionName=FUNCTION, Qualifier=version)
    return str(config["Environment"]["Variables"]["MODEL_URI"])


def test_an_older_version_still_loads_its_model_after_a_model_change(
    endpoint: str,
    digits_dir: Path,
    digits_images: np.ndarray,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    base = tmp_path_factory.mktemp(STACK)
    model_dir = Path(shutil.copytree(digits_dir, base / "models" / "digits"))
    config = _config()
    root = stage_root(base / "root", config, {"digits": model_dir})
    lam, s3 = aws("lambda", endpoint), aws("s3", endpoint)
    images = digits_images[:8]
    old_expected = Engine.load(digits_dir).infer({"image": images})["probabilities"]
    first = up(STACK, config=config, root=root)
    try:
        old_version = lam.get_alias(FunctionName=FUNCTION, Name="live")["FunctionVersion"]
        old_uri = _model_uri(lam, old_version)

        perturb_model(model_dir)
        package(config, root)
        # The preview says what the up below does, and changes nothing.
        state = state_path(root, STACK).read_bytes()
        planned = preview(STACK, config=config, root=root)
        assert state_path(root, STACK).read_bytes() == state
        assert _model_uri(lam, old_version) == old_uri
        second = up(STACK, config=config, root=root)
        # (An update that follows from a new output, the alias's new version, shows only
        # once `up` computes it, as in Pulumi's preview.)
        assert planned.names("replace") == second.names("replace")
        assert planned.names("create", "delete") == second.names("create", "delete") == set()
        new_version = lam.get_alias(FunctionName=FUNCTION, Name="live")["FunctionVersion"]
        assert new_version != old_version and _model_uri(lam, new_version) != old_uri

        # The replaced objects are dropped from the state, not deleted.
        prefix = f"inferstack-{STACK}-artifacts-digits-"
        files = [*Manifest.load(model_dir).files, MANIFEST_FILE]
        assert second.names("retain") == {f"{prefix}{file}" for file in files}
        bucket, _, key_prefix = old_uri.removeprefix("s3://").partition("/")
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{key_prefix}/")
        assert sorted(o["Key"] for o in listed.get("Contents", [])) == sorted(
            f"{key_prefix}/{file}" for file in files
        )

        # Rollback target and current version each answer with their own model.
        np.testing.assert_allclose(_invoke(lam, old_version, images), old_expected, atol=1e-6)
        new_expected = Engine.load(model_dir).infer({"image": images})["probabilities"]
        np.testing.assert_allclose(_invoke(lam, "live", images), new_expected, atol=1e-6)
    finally:
        down(STACK, root=root)
    layers = {c.name for c in first.changes if c.type.startswith("aws:lambda/layer")}
    left = leftovers(endpoint, STACK, layers)
    assert left.empty, left
