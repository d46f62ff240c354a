"""A GPU-served model behind the stack's API on LocalStack: `digits-gpu` (the digits
artifact, served by the batching container server under another name, as a local
process standing in for its GPU endpoint) beside `digits` on Lambda, both through one
API Gateway URL. One deploy for the module (stack `t-gpu-route`).

The tests run in file order: the last ones kill the server, re-`up` and take the stack
down.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from infra.stack_loader import load_stack
from localdev.deploy import Summary, down, status, up
from localdev.server_process import parse_metrics
from model_runtime.engine import Engine
from stacks.schema import LambdaConfig, ModelConfig, StackConfig
from tests.support.deploy import aws, infer_body, leftovers, outputs_of, stage_root
from tests.support.error_cases import BAD_REQUESTS

STACK = "t-gpu-route"
GPU = "digits-gpu"
CLIENTS = 64
LOAD_S = 10.0


@dataclass(frozen=True)
class Deployed:
    root: Path
    config: StackConfig
    summary: Summary
    url: str
    artifact: Path

    @property
    def server(self) -> dict[str, Any]:
        """The local server's outputs (url, pid, log), as the state has them now."""
        server = status(STACK, root=self.root, verify=False).outputs["localServers"][GPU]
        assert isinstance(server, dict)
        return server


def gpu_route_config() -> StackConfig:
    local = load_stack("local")
    (gpu,) = [model for model in local.models if model.name == GPU]
    return local.model_copy(
        update={
            "models": [
                ModelConfig(name="digits", delivery="layer", lambda_=LambdaConfig(memory_mb=1024)),
                gpu,
            ]
        }
    )


@pytest.fixture(scope="module")
def deployed(
    endpoint: str, digits_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    config = gpu_route_config()
    root = stage_root(tmp_path_factory.mktemp(STACK) / "root", config, {"digits": digits_dir})
    summary = up(STACK, config=config, root=root)
    try:
        yield Deployed(root, config, summary, str(summary.outputs["url"]), digits_dir)
    finally:
        down(STACK, root=root)


@pytest.fixture(scope="module")
def http(deployed: Deployed) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=deployed.url, timeout=60.0) as client:
        yield client


def test_the_gpu_endpoint_is_declared_and_a_local_process_stands_in(deployed: Deployed) -> None:
    server = f"inferstack-{STACK}-{GPU}-server"
    declared = deployed.summary.not_emulated
    assert {item.type for item in declared} >= {
        "kubernetes:apps/v1:Deployment",
        "kubernetes:core/v1:Service",
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    }
    for item in declared:
        assert item.reason == f"no Kubernetes cluster: served by a local process instead: {server}"
    assert ("create", server) in {(c.action, c.name) for c in deployed.summary.changes}
    local = deployed.summary.outputs["localServers"][GPU]
    assert local["url"].startswith("http://127.0.0.1:")
    assert Path(f"/proc/{local['pid']}").exists()


def test_predictions_through_the_api_equal_the_engines(
    deployed: Deployed, http: httpx.Client, digits_images: np.ndarray
) -> None:
    images = digits_images[:16]
    expected = Engine.load(deployed.artifact).infer({"image": images})
    served = http.post(f"/v2/models/{GPU}/infer", json=infer_body(images))
    assert served.status_code == 200, served.text
    assert served.json()["model_name"] == GPU
    outputs = outputs_of(served)
    np.testing.assert_array_equal(outputs["label"], expected["label"])
    np.testing.assert_allclose(outputs["probabilities"], expected["probabilities"], atol=1e-6)
    assert http.get(f"/v2/models/{GPU}").json()["name"] == GPU
    assert http.get(f"/v2/models/{GPU}/ready").json() == {"name": GPU, "ready": True}


def test_64_concurrent_clients_get_no_error_and_share_batches(
    deployed: Deployed, digits_images: np.ndarray
) -> None:
    body = json.dumps(infer_body(digits_images[:1]))
    url = f"{deployed.url}/v2/models/{GPU}/infer"
    server = deployed.server["url"]

    def batches() -> tuple[float, float]:
        values = parse_metrics(httpx.get(f"{server}/metrics").text)
        label = f'{{model="{GPU}"}}'
        return (
            values[f"inferstack_batch_size_sum{label}"],
            values[f"inferstack_batch_size_count{label}"],
        )

    async def load() -> tuple[int, list[str]]:
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
        deadline = time.monotonic() + LOAD_S
        errors: list[str] = []
        done = 0
        async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:

            async def one_client() -> None:
                nonlocal done
                while time.monotonic() < deadline:
                    try:
                        response = await client.post(
                            url, content=body, headers={"content-type": "application/json"}
                        )
                    except httpx.HTTPError as exc:
                        errors.append(repr(exc))
                        continue
                    if response.status_code != 200:
                        errors.append(f"{response.status_code} {response.text[:200]}")
                    done += 1

            await asyncio.gather(*(one_client() for _ in range(CLIENTS)))
        return done, errors

    rows_before, batches_before = batches()
    done, errors = asyncio.run(load())
    rows_after, batches_after = batches()
    assert errors == []
    assert rows_after - rows_before == done
    mean = (rows_after - rows_before) / (batches_after - batches_before)
    print(f"{done} requests in {LOAD_S:g} s from {CLIENTS} clients; mean batch {mean:.2f}")
    assert mean > 1


