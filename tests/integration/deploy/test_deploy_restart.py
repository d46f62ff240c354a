"""LocalStack killed under a deployed stack and started again: `status` says so, and the
next `up` recreates what the new LocalStack lacks. Runs its own LocalStack (another port,
its own data), so the session's LocalStack and the other tests are not disturbed."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.stack_loader import load_stack
from localdev.deploy import down, status, up
from localdev.localstack import manager
from stacks.schema import LocalStackTarget, StackConfig
from tests.support.deploy import leftovers, stage_root

STACK = "t-restart"
PORT = 4567


@pytest.fixture(scope="module")
def own_localstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[manager.Paths]:
    paths = manager.Paths(
        venv=manager.Paths.default().venv, data=tmp_path_factory.mktemp("localstack-2")
    )
    manager.start(PORT, paths=paths)
    try:
        yield paths
    finally:
        manager.stop(paths)


def _ready(url: str) -> int:
    with httpx.Client(timeout=60.0) as http:
        return http.get(f"{url}/v2/health/ready").status_code


def test_a_restarted_localstack_is_reported_and_the_next_up_recovers(
    own_localstack: manager.Paths, digits_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    local = load_stack("local")
    config: StackConfig = local.model_copy(
        update={
            "target": LocalStackTarget(endpoint=f"http://127.0.0.1:{PORT}"),
            "models": local.models[:1],
        }
    )
    root = stage_root(tmp_path_factory.mktemp(STACK) / "root", config, {"digits": digits_dir})
    first = up(STACK, config=config, root=root)
    total = len(first.changes)
    assert first.counts["created"] == total
    assert _ready(first.outputs["url"]) == 200

    pid = manager.status(own_localstack).pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while manager.status(own_localstack).running and time.monotonic() < deadline:
        time.sleep(0.1)
    down_now = status(STACK, root=root)
    assert not down_now.localstack_up
    assert down_now.deployed and len(down_now.resources) == total
    assert all(resource.present is None for resource in down_now.resources)  # unknowable

    manager.start(PORT, paths=own_localstack)
    restarted = status(STACK, root=root)
    assert restarted.localstack_up
    assert len(restarted.missing) == total  # community LocalStack keeps nothing

    again = up(STACK, config=config, root=root)
    # Nothing survived, so nothing is "unchanged" except bucket settings the new bucket
    # already has as S3 defaults (checked by value: owner-enforced, public access blocked,
    # SSE-S3), which are in effect as declared: on the artifact and the jobs bucket.
    defaults = {
        f"inferstack-{STACK}-{bucket}-{setting}"
        for bucket in ("artifacts", "jobs")
        for setting in ("ownership", "public-access", "encryption")
    }
    assert again.names("same") <= defaults
    # Recreated; resources whose inputs held ids of the old LocalStack are replacements.
    assert again.counts["created"] + again.counts["replaced"] == total - len(again.names("same"))
    assert status(STACK, root=root).missing == []
    assert _ready(again.outputs["url"]) == 200
    assert again.outputs["url"] != first.outputs["url"]  # a new REST API id

    down(STACK, root=root)
    layers = {c.name for c in first.changes if c.type.startswith("aws:lambda/layer")}
    left = leftovers(f"http://127.0.0.1:{PORT}", STACK, layers)
    assert left.empty, left
