"""Code and layers that come from S3: what Lambda needs for a zip over 50 MB.

The threshold is lowered to 0 bytes (infra.bundles.DIRECT_UPLOAD_LIMIT) instead of
building a zip over 50 MB: the real function zip, runtime layer (~36 MB) and model layer
are then all uploaded to the artifact bucket first and named by S3Bucket/S3Key, and
LocalStack's Lambda takes them from there. A second `up` with the real limit moves them
back into the API call (an update of the function's code, new layer versions)."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from infra import bundles
from infra.stack_loader import load_stack
from localdev.deploy import down, up
from model_runtime.engine import Engine
from tests.support.deploy import aws, infer_body, leftovers, outputs_of, stage_root

STACK = "t-s3code"


def infer(url: str, images: np.ndarray) -> dict[str, np.ndarray]:
    with httpx.Client(base_url=url, timeout=60.0) as client:
        return outputs_of(client.post("/v2/models/digits/infer", json=infer_body(images)))


def test_functions_and_layers_deploy_from_s3_and_back(
    endpoint: str,
    digits_dir: Path,
    digits_images: np.ndarray,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local = load_stack("local")
    config = local.model_copy(update={"models": local.models[:1]})
    root = stage_root(tmp_path_factory.mktemp(STACK) / "root", config, {"digits": digits_dir})
    images = digits_images[:4]
    expected = Engine.load(digits_dir).infer({"image": images})
    lam = aws("lambda", endpoint)
    layers: set[str] = set()
    try:
        with monkeypatch.context() as patch:
            patch.setattr(bundles, "DIRECT_UPLOAD_LIMIT", 0)
            first = up(STACK, config=config, root=root)
        layers |= {c.name for c in first.changes if c.type.startswith("aws:lambda/layer")}
        code_objects = [
            obj["Key"]
            for obj in aws("s3", endpoint).list_objects_v2(
                Bucket=first.outputs["bucket"], Prefix="code/"
            )["Contents"]
        ]
        # Function code, runtime layer and model layer: one object each.
        assert sorted(key.split("/")[1] for key in code_objects) == [
            "function-python3.12",
            "model-digits",
            "runtime-python3.12-x86_64",
        ]
        runtime_layer = f"inferstack-{STACK}-runtime-python312-x86_64"
        (published,) = lam.list_layer_versions(LayerName=runtime_layer)["LayerVersions"]
        version = lam.get_layer_version_by_arn(Arn=published["LayerVersionArn"])
        (runtime_key,) = [key for key in code_objects if key.startswith("code/runtime-")]
        head = aws("s3", endpoint).head_object(Bucket=first.outputs["bucket"], Key=runtime_key)
        assert version["Content"]["CodeSize"] == head["ContentLength"] > 30_000_000
        served = infer(str(first.outputs["url"]), images)
        np.testing.assert_allclose(served["probabilities"], expected["probabilities"], atol=1e-5)

        second = up(STACK, config=config, root=root)
        layers |= {c.name for c in second.changes if c.type.startswith("aws:lambda/layer")}
        assert f"inferstack-{STACK}-digits" in second.names("update")
        served = infer(str(second.outputs["url"]), images)
        np.testing.assert_allclose(served["probabilities"], expected["probabilities"], atol=1e-5)
    finally:
        summary = down(STACK, root=root)
    layers |= {c.name for c in summary.changes if c.type.startswith("aws:lambda/layer")}
    left = leftovers(endpoint, STACK, layers)
    assert left.empty, left
