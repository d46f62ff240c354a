"""Two versions of `digits` side by side on LocalStack: versioned routes, a weighted
canary, compare and the promotion gate, promote and rollback under load, bad input.

The stack is deployed twice from a staged checkout (tests/support/checkout.py): first
with model version "1", then with "2" (the same network from another seed), so that the
function has two published versions, each labelled with its model version. The `inferstack`
commands run as real subprocesses there, against LocalStack's Lambda and API Gateway.
Version 2's gate is raised to 0.999 top-1 agreement (in its manifest), above what two seeds
reach, so that promote refuses it.
"""

from __future__ import annotations

import json
import math
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from botocore.config import Config

from infra.stack_loader import load_stack
from localdev.deploy import down, up
from localdev.localstack import manager
from model_runtime.engine import Engine
from model_runtime.manifest import Manifest, PromotionGate
from stacks.schema import CanaryConfig, LambdaConfig, ModelConfig, StackConfig
from tests.support.checkout import inferstack, staged_checkout
from tests.support.deploy import aws, infer_body, infer_event, package

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws.*")

STACK = "t-versions"
# A 30 s function timeout: under 64 clients on this 2-core machine a forwarded request
# waits for a cold start of the other version, and the forwarding invocation's timeout
# counts the whole wait (10 s, the default, is not enough here).
TIMEOUT_S = 30
STACK_FILE = f"""
from stacks._local import STACK as LOCAL
from stacks.schema import LambdaConfig, ModelConfig

STACK = LOCAL.model_copy(
    update={{
        "models": [
            ModelConfig(
                name="digits",
                delivery="layer",
                lambda_=LambdaConfig(memory_mb=1024, timeout_s={TIMEOUT_S}),
            )
        ]
    }}
)
"""
STRICT_GATE = PromotionGate(metric="top1_agreement", minimum=0.999)
CANARY_CALLS = 1000
CANARY_WEIGHT = 10
FLIP_CLIENTS = 64


def stack_config(memory_mb: int = 1024, canary: CanaryConfig | None = None) -> StackConfig:
    model = ModelConfig(
        name="digits",
        delivery="layer",
        lambda_=LambdaConfig(memory_mb=memory_mb, timeout_s=TIMEOUT_S),
        canary=canary,
    )
    return load_stack("local").model_copy(update={"models": [model]})


@dataclass(frozen=True)
class Deployed:
    root: Path
    url: str
    engines: dict[str, Engine]
    function: str
    endpoint: str

    def cli(self, *args: str) -> Any:
        return inferstack(self.root, *args, "--stack", STACK, "--model", "digits")

    def cli_json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def deployed(
    localstack: manager.Status,
    digits_dir: Path,
    digits_v2_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployed]:
    assert localstack.endpoint
    config = stack_config()
    work = tmp_path_factory.mktemp(STACK)
    v2 = work / "digits-v2"
    shutil.copytree(digits_v2_dir, v2)
    manifest = Manifest.load(v2)
    manifest.model_copy(update={"promotion_gate": STRICT_GATE}).write(v2)
    root = staged_checkout(work / "root", STACK, STACK_FILE, config, {"digits": digits_dir})
    try:
        up(STACK, config=config, root=root)
        link = root / "build" / "models" / "digits"
        link.unlink()
        link.symlink_to(v2)
        package(config, root)
        summary = up(STACK, config=config, root=root)
        engines = {"1": Engine.load(digits_dir), "2": Engine.load(v2)}
        function = str(summary.outputs["functions"]["digits"])
        yield Deployed(root, str(summary.outputs["url"]), engines, function, localstack.endpoint)
    finally:
        down(STACK, root=root)


def infer(http: httpx.Client, path: str, images: np.ndarray) -> dict[str, Any]:
    response = http.post(path, json=infer_body(images))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def probabilities(body: dict[str, Any]) -> np.ndarray:
    (output,) = [o for o in body["outputs"] if o["name"] == "probabilities"]
    return np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])


def test_each_versioned_route_answers_with_its_own_model(
    deployed: Deployed, digits_images: np.ndarray
) -> None:
    images = digits_images[:16]
    with httpx.Client(base_url=deployed.url, timeout=60.0) as http:
        answers = {v: infer(http, f"/v2/models/digits/versions/{v}/infer", images) for v in "12"}
        live = infer(http, "/v2/models/digits/infer", images)
        metadata = http.get("/v2/models/digits/versions/1").json()
    for version, body in answers.items():
        assert body["model_version"] == version
        expected = deployed.engines[version].infer({"image": images})["probabilities"]
        np.testing.assert_allclose(probabilities(body), expected, rtol=1e-4, atol=1e-5)
    # Two different models: the routes do not answer with the same one.
    assert not np.allclose(probabilities(answers["1"]), probabilities(answers["2"]))
    # The second deploy moved `live` to what it published.
    assert live["model_version"] == "2"
    assert metadata["versions"] == ["1"]


