"""An `up` interrupted part way (Ctrl-C: SIGINT to the process) leaves state from which
the next `up` converges (nothing is created twice, nothing is orphaned) and `down`
removes everything. The state file is written after every realized resource, so it is
read while the interrupted `up` runs to pick the moment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.stack_loader import load_stack
from localdev.deploy import down, up
from localdev.deploy.state import StackState, state_path
from stacks.schema import StackConfig
from tests.support.deploy import REPO, leftovers, stage_root

STACK = "t-interrupt"
# The stack's first resources take a few seconds; the rest (functions, API) come later.
AFTER = 8

UP = """
import sys
from pathlib import Path
from infra.stack_loader import load_stack
from localdev.deploy import up
local = load_stack("local")
config = local.model_copy(update={"models": local.models[:1]})
up(sys.argv[1], config=config, root=Path(sys.argv[2]))
"""


def _config() -> StackConfig:
    local = load_stack("local")
    return local.model_copy(update={"models": local.models[:1]})


def _recorded(path: Path) -> int:
    try:
        return len(json.loads(path.read_text(encoding="utf-8"))["resources"])
    except (OSError, ValueError, KeyError):
        return 0  # not written yet (a reader never sees half a file: it is renamed into place)


def _ids(state: StackState, type_: str) -> set[str]:
    return {resource.id for resource in state.resources if resource.type == type_}


def test_an_interrupted_up_converges_and_down_removes_everything(
    endpoint: str, digits_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config = _config()
    root = stage_root(tmp_path_factory.mktemp(STACK) / "root", config, {"digits": digits_dir})
    path = state_path(root, STACK)
    process = subprocess.Popen(
        [sys.executable, "-c", UP, STACK, str(root)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300
        while _recorded(path) < AFTER and process.poll() is None:
            assert time.monotonic() < deadline, "up never got that far"
            time.sleep(0.05)
        assert process.poll() is None, process.communicate()[0].decode()
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=300)[0].decode()
    finally:
        process.kill()
    assert process.returncode != 0, output
    assert "KeyboardInterrupt" in output

    interrupted = StackState.load(path, STACK)
    assert len(interrupted.resources) >= AFTER
    # Nothing the stack owns in LocalStack is missing from the state.
    state_layers = {r.inputs["layerName"] for r in interrupted.resources if "layerName" in r.inputs}
    live = leftovers(endpoint, STACK, state_layers)
    assert set(live.buckets) <= _ids(interrupted, "aws:s3/bucket:Bucket")
    assert set(live.functions) <= _ids(interrupted, "aws:lambda/function:Function")
    assert set(live.roles) <= _ids(interrupted, "aws:iam/role:Role")
    assert set(live.apis) <= _ids(interrupted, "aws:apigateway/restApi:RestApi")
    assert set(live.layer_versions) <= _ids(interrupted, "aws:lambda/layerVersion:LayerVersion")

    again = up(STACK, config=config, root=root)
    try:
        done = {r.urn for r in interrupted.resources}
        recreated = {c.name for c in again.changes if c.action in ("create", "replace")}
        assert not recreated & {r.name for r in interrupted.resources if r.urn in done}
        assert again.names("same") == {r.name for r in interrupted.resources}
        final = StackState.load(path, STACK)
        layers = {r.inputs["layerName"] for r in final.resources if "layerName" in r.inputs}
        live = leftovers(endpoint, STACK, layers)
        assert set(live.layer_versions) == _ids(final, "aws:lambda/layerVersion:LayerVersion")
        assert set(live.apis) == _ids(final, "aws:apigateway/restApi:RestApi")
        assert set(live.roles) == _ids(final, "aws:iam/role:Role")
    finally:
        down(STACK, root=root)
    left = leftovers(endpoint, STACK, layers)
    assert left.empty, left
