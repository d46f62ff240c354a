"""The product path on a real AWS account: `pulumi up` through the Automation API
(infra/automation.py, the same call `inferstack up` makes), inference through API
Gateway with an API key, a model removed and the stack re-upped (its routes answer 404),
`pulumi destroy`, and nothing of the stack left in the account.

Runs only with INFERSTACK_AWS_ACCEPTANCE=1, AWS credentials and the `pulumi` CLI
(tests/support/acceptance.py); skipped, with the reason, otherwise. The stack is small:
two tiny models (one in a layer, one from S3), no provisioned concurrency, no access logs
(so API Gateway's account-wide setting is left alone), state in a local file backend
under the test's temporary directory (`allow_local_state=True`: it is thrown away).
"""

from __future__ import annotations

import json
import runpy
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support import acceptance
from tests.support.deploy import infer_body, outputs_of
from tests.support.tiny_model import build_tiny_model, reference_outputs, tiny_images

REASON = acceptance.skip_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")

LAYER_MODEL = "tiny"
S3_MODEL = "tiny-s3"
CLIENT = "acceptance"
# API keys, usage plans and a new stage take a while to reach every API Gateway node.
SETTLE_S = 120.0

STACK_FILE = """\
from stacks.schema import (
    ApiConfig, ApiKeys, ArtifactStoreConfig, AwsTarget, LambdaConfig, ModelConfig,
    StackConfig, StateConfig,
)

STACK = StackConfig(
    target=AwsTarget(
        region={region!r},
        allowed_account_ids=[{account!r}],
        state=StateConfig(
            backend_url={backend!r}, secrets_provider="passphrase", allow_local_state=True
        ),
    ),
    models=[{models}],
    artifact_store=ArtifactStoreConfig(force_destroy=True, noncurrent_version_expiry_days=1),
    api=ApiConfig(stage="acc", keys=ApiKeys(clients=[{client!r}]), access_logs=False),
    log_retention_days=1,
)
"""
MODELS = {
    LAYER_MODEL: f'ModelConfig(name="{LAYER_MODEL}", delivery="layer", lambda_=LambdaConfig())',
    S3_MODEL: f'ModelConfig(name="{S3_MODEL}", delivery="s3", lambda_=LambdaConfig())',
}


@dataclass
class Acceptance:
    stack: str
    root: Path
    session: Any
    account: str
    outputs: dict[str, Any]
    destroyed: bool = False

    def write_stack(self, models: list[str]) -> Any:
        """stacks/<stack>.py in the staged project with `models`; returns its STACK."""
        path = self.root / "stacks" / f"{self.stack}.py"
        path.write_text(
            STACK_FILE.format(
                region=acceptance.region(),
                account=self.account,
                backend=(self.root / "build" / "pulumi-state").as_uri(),
                models=", ".join(MODELS[name] for name in models),
                client=CLIENT,
            ),
            encoding="utf-8",
        )
        return runpy.run_path(str(path))["STACK"]

    def up(self, models: list[str]) -> dict[str, Any]:
        from cli.prepare import build_packages
        from infra import automation

        config = self.write_stack(models)
        build_packages(config, self.root, echo=print)
        self.outputs = automation.up(self.stack, config, self.root, print)
        return self.outputs

    def destroy(self) -> None:
        from infra import automation

        config = self.write_stack([LAYER_MODEL])
        automation.down(self.stack, config, self.root, print)
        self.destroyed = True

    @property
    def key(self) -> str:
        keys = self.outputs["apiKeys"]
        return str((json.loads(keys) if isinstance(keys, str) else keys)[CLIENT])


def settled(send: Any, wanted: int) -> httpx.Response:
    """`send()` until it answers `wanted` or SETTLE_S pass (propagation, cold starts)."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        response: httpx.Response = send()
        if response.status_code == wanted or time.monotonic() > deadline:
            return response
        time.sleep(5)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Acceptance]:
    import boto3

    session = boto3.Session(region_name=acceptance.region())
    account = session.client("sts").get_caller_identity()["Account"]
    root = acceptance.stage_project(tmp_path_factory.mktemp("aws") / "project")
    for name in MODELS:
        build_tiny_model(root / "build" / "models" / name, name=name)
    run = Acceptance(f"acc{secrets.token_hex(3)}", root, session, account, {})
    with pytest.MonkeyPatch.context() as patch:
        # The state is thrown away with the test: a passphrase for this run only.
        patch.setenv("INFERSTACK_PULUMI_PASSPHRASE", secrets.token_urlsafe(32))
        try:
            run.up([LAYER_MODEL, S3_MODEL])
            yield run
        finally:
            if not run.destroyed:
                run.destroy()


def test_both_models_infer_through_the_url_with_the_api_key(deployed: Acceptance) -> None:
    url = str(deployed.outputs["url"])
    images = tiny_images(4)
    expected = reference_outputs(images)
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for model in MODELS:
            response = settled(
                lambda model=model: client.post(
                    f"/v2/models/{model}/infer",
                    json=infer_body(images),
                    headers={"x-api-key": deployed.key},
                ),
                200,
            )
            served = outputs_of(response)
            np.testing.assert_allclose(
                served["probabilities"], expected["probabilities"], atol=1e-5
            )
            np.testing.assert_array_equal(served["label"], expected["label"])
        unkeyed = client.post(f"/v2/models/{LAYER_MODEL}/infer", json=infer_body(images))
        assert unkeyed.status_code == 403, unkeyed.text


def test_a_removed_model_answers_404_after_the_next_up(deployed: Acceptance) -> None:
    deployed.up([LAYER_MODEL])
    url = str(deployed.outputs["url"])
    headers = {"x-api-key": deployed.key}
    with httpx.Client(base_url=url, timeout=30.0) as client:
        for path in (f"/v2/models/{S3_MODEL}/ready", f"/v2/models/{S3_MODEL}/infer"):
            response = settled(lambda path=path: client.get(path, headers=headers), 404)
            assert response.status_code == 404, (path, response.status_code, response.text)
        kept = settled(lambda: client.get(f"/v2/models/{LAYER_MODEL}/ready", headers=headers), 200)
        assert kept.status_code == 200, kept.text
    assert deployed.outputs["functions"] == {LAYER_MODEL: f"inferstack-{deployed.stack}-tiny"}


def test_destroy_leaves_nothing_of_the_stack(deployed: Acceptance) -> None:
    deployed.destroy()
    left = acceptance.wait_for_nothing_left(deployed.stack, deployed.session)
    assert not left, left
