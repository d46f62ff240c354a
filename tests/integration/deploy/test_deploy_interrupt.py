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
from typing import Any

import pytest

from infra.stack_loader import load_stack
from localdev.deploy import down, up
from localdev.deploy.state import StackState, state_path
from stacks.schema import StackConfig
from tests.support.deploy import REPO, aws, leftovers, stage_root

STACK = "t-interrupt"
# The stack's first resources take a few seconds; the rest (functions, API) come later.
AFTER = 8

UP = """
import sys
from pathlib import Path
from typing import Any
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


# SIGKILL: nothing runs after it (no handler, no checkpoint); what the state file said at
# that instant is all the next run has. Each kill point is a create call that has already
# made its resource in LocalStack but not returned: the moment an orphan can be born.
KILL_AT = (
    "aws:lambda/layerVersion:LayerVersion",
    "aws:iam/role:Role",
    "aws:lambda/function:Function",
    "aws:apigateway/restApi:RestApi",
    "aws:apigateway/apiKey:ApiKey",
)
_KIND = {
    "aws:s3/bucket:Bucket": "buckets",
    "aws:lambda/function:Function": "functions",
    "aws:lambda/layerVersion:LayerVersion": "layer_versions",
    "aws:iam/role:Role": "roles",
    "aws:apigateway/restApi:RestApi": "apis",
    "aws:apigateway/apiKey:ApiKey": "api_keys",
}


def _raw(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _layer_names(data: dict[str, Any]) -> set[str]:
    records = data.get("resources", []) + [c["resource"] for c in data.get("creating", [])]
    return {str(r["inputs"]["layerName"]) for r in records if "layerName" in r["inputs"]}


def _orphans(endpoint: str, data: dict[str, Any], layers: set[str]) -> dict[str, set[str]]:
    """What LocalStack holds of the stack (by kind) that the state does not list."""
    live = leftovers(endpoint, STACK, layers)
    listed: dict[str, set[str]] = {}
    for record in data.get("resources", []):
        listed.setdefault(record["type"], set()).add(record["id"])
    return {
        type_: set(getattr(live, kind)) - listed.get(type_, set())
        for type_, kind in _KIND.items()
        if set(getattr(live, kind)) - listed.get(type_, set())
    }


def _extras(endpoint: str) -> tuple[list[str], list[str]]:
    """The stack's log groups and usage plans (not in `leftovers`)."""
    groups = [
        group["logGroupName"]
        for page in aws("logs", endpoint).get_paginator("describe_log_groups").paginate()
        for group in page["logGroups"]
        if STACK in group["logGroupName"]
    ]
    plans = [
        plan["id"]
        for plan in aws("apigateway", endpoint).get_usage_plans()["items"]
        if STACK in plan["name"]
    ]
    return groups, plans


def _strike(
    process: subprocess.Popen[bytes],
    endpoint: str,
    path: Path,
    remaining: list[str],
    layers: set[str],
) -> str | None:
    """SIGKILL `process` while a create of one of the `remaining` types has made its
    resource in LocalStack and not returned (the process is stopped with SIGSTOP while
    LocalStack is compared with the state, so the moment cannot pass); the type struck,
    or None if the `up` finished first."""
    deadline = time.monotonic() + 300
    while process.poll() is None:
        assert time.monotonic() < deadline, "up never got there"
        data = _raw(path)
        if not {c["resource"]["type"] for c in data.get("creating", [])} & set(remaining):
            time.sleep(0.02)
            continue
        process.send_signal(signal.SIGSTOP)
        data = _raw(path)  # as it stays now
        creating = {c["resource"]["type"] for c in data.get("creating", [])}
        layers |= _layer_names(data)
        orphans = _orphans(endpoint, data, layers)
        struck = next((t for t in remaining if t in creating and t in orphans), None)
        if struck is not None:
            process.kill()
            process.wait(timeout=60)
            return struck
        process.send_signal(signal.SIGCONT)
        # Let it run between looks: stopped nearly all the time, its own waits (a
        # function becoming Active) would run out of wall-clock time.
        time.sleep(0.05)
    return None


def test_up_killed_mid_create_at_several_points_converges_and_down_removes_everything(
    endpoint: str, digits_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    config = _config()
    root = stage_root(tmp_path_factory.mktemp(STACK) / "root", config, {"digits": digits_dir})
    path = state_path(root, STACK)
    remaining = list(KILL_AT)
    killed: list[str] = []
    layers: set[str] = set()
    try:
        while remaining:
            process = subprocess.Popen(
                [sys.executable, "-c", UP, STACK, str(root)],
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            try:
                struck = _strike(process, endpoint, path, remaining, layers)
            finally:
                process.kill()
                output = process.communicate(timeout=60)[0].decode()
            if struck is None:
                # This up finished: the remaining kill points were passed by.
                assert process.returncode == 0, output
                break
            remaining.remove(struck)
            killed.append(struck)
        # A function waits to become Active: a wide window, always struck mid-call. The
        # others' windows are one call wide and may pass between two looks.
        assert "aws:lambda/function:Function" in killed and len(killed) >= 2, (killed, remaining)

        up(STACK, config=config, root=root)
        final = StackState.load(path, STACK)
        assert not final.creating
        layers |= {r.inputs["layerName"] for r in final.resources if "layerName" in r.inputs}
        # Converged: LocalStack holds exactly what the state lists (nothing orphaned,
        # nothing created twice), and a re-up changes nothing.
        raw = _raw(path)
        assert _orphans(endpoint, raw, layers) == {}
        live = leftovers(endpoint, STACK, layers)
        for type_, kind in _KIND.items():
            assert set(getattr(live, kind)) == _ids(final, type_), kind
        groups, plans = _extras(endpoint)
        assert set(groups) == _ids(final, "aws:cloudwatch/logGroup:LogGroup")
        assert set(plans) == _ids(final, "aws:apigateway/usagePlan:UsagePlan")
        assert up(STACK, config=config, root=root).changed == 0
    finally:
        down(STACK, root=root)
    left = leftovers(endpoint, STACK, layers)
    assert left.empty, left
    assert _extras(endpoint) == ([], [])
    assert not path.exists()
