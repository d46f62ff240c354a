"""The engine honours Pulumi's resource options, or refuses them by name: a tiny program
(one provider, buckets) run by the real engine against a fake bucket realizer (no AWS)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from localdev.deploy import engine
from localdev.deploy.realizers import REALIZERS
from localdev.deploy.realizers.base import Context, Inputs, Realized, Realizer
from localdev.deploy.state import ResourceState, StackState, state_path
from localdev.errors import DeployError

BUCKET = "aws:s3/bucket:Bucket"
STACK = "t"


class FakeBuckets(Realizer):
    """Records every call; the bucket name forces a replacement, the rest update."""

    type = BUCKET
    supported = frozenset({"bucket", "forceDestroy", "objectLockEnabled"})
    replace_on = frozenset({"bucket"})
    taggable = True

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.created = 0
        self.on_create: Callable[[str], None] | None = None

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        if self.on_create is not None:
            self.on_create(ctx.name)
        self.created += 1
        physical = f"{ctx.name}-{self.created}"
        self.calls.append(("create", physical))
        return Realized(physical, {"bucket": physical})

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        self.calls.append(("update", old.id))
        return Realized(old.id, old.outputs)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        self.calls.append(("delete", old.id))

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        return set()  # no create is interrupted here

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        return True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeBuckets:
    realizer = FakeBuckets()
    monkeypatch.setitem(REALIZERS, BUCKET, realizer)
    monkeypatch.setattr(engine, "reachable", lambda endpoint: True)
    return realizer


Buckets = Mapping[str, tuple[dict[str, Any], pulumi.ResourceOptions | None]]


def _up(root: Path, buckets: Buckets) -> engine.Summary:
    """`up` of a program declaring `buckets`: name -> (inputs, options)."""

    def program() -> dict[str, Any]:
        provider = aws.Provider(
            "local", region="us-east-1", endpoints=[{"s3": "http://127.0.0.1:4566"}]
        )
        for name, (inputs, options) in buckets.items():
            opts = pulumi.ResourceOptions.merge(pulumi.ResourceOptions(provider=provider), options)
            aws.s3.Bucket(name, **inputs, opts=opts)
        return {}

    return engine.deploy(STACK, program, state_path(root, STACK))


def _state(root: Path) -> StackState:
    return StackState.load(state_path(root, STACK), STACK)


def test_ignore_changes_keeps_the_old_value_and_neither_updates_nor_replaces(
    tmp_path: Path, fake: FakeBuckets
) -> None:
    _up(tmp_path, {"b": ({"bucket": "one", "force_destroy": True}, None)})
    ignore = pulumi.ResourceOptions(ignore_changes=["force_destroy", "bucket"])
    summary = _up(tmp_path, {"b": ({"bucket": "two", "force_destroy": False}, ignore)})
    assert summary.names("same") == {"b"}
    assert fake.calls == [("create", "b-1")]
    (record,) = _state(tmp_path).resources
    assert record.inputs["bucket"] == "one" and record.inputs["forceDestroy"] is True
    # Without the option, the same change is a replacement.
    assert _up(tmp_path, {"b": ({"bucket": "two"}, None)}).names("replace") == {"b"}


def test_replace_on_changes_replaces_on_an_input_that_would_update(
    tmp_path: Path, fake: FakeBuckets
) -> None:
    _up(tmp_path, {"b": ({"force_destroy": True}, None)})
    assert _up(tmp_path, {"b": ({"force_destroy": False}, None)}).names("update") == {"b"}
    replace = pulumi.ResourceOptions(replace_on_changes=["force_destroy"])
    summary = _up(tmp_path, {"b": ({"force_destroy": True}, replace)})
    assert summary.names("replace") == {"b"}
    # Created first, the old one deleted at the end.
    assert fake.calls[-2:] == [("create", "b-2"), ("delete", "b-1")]


def test_delete_before_replace_deletes_the_old_resource_first(
    tmp_path: Path, fake: FakeBuckets
) -> None:
    first = pulumi.ResourceOptions(delete_before_replace=True)
    _up(tmp_path, {"b": ({"bucket": "one"}, first)})
    _up(tmp_path, {"b": ({"bucket": "two"}, first)})
    assert fake.calls == [("create", "b-1"), ("delete", "b-1"), ("create", "b-2")]


def test_retain_on_delete_drops_the_resource_from_the_state_without_deleting_it(
    tmp_path: Path, fake: FakeBuckets
) -> None:
    retain = pulumi.ResourceOptions(retain_on_delete=True)
    _up(tmp_path, {"b": ({"bucket": "one"}, retain), "c": ({}, retain)})
    replaced = _up(tmp_path, {"b": ({"bucket": "two"}, retain), "c": ({}, retain)})
    assert replaced.names("replace") == {"b"} and replaced.names("retain") == {"b"}
    assert replaced.counts["retained"] == 1
    down = engine.down(STACK, root=tmp_path)
    assert down.names("retain") == {"b", "c"} and down.count("delete") == 0
    assert not any(call == "delete" for call, _ in fake.calls)
    assert not state_path(tmp_path, STACK).exists()


def test_a_protected_resource_is_neither_replaced_nor_deleted(
    tmp_path: Path, fake: FakeBuckets
) -> None:
    protect = pulumi.ResourceOptions(protect=True)
    _up(tmp_path, {"b": ({"bucket": "one"}, protect)})
    with pytest.raises(DeployError, match=r"Bucket b: .*protected.*`protect`.*bucket changed"):
        _up(tmp_path, {"b": ({"bucket": "two"}, protect)})
    with pytest.raises(DeployError, match=r"cannot delete s3\.Bucket b: protected .*`protect`"):
        engine.down(STACK, root=tmp_path)
    with pytest.raises(DeployError, match=r"s3\.Bucket b: protected .*no longer in the program"):
        _up(tmp_path, {})
    assert fake.calls == [("create", "b-1")]
    assert [r.name for r in _state(tmp_path).resources] == ["b"]
    # Unprotected in the program, it goes.
    _up(tmp_path, {"b": ({"bucket": "one"}, None)})
    assert engine.down(STACK, root=tmp_path).names("delete") == {"b"}


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (
            pulumi.ResourceOptions(custom_timeouts=pulumi.CustomTimeouts(create="5m")),
            "customTimeouts",
        ),
        (pulumi.ResourceOptions(aliases=[pulumi.Alias(name="old")]), "aliases"),
        (pulumi.ResourceOptions(import_="existing"), "importId"),
        (pulumi.ResourceOptions(ignore_changes=["tags"]), "`ignore_changes` on tags"),
        (pulumi.ResourceOptions(ignore_changes=["tags.owner"]), "`ignore_changes` on tags.owner"),
    ],
)
def test_an_option_the_engine_cannot_honour_stops_it_naming_resource_and_option(
    tmp_path: Path, fake: FakeBuckets, options: pulumi.ResourceOptions, named: str
) -> None:
    with pytest.raises(DeployError) as raised:
        _up(tmp_path, {"b": ({}, options)})
    assert "Bucket b" in str(raised.value) and named in str(raised.value)
    assert fake.calls == []


def test_the_state_is_saved_after_every_resource_so_an_interrupted_up_loses_nothing(
    tmp_path: Path, fake: FakeBuckets
) -> None:
    path = state_path(tmp_path, STACK)
    on_disk: list[str] = []

    def on_create(name: str) -> None:
        if name == "c":
            # What a kill now would leave: the file as written so far.
            on_disk.extend(r["name"] for r in json.loads(path.read_text())["resources"])
            raise RuntimeError("stopped")  # the run stops here

    def program(with_c: bool) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            provider = aws.Provider(
                "local", region="us-east-1", endpoints=[{"s3": "http://127.0.0.1:4566"}]
            )
            a = aws.s3.Bucket("a", opts=pulumi.ResourceOptions(provider=provider))
            b = aws.s3.Bucket("b", opts=pulumi.ResourceOptions(provider=provider))
            if with_c:
                after = pulumi.ResourceOptions(provider=provider, depends_on=[a, b])
                aws.s3.Bucket("c", opts=after)
            return {}

        return run

    fake.on_create = on_create
    with pytest.raises(DeployError, match="Bucket c: stopped"):
        engine.deploy(STACK, program(True), path)
    assert sorted(on_disk) == ["a", "b"]
    assert sorted(r.name for r in _state(tmp_path).resources) == ["a", "b"]
    # The next up creates only what is missing; `down` deletes all of it.
    fake.on_create = None
    again = engine.deploy(STACK, program(True), path)
    assert again.names("create") == {"c"} and again.names("same") == {"a", "b"}
    assert engine.down(STACK, root=tmp_path).names("delete") == {"a", "b", "c"}
    created = [physical for call, physical in fake.calls if call == "create"]
    deleted = [physical for call, physical in fake.calls if call == "delete"]
    assert len(created) == 3 and sorted(deleted) == sorted(created)


def test_the_state_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    StackState("s").save(path)
    assert json.loads(path.read_text())["stack"] == "s"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]


def test_secret_outputs_are_no_reason_to_stop(tmp_path: Path, fake: FakeBuckets) -> None:
    # pulumi-aws marks e.g. an API key's value secret; that changes no cloud behaviour.
    secret = pulumi.ResourceOptions(additional_secret_outputs=["arn"])
    assert _up(tmp_path, {"b": ({}, secret)}).names("create") == {"b"}
