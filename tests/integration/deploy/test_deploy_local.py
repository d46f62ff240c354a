"""The local stack (stacks/local.py, deployed under the stack name `t-local` so that a
developer's own `local` deployment is left alone) on LocalStack through the in-process
engine, and called over real HTTP through API Gateway: digits (image in, class out) and
MiniLM (text in, sentence embeddings out).

The tests run in file order: the last ones change the model, then take the stack down.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from fastapi.testclient import TestClient

from infra.evaluate import evaluate
from infra.program import define_stack
from infra.stack_loader import load_stack
from localdev.deploy import Summary, down, status, up
from model_build.reference_models.minilm import MAX_TOKENS
from model_runtime.app import create_app
from model_runtime.engine import Engine
from model_runtime.manifest import MANIFEST_FILE, Manifest
from stacks.schema import StackConfig
from tests.support.deploy import (
    infer_body,
    json_error,
    leftovers,
    outputs_of,
    package,
    perturb_model,
    stage_root,
)

STACK = "t-local"
DIGITS = ["digits", "digits-int8"]
# The digits artifact, served by the local model server under this name.
GPU = "digits-gpu"
TEXT = "minilm-int8"
MODELS = [*DIGITS, TEXT]
TEXTS = [
    "A man is eating food.",
    "How do I reset my password if I no longer have access to my email?",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    # ~540 tokens: cut at MAX_TOKENS, and the response says so.
    " ".join(["the quick brown fox jumps over the lazy dog"] * 60),
]


@dataclass(frozen=True)
class Deployed:
    root: Path
    config: StackConfig
    summary: Summary
    url: str
    artifacts: dict[str, Path]


@pytest.fixture(scope="module")
def deployed(
    endpoint: str,
    digits_dir: Path,
    digits_int8_dir: Path,
    minilm_int8_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployed]:
    base = tmp_path_factory.mktemp(STACK)
    # Copies: a test below changes the model, and the session's artifacts are shared.
    artifacts = {
        "digits": Path(shutil.copytree(digits_dir, base / "models" / "digits")),
        "digits-int8": Path(shutil.copytree(digits_int8_dir, base / "models" / "digits-int8")),
        TEXT: minilm_int8_dir,
    }
    config = load_stack("local")
    root = stage_root(base / "root", config, artifacts)
    summary = up(STACK, config=config, root=root)
    try:
        yield Deployed(root, config, summary, str(summary.outputs["url"]), artifacts)
    finally:
        down(STACK, root=root)


@pytest.fixture(scope="module")
def http(deployed: Deployed) -> Iterator[httpx.Client]:
    # Cold starts (model load on 2 cores, S3 download) take seconds.
    with httpx.Client(base_url=deployed.url, timeout=60.0) as client:
        yield client


@pytest.fixture(scope="module")
def in_process(deployed: Deployed) -> Iterator[TestClient]:
    """The same app, in this process, over the same artifacts."""
    engines = [Engine.load(deployed.artifacts[name]) for name in MODELS]
    with TestClient(create_app(engines), raise_server_exceptions=False) as client:
        yield client


def test_up_realizes_every_declared_resource(deployed: Deployed) -> None:
    declared = evaluate(lambda: define_stack(deployed.config, STACK, deployed.root), STACK)
    expected = sorted(
        (r.type, r.name)
        for r in declared.resources
        # The Kubernetes objects are declared, not emulated (below).
        if r.custom and not r.type.startswith(("pulumi:providers:", "kubernetes:"))
    )
    summary = deployed.summary
    assert sorted((c.type, c.name) for c in summary.changes) == expected
    assert summary.counts["created"] == len(expected)
    # digits-gpu's GPU endpoint: declared, not emulated; its local server stands in.
    stand_in = f"inferstack-{STACK}-{GPU}-server"
    assert stand_in in {name for _, name in expected}
    assert {(item.type, item.name) for item in summary.not_emulated} == {
        (r.type, r.name) for r in declared.resources if r.type.startswith("kubernetes:")
    }
    assert {item.reason for item in summary.not_emulated} == {
        f"no Kubernetes cluster: served by a local process instead: {stand_in}"
    }
    assert summary.outputs["functions"] == {m: f"inferstack-{STACK}-{m}" for m in MODELS}
    assert deployed.url.startswith("http://127.0.0.1:4566/restapis/")


def test_health_through_api_gateway(http: httpx.Client) -> None:
    assert http.get("/v2/health/live").status_code == 200
    assert http.get("/v2/health/ready").json() == {"ready": True}
    for model in MODELS:
        assert http.get(f"/v2/models/{model}/ready").status_code == 200


@pytest.mark.parametrize("model", DIGITS)
def test_predictions_equal_the_in_process_engine(
    http: httpx.Client, deployed: Deployed, digits_images: np.ndarray, model: str
) -> None:
    images = digits_images[:16]
    served = outputs_of(http.post(f"/v2/models/{model}/infer", json=infer_body(images)))
    expected = Engine.load(deployed.artifacts[model]).infer({"image": images})
    np.testing.assert_array_equal(served["label"], expected["label"])
    np.testing.assert_allclose(served["probabilities"], expected["probabilities"], atol=1e-6)


@pytest.mark.parametrize("model", MODELS)
def test_model_metadata_matches_the_manifest(
    http: httpx.Client, in_process: TestClient, deployed: Deployed, model: str
) -> None:
    metadata = http.get(f"/v2/models/{model}").json()
    manifest = Engine.load(deployed.artifacts[model]).manifest
    assert metadata["name"] == manifest.name == model
    assert metadata["versions"] == [manifest.version]
    assert [i["name"] for i in metadata["inputs"]] == [i.name for i in manifest.inputs]
    assert [o["name"] for o in metadata["outputs"]] == [o.name for o in manifest.outputs]
    assert metadata == in_process.get(f"/v2/models/{model}").json()


def text_body(texts: list[str]) -> dict[str, object]:
    return {"inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}]}


def test_minilm_embeddings_equal_the_in_process_engine(
    http: httpx.Client, in_process: TestClient, deployed: Deployed
) -> None:
    served = http.post(f"/v2/models/{TEXT}/infer", json=text_body(TEXTS))
    embeddings = outputs_of(served)["embedding"]
    expected = Engine.load(deployed.artifacts[TEXT]).infer({"text": np.array(TEXTS, dtype=object)})
    assert embeddings.shape == expected["embedding"].shape == (len(TEXTS), 384)
    cosine = np.sum(embeddings * expected["embedding"], axis=1) / (
        np.linalg.norm(embeddings, axis=1) * np.linalg.norm(expected["embedding"], axis=1)
    )
    assert cosine.min() >= 0.9999, cosine
    # The over-long text is cut at MAX_TOKENS tokens, and the response says which one.
    parameters = served.json()["parameters"]
    assert parameters == {"truncated": True, "max_tokens": MAX_TOKENS, "truncated_items": "3"}
    local = in_process.post(f"/v2/models/{TEXT}/infer", json=text_body(TEXTS))
    assert local.json()["parameters"] == parameters


def test_an_empty_text_is_a_400_json_like_in_process(
    http: httpx.Client, in_process: TestClient
) -> None:
    body = text_body(["fine", ""])
    served = http.post(f"/v2/models/{TEXT}/infer", json=body)
    local = in_process.post(f"/v2/models/{TEXT}/infer", json=body)
    assert served.status_code == 400
    assert json_error(served) == local.json()
    assert "item 1 is empty" in served.json()["error"]


def test_tritonclient_through_api_gateway(deployed: Deployed, digits_images: np.ndarray) -> None:
    client = triton.InferenceServerClient(url=deployed.url.removeprefix("http://"))
    try:
        assert client.is_server_ready()
        assert client.is_model_ready("digits-int8")
        metadata = client.get_model_metadata("digits-int8")
        assert metadata["name"] == "digits-int8"
        images = digits_images[:5]
        tensor = triton.InferInput("image", list(images.shape), "FP32")
        tensor.set_data_from_numpy(images, binary_data=False)
        result = client.infer(
            "digits-int8",
            [tensor],
            outputs=[triton.InferRequestedOutput("label", binary_data=False)],
        )
    finally:
        client.close()
    expected = Engine.load(deployed.artifacts["digits-int8"]).infer({"image": images})
    np.testing.assert_array_equal(result.as_numpy("label"), expected["label"])


def _image_request(shape: str = "[1, 1, 8, 8]", value: str = "0.5", count: int = 64) -> str:
    data = ", ".join([value] * count)
    tensor = f'"name": "image", "datatype": "FP32", "shape": {shape}, "data": [{data}]'
    return f'{{"inputs": [{{{tensor}}}]}}'


BAD_REQUESTS = {
    "malformed JSON": '{"inputs": [}',
    "no inputs": '{"inputs": []}',
    "unknown datatype": _image_request().replace("FP32", "FLOAT"),
    "shape and data disagree": _image_request(shape="[2, 1, 8, 8]"),
    "wrong rank": _image_request(shape="[1, 64]"),
    "not finite": _image_request(value="NaN"),
    "unknown input name": _image_request().replace('"image"', '"pixels"'),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_input_gets_the_same_4xx_json_as_in_process(
    http: httpx.Client, in_process: TestClient, case: str
) -> None:
    body = BAD_REQUESTS[case]
    headers = {"content-type": "application/json"}
    served = http.post("/v2/models/digits/infer", content=body, headers=headers)
    local = in_process.post("/v2/models/digits/infer", content=body, headers=headers)
    assert 400 <= served.status_code < 500
    assert (served.status_code, served.json()) == (local.status_code, local.json())
    assert list(served.json()) == ["error"]


def test_an_unknown_route_is_a_404_json(http: httpx.Client) -> None:
    # API Gateway answers (no such resource) before any function runs. On AWS the body is
    # the stack's {"error": ...} template; LocalStack community applies gateway responses'
    # status codes but not their templates, so the body here is its default JSON.
    response = http.get("/v2/models/no-such-model")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert set(response.json()) <= {"error", "message"}


def test_status_reports_the_deployment(deployed: Deployed) -> None:
    current = status(STACK, root=deployed.root)
    assert current.localstack_up
    assert len(current.resources) == len(deployed.summary.changes)
    assert current.missing == []
    assert current.outputs["url"] == deployed.url


def test_up_again_without_changes_changes_nothing(deployed: Deployed) -> None:
    summary = up(STACK, config=deployed.config, root=deployed.root)
    assert summary.changed == 0
    assert summary.counts["unchanged"] == len(deployed.summary.changes)
    assert summary.outputs == deployed.summary.outputs
    print(f"no-change re-up: {summary.seconds:.2f} s")


def test_a_model_change_redeploys_only_what_depends_on_it(
    deployed: Deployed, http: httpx.Client, digits_images: np.ndarray
) -> None:
    images = digits_images[:16]
    before = outputs_of(http.post("/v2/models/digits/infer", json=infer_body(images)))
    perturb_model(deployed.artifacts["digits"])

    package(deployed.config, deployed.root)  # as `inferstack up` does before deploying
    summary = up(STACK, config=deployed.config, root=deployed.root)

    prefix = f"inferstack-{STACK}"
    files = [*Manifest.load(deployed.artifacts["digits"]).files, MANIFEST_FILE]
    gpu_objects = {f"{prefix}-artifacts-{GPU}-{file}" for file in files}
    assert summary.names("replace") == {
        f"{prefix}-digits-model",  # the model layer: a new version
        # Content-addressed keys: every object of the model is a new one.
        *(f"{prefix}-artifacts-digits-{file}" for file in files),
        # digits-gpu serves the same artifact: its objects, and its server restarts on it.
        *gpu_objects,
        f"{prefix}-{GPU}-server",
    }
    assert summary.names("update") == {f"{prefix}-digits", f"{prefix}-digits-live"}
    assert summary.names("create") == set()
    # The replaced layer version, nothing else; the replaced objects are retained (an
    # older function version may still load them: a rollback).
    assert summary.names("delete") == {f"{prefix}-digits-model"}
    assert summary.names("retain") == summary.names("replace") - {
        f"{prefix}-digits-model",
        f"{prefix}-{GPU}-server",
    }
    # The API points at the `live` alias, so it needs no redeployment.
    assert f"{prefix}-api-deployment" in summary.names("same")
    assert {f"{prefix}-digits-int8", f"{prefix}-{TEXT}"} <= summary.names("same")

    after = outputs_of(http.post("/v2/models/digits/infer", json=infer_body(images)))
    expected = Engine.load(deployed.artifacts["digits"]).infer({"image": images})
    np.testing.assert_allclose(after["probabilities"], expected["probabilities"], atol=1e-6)
    assert not np.allclose(after["probabilities"], before["probabilities"], atol=1e-6)
    # The restarted server serves the new model (on the same URL: the API is unchanged).
    served = outputs_of(http.post(f"/v2/models/{GPU}/infer", json=infer_body(images)))
    np.testing.assert_allclose(served["probabilities"], expected["probabilities"], atol=1e-6)


def test_down_leaves_nothing_behind(deployed: Deployed, endpoint: str) -> None:
    summary = down(STACK, root=deployed.root)
    assert summary.counts["deleted"] == len(deployed.summary.changes)
    layers = {c.name for c in deployed.summary.changes if c.type.startswith("aws:lambda/layer")}
    left = leftovers(endpoint, STACK, layers)
    assert left.empty, left
    # Safe to re-run.
    assert down(STACK, root=deployed.root).changed == 0
    assert not status(STACK, root=deployed.root).deployed
