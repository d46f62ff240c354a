"""Failures inside Lambda come back through API Gateway as clean 5xx JSON, and the function's
log group says what happened. The faults come from a test-only entry point deployed in
place of functions/handler.py (it wraps the real one): production code has no fault path."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from infra.stack_loader import load_stack
from localdev.deploy import down, up
from stacks.schema import LambdaConfig, ModelConfig, StackConfig
from tests.support.deploy import infer_body, json_error, log_messages, outputs_of, stage_root

STACK = "t-faults"
TIMEOUT_S = 3
FAULTY_HANDLER = textwrap.dedent(
    """
    import time

    from functions import production


    def handler(event, context):
        path = event.get("path") or ""
        if path.endswith("/fault/raise"):
            raise RuntimeError("injected fault: the handler raised")
        if path.endswith("/fault/hang"):
            time.sleep(600)
        return production.handler(event, context)
    """
)


@dataclass(frozen=True)
class Deployed:
    url: str
    log_group: str


@pytest.fixture(scope="module")
def deployed(
    endpoint: str, digits_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployed]:
    function = LambdaConfig(memory_mb=1024, timeout_s=TIMEOUT_S)
    config: StackConfig = load_stack("local").model_copy(
        update={"models": [ModelConfig(name="digits", delivery="layer", lambda_=function)]}
    )
    root = stage_root(
        tmp_path_factory.mktemp(STACK) / "root",
        config,
        {"digits": digits_dir},
        handler=FAULTY_HANDLER,
    )
    summary = up(STACK, config=config, root=root)
    try:
        yield Deployed(str(summary.outputs["url"]), f"/aws/lambda/inferstack-{STACK}-digits")
    finally:
        down(STACK, root=root)


@pytest.fixture(scope="module")
def http(deployed: Deployed) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=deployed.url, timeout=60.0) as client:
        yield client


def test_a_handler_exception_is_a_clean_5xx_and_logged(
    http: httpx.Client, deployed: Deployed, endpoint: str
) -> None:
    response = http.get("/v2/models/digits/fault/raise")
    assert 500 <= response.status_code < 600
    # On AWS the body is the stack's {"error": ...} gateway response; LocalStack community
    # sends its default {"message": ...}. Either way: JSON, no stack trace.
    body = json_error(response)
    assert set(body) <= {"error", "message"}
    assert "Traceback" not in response.text
    logged = log_messages(endpoint, deployed.log_group, "injected fault: the handler raised")
    assert logged, f"the error is not in {deployed.log_group}"


def test_a_timeout_is_a_clean_5xx_and_logged(
    http: httpx.Client, deployed: Deployed, endpoint: str
) -> None:
    response = http.get("/v2/models/digits/fault/hang")
    assert 500 <= response.status_code < 600
    assert set(json_error(response)) <= {"error", "message"}
    logged = log_messages(endpoint, deployed.log_group, f"Task timed out after {TIMEOUT_S}")
    assert logged, f"the timeout is not in {deployed.log_group}"


def test_the_function_serves_again_after_the_faults(
    http: httpx.Client, digits_images: np.ndarray
) -> None:
    outputs = outputs_of(http.post("/v2/models/digits/infer", json=infer_body(digits_images[:2])))
    assert outputs["label"].shape == (2,)
