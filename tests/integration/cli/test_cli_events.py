"""`inferstack jobs` and `inferstack batch` as real subprocesses against a stack deployed to
LocalStack from a staged checkout (tests/support/checkout.py), so that a developer's own
deployments are left alone.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from localdev.deploy import down, up
from localdev.localstack import manager
from model_runtime.engine import Engine
from tests.support.checkout import inferstack as run_inferstack
from tests.support.checkout import staged_checkout
from tests.support.deploy import infer_body
from tests.support.events import (
    assert_matches,
    batch_file,
    engine_outputs,
    events_config,
    jsonl,
)

# pulumi_aws warns about its own deprecated resource classes when the stack is deployed.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws.*")

STACK = "t-ev-cli"
CHUNK_LINES = 50
# The same stack as events_config(timeout_s=10, batch_size=2, max_receives=3, chunk_lines=50).
STACK_FILE = f"""
from stacks._local import STACK as LOCAL
from stacks.schema import AsyncConfig, BatchConfig, LambdaConfig, ModelConfig

STACK = LOCAL.model_copy(
    update={{
        "models": [
            ModelConfig(
                name="digits",
                delivery="layer",
                lambda_=LambdaConfig(memory_mb=1024, timeout_s=10),
                async_=AsyncConfig(batch_size=2, max_batching_window_s=0, max_receives=3),
                batch=BatchConfig(chunk_lines={CHUNK_LINES}),
            )
        ]
    }}
)
"""


@dataclass(frozen=True)
class Checkout:
    root: Path
    url: str


@pytest.fixture(scope="module")
def checkout(
    localstack: manager.Status, digits_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Checkout]:
    config = events_config(timeout_s=10, batch_size=2, max_receives=3, chunk_lines=CHUNK_LINES)
    root = tmp_path_factory.mktemp(STACK) / "root"
    root = staged_checkout(root, STACK, STACK_FILE, config, {"digits": digits_dir})
    summary = up(STACK, config=config, root=root)
    try:
        yield Checkout(root, str(summary.outputs["url"]))
    finally:
        down(STACK, root=root)


def inferstack(
    checkout: Checkout, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return run_inferstack(checkout.root, *args, timeout=timeout)


def test_jobs_submit_wait_prints_the_engines_result(
    checkout: Checkout, digits_engine: Engine, digits_images: np.ndarray, tmp_path: Path
) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps(infer_body(digits_images[:3])))
    result = inferstack(
        checkout,
        "jobs",
        "submit",
        "--model",
        "digits",
        str(request),
        "--stack",
        STACK,
        "--wait",
        "--timeout",
        "120",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    expected = digits_engine.infer({"image": digits_images[:3]})
    outputs = {
        out["name"]: np.array(out["data"]).reshape(out["shape"]) for out in response["outputs"]
    }
    np.testing.assert_allclose(outputs["probabilities"], expected["probabilities"], atol=1e-6)
    assert outputs["label"].tolist() == expected["label"].tolist()


def test_jobs_submit_then_status_and_wait(
    checkout: Checkout, digits_images: np.ndarray, tmp_path: Path
) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"image": digits_images[:1].tolist()}))  # named arrays
    submitted = inferstack(
        checkout, "jobs", "submit", "--model", "digits", str(request), "--stack", STACK, "--json"
    )
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)
    assert job["status"] == "pending"

    waited = inferstack(
        checkout, "jobs", "wait", job["id"], "--model", "digits", "--stack", STACK, "--json"
    )
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["model_name"] == "digits"
    status = inferstack(
        checkout, "jobs", "status", job["id"], "--model", "digits", "--stack", STACK, "--json"
    )
    assert status.returncode == 0, status.stderr
    record = json.loads(status.stdout)
    assert record["id"] == job["id"] and record["status"] == "succeeded"


def test_jobs_submit_for_a_model_not_in_the_stack_is_one_line(
    checkout: Checkout, tmp_path: Path
) -> None:
    request = tmp_path / "request.json"
    request.write_text("{}")
    result = inferstack(
        checkout, "jobs", "submit", "--model", "nope", str(request), "--stack", STACK
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "'nope'" in lines[0] and "digits" in lines[0], lines[0]


def test_batch_run_downloads_results_errors_and_summary(
    checkout: Checkout, digits_engine: Engine, digits_images: np.ndarray, tmp_path: Path
) -> None:
    lines, bad = 120, {7, 50, 51}
    batch = batch_file(digits_images, lines, bad)
    path = tmp_path / "small.jsonl"
    path.write_text(batch.text)
    out = tmp_path / "out"
    result = inferstack(
        checkout,
        "batch",
        "run",
        str(path),
        "--model",
        "digits",
        "--stack",
        STACK,
        "--out",
        str(out),
        "--timeout",
        "180",
    )
    assert result.returncode == 0, result.stderr
    assert "succeeded" in result.stdout and "117" in result.stdout, result.stdout

    results = jsonl((out / "small.jsonl").read_bytes())
    expected = engine_outputs(digits_engine, digits_images)
    assert len(results) == lines
    for number, row in enumerate(results, start=1):
        if number in bad:
            assert set(row) == {"error"}, row
        else:
            assert_matches(row, expected, (number - 1) % len(digits_images))
    errors = jsonl((out / "small.errors.jsonl").read_bytes())
    assert [error["line"] for error in errors] == sorted(bad)
    summary = json.loads((out / "small.summary.json").read_text())
    assert (summary["lines"], summary["succeeded"], summary["failed"]) == (lines, 117, 3)
    assert summary["chunks"] == 3
