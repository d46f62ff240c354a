"""`inferstack jobs` and `inferstack batch` as real subprocesses against a stack deployed to
LocalStack.

The CLI finds a stack by name (stacks/<name>.py) and its outputs in the project's
build/deploy/, both under the checkout it runs from. So the stack is deployed from a
staged checkout: the repository's packages linked in, `layers/` copied (the project root
is where layers/package.py lies, links resolved) and a `stacks/` holding only this test's
stack file; the CLI runs there, so a developer's own deployments are left alone.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from localdev.deploy import down, up
from localdev.localstack import manager
from model_runtime.engine import Engine
from tests.support.deploy import REPO, infer_body, stage_root
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
LINKED = ("cli", "infra", "localdev", "model_build", "plugins")


@dataclass(frozen=True)
class Checkout:
    root: Path
    url: str


@pytest.fixture(scope="module")
def checkout(
    localstack: manager.Status, digits_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Checkout]:
    config = events_config(timeout_s=10, batch_size=2, max_receives=3, chunk_lines=CHUNK_LINES)
    root = stage_root(tmp_path_factory.mktemp(STACK) / "root", config, {"digits": digits_dir})
    for name in LINKED:
        (root / name).symlink_to(REPO / name)
    shutil.copytree(REPO / "layers", root / "layers", ignore=shutil.ignore_patterns("__pycache__"))
    # The only stack there: stacks/local.py as a module that is not a stack (a leading
    # "_"), so that the two do not both claim the account's API Gateway logging role.
    (root / "stacks").mkdir()
    for name in ("__init__.py", "schema.py"):
        shutil.copyfile(REPO / "stacks" / name, root / "stacks" / name)
    shutil.copyfile(REPO / "stacks" / "local.py", root / "stacks" / "_local.py")
    (root / "stacks" / f"{STACK}.py").write_text(STACK_FILE, encoding="utf-8")
    assert staged_config(root) == json.loads(config.model_dump_json())
    summary = up(STACK, config=config, root=root)
    try:
        yield Checkout(root, str(summary.outputs["url"]))
    finally:
        down(STACK, root=root)


def staged_config(root: Path) -> dict[str, Any]:
    """The stack the CLI will load from the staged checkout, as JSON."""
    code = (
        f"from infra.stack_loader import load_stack; print(load_stack({STACK!r}).model_dump_json())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True
    )
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def inferstack(
    checkout: Checkout, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.app", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=checkout.root,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )


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