def test_an_unknown_version_is_a_404_naming_the_versions_there(deployed: Deployed) -> None:
    with httpx.Client(base_url=deployed.url, timeout=60.0) as http:
        response = http.post("/v2/models/digits/versions/9/infer", json={"inputs": []})
    assert response.status_code == 404, response.text
    assert response.json() == {"error": "model 'digits' has no version '9'; versions: '1', '2'"}


def test_versions_lists_both_with_their_labels(deployed: Deployed) -> None:
    rows = deployed.cli_json("versions")
    by_model_version = {row["model_version"]: row for row in rows}
    assert set(by_model_version) == {"1", "2"}
    for version, engine in deployed.engines.items():
        row = by_model_version[version]
        assert engine.manifest.content_hash().startswith(row["sha256"])
    assert by_model_version["2"]["weight"] == 100
    assert by_model_version["1"]["weight"] == 0


def test_a_10_percent_canary_is_observed_within_bounds(
    deployed: Deployed, digits_images: np.ndarray
) -> None:
    rolled_back = deployed.cli("rollback")
    assert rolled_back.returncode == 0, rolled_back.stderr
    rolled_out = deployed.cli("rollout", "--version", "2", "--weight", str(CANARY_WEIGHT))
    assert rolled_out.returncode == 0, rolled_out.stderr

    def call(index: int, http: httpx.Client) -> str:
        body = infer(http, "/v2/models/digits/infer", digits_images[index % 32 : index % 32 + 1])
        return str(body["model_version"])

    def worker(indices: range) -> list[str]:
        with httpx.Client(base_url=deployed.url, timeout=60.0) as http:
            return [call(index, http) for index in indices]

    clients = 8
    with ThreadPoolExecutor(clients) as pool:
        parts = pool.map(worker, [range(i, CANARY_CALLS, clients) for i in range(clients)])
    seen = [version for part in parts for version in part]
    assert len(seen) == CANARY_CALLS
    canary = seen.count("2")
    expected = CANARY_CALLS * CANARY_WEIGHT / 100
    sigma = math.sqrt(CANARY_CALLS * 0.1 * 0.9)
    print(f"canary: {canary} of {CANARY_CALLS} calls answered by version 2")  # with -s
    assert abs(canary - expected) <= 3 * sigma, (canary, expected, sigma)
    assert seen.count("1") == CANARY_CALLS - canary
    weights = {row["model_version"]: row["weight"] for row in deployed.cli_json("versions")}
    assert weights == {"1": 100 - CANARY_WEIGHT, "2": CANARY_WEIGHT}


def test_compare_reports_the_agreement_and_promote_refuses_below_the_gate(
    deployed: Deployed, digits_images: np.ndarray, tmp_path: Path
) -> None:
    images = digits_images[:200]
    requests = tmp_path / "requests.jsonl"
    requests.write_text(
        "".join(json.dumps(infer_body(images[i : i + 1])) + "\n" for i in range(len(images)))
    )
    report = deployed.cli_json("compare", "--requests", str(requests))
    # What the two models agree on, computed here from the artifacts themselves.
    labels = {
        version: engine.infer({"image": images})["probabilities"].argmax(axis=1)
        for version, engine in deployed.engines.items()
    }
    agreement = float(np.mean(labels["1"] == labels["2"]))
    assert 0.8 < agreement < STRICT_GATE.minimum
    outputs = {output["name"]: output for output in report["outputs"]}
    assert outputs["probabilities"]["top1_agreement"] == pytest.approx(agreement)
    assert (report["live"]["model_version"], report["candidate"]["model_version"]) == ("1", "2")
    assert report["live"]["latency"]["requests"] == len(images)

    refused = deployed.cli("promote", "--requests", str(requests))
    assert refused.returncode != 0
    message = refused.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert f"{agreement:.3f}" in message and "0.999" in message, message


def test_a_canary_declared_in_the_stack_weighs_the_version_its_deploy_publishes(
    deployed: Deployed,
) -> None:
    """The Pulumi program's alias routing, realized: a deploy that changes the function
    (more memory: version 3, still model version 2) keeps `live` on version 1."""
    canary = CanaryConfig(live_version=1, weight=CANARY_WEIGHT)
    up(STACK, config=stack_config(memory_mb=1152, canary=canary), root=deployed.root)
    alias = aws("lambda", deployed.endpoint).get_alias(FunctionName=deployed.function, Name="live")
    assert alias["FunctionVersion"] == "1"
    assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {"3": CANARY_WEIGHT / 100}
    weights = {row["version"]: row["weight"] for row in deployed.cli_json("versions")}
    assert weights == {1: 100 - CANARY_WEIGHT, 2: 0, 3: CANARY_WEIGHT}