def test_tritonclient_through_api_gateway(deployed: Deployed, digits_images: np.ndarray) -> None:
    client = triton.InferenceServerClient(url=deployed.url.removeprefix("http://"))
    try:
        assert client.is_server_ready()
        assert client.is_model_ready(GPU)
        assert client.get_model_metadata(GPU)["name"] == GPU
        images = digits_images[:5]
        tensor = triton.InferInput("image", list(images.shape), "FP32")
        tensor.set_data_from_numpy(images, binary_data=False)
        result = client.infer(
            GPU, [tensor], outputs=[triton.InferRequestedOutput("label", binary_data=False)]
        )
    finally:
        client.close()
    expected = Engine.load(deployed.artifact).infer({"image": images})
    np.testing.assert_array_equal(result.as_numpy("label"), expected["label"])


@pytest.mark.parametrize(("body", "status", "fragment"), BAD_REQUESTS)
def test_bad_requests_get_the_same_4xx_json_as_the_lambda_route(
    http: httpx.Client, body: Any, status: int, fragment: str
) -> None:
    content = body if isinstance(body, str) else json.dumps(body)
    headers = {"content-type": "application/json"}
    on_lambda = http.post("/v2/models/digits/infer", content=content, headers=headers)
    on_server = http.post(f"/v2/models/{GPU}/infer", content=content, headers=headers)
    assert on_server.status_code == on_lambda.status_code, on_server.text
    assert on_server.headers["content-type"].startswith("application/json")
    # The same artifact under two names: the answers differ only by the name.
    served = json.loads(
        on_server.text.replace(f'"{GPU}"', '"digits"').replace(f"'{GPU}'", "'digits'")
    )
    assert served == on_lambda.json()
    if on_lambda.status_code == 200:
        # Within digits' limits (the corpus is the tiny model's: a batch over its limit).
        assert status == 413
        return
    assert 400 <= on_lambda.status_code < 500, on_lambda.text
    assert list(served) == ["error"]


def test_a_server_that_is_down_answers_503_with_retry_after_and_up_restarts_it(
    deployed: Deployed, http: httpx.Client, endpoint: str
) -> None:
    pid = int(deployed.server["pid"])
    os.kill(pid, signal.SIGKILL)
    _wait_until_gone(pid)
    down_now = http.get(f"/v2/models/{GPU}/ready")
    # API Gateway cannot reach the server (API_CONFIGURATION_ERROR on LocalStack): the
    # stack's gateway response makes it a retryable 503 with a JSON body.
    assert down_now.status_code == 503, down_now.text
    assert down_now.headers["content-type"].startswith("application/json")
    assert down_now.json()
    # LocalStack community applies a gateway response's status code only; our executor
    # plugin adds its static headers (gateway_headers.py). The {"error": ...} template is
    # not applied by LocalStack (its body is {"message": ...}): it is read back instead.
    assert down_now.headers["retry-after"] == "5"
    api_id = deployed.url.split("/restapis/", 1)[1].split("/", 1)[0]
    declared = aws("apigateway", endpoint).get_gateway_response(
        restApiId=api_id, responseType="API_CONFIGURATION_ERROR"
    )
    assert declared["statusCode"] == "503"
    assert declared["responseParameters"]["gatewayresponse.header.Retry-After"] == "'5'"
    assert "error" in json.loads(
        declared["responseTemplates"]["application/json"].replace("$context.error.message", "x")
    )
    # The Lambda route is not affected.
    assert http.get("/v2/models/digits/ready").status_code == 200

    again = up(STACK, config=deployed.config, root=deployed.root)
    server = f"inferstack-{STACK}-{GPU}-server"
    changed = {(c.action, c.name, c.reason) for c in again.changes if c.action != "same"}
    assert changed == {("create", server, "it is gone (its provider's read no longer finds it)")}
    restarted = deployed.server
    assert int(restarted["pid"]) != pid
    # The same port again: the API's integration did not change.
    assert restarted["url"] == deployed.summary.outputs["localServers"][GPU]["url"]
    assert http.get(f"/v2/models/{GPU}/ready").json() == {"name": GPU, "ready": True}


def test_down_stops_the_process_and_leaves_nothing(deployed: Deployed, endpoint: str) -> None:
    server = deployed.server
    pid, log = int(server["pid"]), Path(server["log"])
    summary = down(STACK, root=deployed.root)
    assert f"inferstack-{STACK}-{GPU}-server" in summary.names("delete")
    assert not _running(pid)
    assert not log.with_suffix(".pid").exists()
    layers = {c.name for c in deployed.summary.changes if c.type.startswith("aws:lambda/layer")}
    left = leftovers(endpoint, STACK, layers)
    assert left.empty, left
    assert not status(STACK, root=deployed.root).deployed


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _wait_until_gone(pid: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _running(pid):
        assert time.monotonic() < deadline, f"pid {pid} still running"
        time.sleep(0.1)
