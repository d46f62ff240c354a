"""`preview`: what `up` would do and why, changing nothing. The engine's planner against a
fake realizer that fails on any write, and against CloudWatch Logs behind botocore's
Stubber, where any call not stubbed (every write) fails the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from botocore.stub import Stubber

from localdev.deploy import engine
from localdev.deploy.realizers import REALIZERS
from localdev.deploy.realizers.base import Context, Inputs, Realized, Realizer
from localdev.deploy.state import ResourceState
from tests.support.boto import stub_clients

BUCKET = "aws:s3/bucket:Bucket"
ENDPOINT = "http://127.0.0.1:4566"


class Buckets(Realizer):
    """Creates while `writable`; afterwards any write is a test failure."""

    type = BUCKET
    supported = frozenset({"bucket", "forceDestroy"})
    replace_on = frozenset({"bucket"})
    taggable = True

    def __init__(self) -> None:
        self.writable = True
        self.reads = 0

    def _write(self) -> None:
        assert self.writable, "preview wrote"

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        self._write()
        return Realized(ctx.name, {"bucket": ctx.name, "arn": f"arn:aws:s3:::{ctx.name}"})

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        self._write()
        return Realized(old.id, old.outputs)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        self._write()

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        return set()  # no create is interrupted here

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        self.reads += 1
        return True


Declared = dict[str, tuple[dict[str, Any], pulumi.ResourceOptions | None]]


def _program(buckets: Declared) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        provider = aws.Provider("local", region="us-east-1", endpoints=[{"s3": ENDPOINT}])
        for name, (inputs, options) in buckets.items():
            opts = pulumi.ResourceOptions.merge(pulumi.ResourceOptions(provider=provider), options)
            aws.s3.Bucket(name, **inputs, opts=opts)
        return {}

    return run


def test_preview_says_what_up_would_do_and_why_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = Buckets()
    monkeypatch.setitem(REALIZERS, BUCKET, fake)
    path = tmp_path / "t.json"
    retained = pulumi.ResourceOptions(retain_on_delete=True)
    engine.deploy(
        "t",
        _program(
            {
                "same": ({"bucket": "same"}, None),
                "renamed": ({"bucket": "old-name"}, None),
                "tuned": ({"force_destroy": False}, None),
                "forced": ({"force_destroy": False}, None),
                "gone": ({}, None),
                "kept": ({}, retained),
            }
        ),
        path,
    )
    fake.writable = False
    before = path.read_bytes()
    summary = engine.plan(
        "t",
        _program(
            {
                "same": ({"bucket": "same"}, None),
                "renamed": ({"bucket": "new-name"}, None),
                "tuned": ({"force_destroy": True}, None),
                "forced": (
                    {"force_destroy": True},
                    pulumi.ResourceOptions(replace_on_changes=["force_destroy"]),
                ),
                "new": ({}, None),
            }
        ),
        path,
    )
    reasons = {change.name: (change.action, change.reason) for change in summary.changes}
    assert reasons == {
        "same": ("same", ""),
        "renamed": ("replace", "bucket changed"),
        "tuned": ("update", "forceDestroy changed"),
        "forced": ("replace", "forceDestroy changed; replace_on_changes"),
        "new": ("create", "new"),
        "gone": ("delete", "no longer in the program"),
        "kept": ("retain", "no longer in the program"),
    }
    assert summary.operation == "preview"
    assert path.read_bytes() == before
    assert fake.reads == 2  # "same" and "tuned" were looked up, read-only


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    clients = stub_clients("logs", "sts")
    monkeypatch.setattr(engine, "Clients", lambda config: clients)
    with Stubber(clients("logs")) as stubber, Stubber(clients("sts")) as sts:
        sts.add_response("get_caller_identity", {"Account": "000000000000"})
        yield stubber
        stubber.assert_no_pending_responses()


def _log_groups(days: int, *extra: str) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        provider = aws.Provider("local", region="us-east-1", endpoints=[{"logs": ENDPOINT}])
        opts = pulumi.ResourceOptions(provider=provider)
        aws.cloudwatch.LogGroup("g", name="/aws/lambda/f", retention_in_days=days, opts=opts)
        for name in extra:
            aws.cloudwatch.LogGroup(name, name=f"/aws/lambda/{name}", opts=opts)
        return {}

    return run


def test_preview_makes_no_aws_write_call(tmp_path: Path, logs: Stubber) -> None:
    # `up` looks for the group before creating it (see engine._recover).
    logs.add_response(
        "describe_log_groups", {"logGroups": []}, {"logGroupNamePrefix": "/aws/lambda/f"}
    )
    logs.add_response("create_log_group", {}, {"logGroupName": "/aws/lambda/f", "tags": {}})
    logs.add_response(
        "put_retention_policy", {}, {"logGroupName": "/aws/lambda/f", "retentionInDays": 7}
    )
    engine.deploy("t", _log_groups(7), tmp_path / "t.json")
    # The only call the preview may make: is the group still there. A write (a retention
    # policy, a new group) is a call the Stubber has no answer for, and fails.
    logs.add_response(
        "describe_log_groups",
        {"logGroups": [{"logGroupName": "/aws/lambda/f"}]},
        {"logGroupNamePrefix": "/aws/lambda/f"},
    )
    summary = engine.plan("t", _log_groups(14, "h"), tmp_path / "t.json")
    assert {(c.name, c.action, c.reason) for c in summary.changes} == {
        ("g", "update", "retentionInDays changed"),
        ("h", "create", "new"),
    }