def warm(deployed: Deployed, qualifiers: list[str], images: np.ndarray) -> None:
    """Start FLIP_CLIENTS execution environments of each Lambda version, by as many
    concurrent direct invocations.

    A version's environments otherwise all cold-start at the moment traffic moves to it:
    64 model loads at once on this 2-core machine take about a minute (on AWS each has
    its own CPU), long enough for a client's read timeout, which would measure the
    machine rather than the flip. LocalStack keeps idle environments for 10 minutes.
    """
    config = Config(max_pool_connections=FLIP_CLIENTS, read_timeout=300)
    lam = aws("lambda", deployed.endpoint, config)
    event = json.dumps(infer_event("digits", images[:1]))

    def invoke(qualifier: str) -> int:
        answer = lam.invoke(FunctionName=deployed.function, Qualifier=qualifier, Payload=event)
        return int(json.loads(answer["Payload"].read()).get("statusCode", 0))

    for qualifier in qualifiers:
        with ThreadPoolExecutor(FLIP_CLIENTS) as pool:
            codes = list(pool.map(invoke, [qualifier] * FLIP_CLIENTS))
        assert codes == [200] * FLIP_CLIENTS, (qualifier, codes)


def test_promote_and_rollback_under_64_clients_fail_no_request(
    deployed: Deployed, digits_images: np.ndarray, tmp_path: Path
) -> None:
    # promote compares before it moves traffic (--force only overrides the gate).
    requests = tmp_path / "request.json"
    requests.write_text(json.dumps(infer_body(digits_images[:4])))
    # `live` is on Lambda version 1 with the canary's version 3 beside it (the test before).
    alias = aws("lambda", deployed.endpoint).get_alias(FunctionName=deployed.function, Name="live")
    warm(
        deployed,
        [alias["FunctionVersion"], *alias["RoutingConfig"]["AdditionalVersionWeights"]],
        digits_images,
    )
    stop = threading.Event()
    failures: list[str] = []
    # (sent, answered, model version) of every request.
    answers: list[tuple[float, float, str]] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        body = infer_body(digits_images[index % 32 : index % 32 + 1])
        with httpx.Client(base_url=deployed.url, timeout=60.0) as http:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    response = http.post("/v2/models/digits/infer", json=body)
                except httpx.HTTPError as exc:
                    with lock:
                        failures.append(f"{exc!r} sent at {started - began:.1f} s")
                    continue
                with lock:
                    if response.status_code != 200:
                        sent = started - began
                        failures.append(
                            f"{response.status_code} {response.text} sent at {sent:.1f} s"
                        )
                    else:
                        version = response.json()["model_version"]
                        answers.append((started, time.monotonic(), version))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(FLIP_CLIENTS)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        time.sleep(10)
        promoted = deployed.cli("promote", "--version", "2", "--force", "--requests", str(requests))
        promoted_at = time.monotonic()
        time.sleep(10)
        rolling_back_at = time.monotonic()
        # Back to the first version (Lambda version 3 is model version 2 too, see above).
        rolled_back = deployed.cli("rollback", "--to", "1")
        rolled_back_at = time.monotonic()
        time.sleep(10)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    assert promoted.returncode == 0, promoted.stderr
    assert rolled_back.returncode == 0, rolled_back.stderr
    print(
        f"flip: {len(answers)} requests from {FLIP_CLIENTS} clients, {len(failures)} failed;"
        f" promote at {promoted_at - began:.1f} s, rollback at {rolling_back_at - began:.1f} s"
    )
    assert failures == [], failures[:5]
    # Sent after the promote returned and answered before the rollback began: version 2;
    # sent after the rollback returned: version 1 (a request is routed when Lambda gets
    # it, which under this load may be seconds after it was sent).
    after_promote = {
        v for sent, done, v in answers if sent > promoted_at and done < rolling_back_at
    }
    after_rollback = {v for sent, _, v in answers if sent > rolled_back_at}
    assert after_promote == {"2"}, after_promote
    assert after_rollback == {"1"}, after_rollback


def test_bad_input_is_one_line_and_a_non_zero_exit(deployed: Deployed) -> None:
    cases = {
        ("rollout", "--version", "2", "--weight", "150"): "0",
        ("rollout", "--version", "9", "--weight", "10"): "'1', '2'",
        # Live is version 1 (the rollback above), the first: nothing older.
        ("rollback",): "no earlier version",
    }
    for args, needle in cases.items():
        result = deployed.cli(*args)
        message = result.stderr.strip()
        assert result.returncode != 0, (args, result.stdout)
        assert len(message.splitlines()) == 1 and needle in message, (args, message)
