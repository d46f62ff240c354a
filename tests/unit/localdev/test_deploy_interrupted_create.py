"""An `up` stopped during a create call (SIGKILL, simulated by a BaseException raised
inside `create` after the cloud-side effect, or an error part way) leaves state from which
the next `up` converges and `down` removes everything: the create is recorded before the
call, and the next run finds and deletes what it made, never what was there before. The
real engine and a tiny program (one provider, buckets) against a fake cloud (no AWS)."""

from __future__ import annotations

from collections.abc import Callable
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


class Killed(BaseException):
    """Raised where SIGKILL would strike; the state file as it was then is put back
    afterwards (`_killed`), since a killed process writes nothing more."""


class FakeCloud(Realizer):
    """Buckets in a dict: named ones (an explicit `bucket`, or an auto-name) conflict as
    on AWS; with `generated_ids`, the cloud picks each id and the name is only a label
    (as for a REST API or an API key), so two creates make two resources."""

    type = BUCKET
    supported = frozenset({"bucket"})
    replace_on = frozenset({"bucket"})

    def __init__(self, *, generated_ids: bool = False) -> None:
        self.generated_ids = generated_ids
        # id -> name
        self.live: dict[str, str] = {}
        self.created = 0
        # Called with the name after the create's effect (or before it: `kill_before`).
        self.kill_after: str | None = None
        self.kill_before: str | None = None
        # The state file when the kill struck.
        self.path: Path | None = None
        self.at_kill: bytes | None = None
        # After the kill nothing happens any more (the other creates under way stop too).
        self.dead = False

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        name = ctx.autoname(inputs.opt_text("bucket"))
        if self.dead:
            raise Killed
        if name == self.kill_before:
            self._kill()
        if not self.generated_ids and name in self.live:
            raise DeployError(f"bucket {name} already exists")
        self.created += 1
        physical = f"id-{self.created}" if self.generated_ids else name
        self.live[physical] = name
        if name == self.kill_after:
            self._kill()
        return Realized(physical, {"bucket": name})

    def _kill(self) -> None:
        assert self.path is not None
        self.at_kill = self.path.read_bytes()
        self.dead = True
        raise Killed

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        if self.dead:
            raise Killed
        name = ctx.autoname(inputs.opt_text("bucket"))
        return {physical for physical, label in self.live.items() if label == name}

    def delete(self, ctx: Context, old: ResourceState) -> None:
        self.live.pop(old.id, None)

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        return old.id in self.live


def _program(names: dict[str, str | None]) -> Callable[[], dict[str, Any]]:
    """Buckets by logical name, each with an explicit physical name or none (auto-named)."""

    def run() -> dict[str, Any]:
        provider = aws.Provider(
            "local", region="us-east-1", endpoints=[{"s3": "http://127.0.0.1:4566"}]
        )
        for logical, physical in names.items():
            aws.s3.Bucket(logical, bucket=physical, opts=_opts(provider))
        return {}

    return run


def _opts(provider: aws.Provider) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(provider=provider)


NAMES: dict[str, str | None] = {"a": "bucket-a", "b": "bucket-b", "c": None}


def _up(root: Path) -> engine.Summary:
    return engine.deploy(STACK, _program(NAMES), state_path(root, STACK))


def _state(root: Path) -> StackState:
    return StackState.load(state_path(root, STACK), STACK)


def _killed(root: Path, cloud: FakeCloud, names: dict[str, str | None] = NAMES) -> None:
    """An `up` killed where `cloud` kills it: the state file is what it was then."""
    path = state_path(root, STACK)
    with pytest.raises(DeployError) as stopped:
        engine.deploy(STACK, _program(names), path)
    assert isinstance(stopped.value.__cause__, Killed)
    assert cloud.at_kill is not None
    path.write_bytes(cloud.at_kill)
    cloud.dead = False
    cloud.kill_after = cloud.kill_before = None


def _install(monkeypatch: pytest.MonkeyPatch, cloud: FakeCloud, root: Path) -> FakeCloud:
    cloud.path = state_path(root, STACK)
    monkeypatch.setitem(REALIZERS, BUCKET, cloud)
    monkeypatch.setattr(engine, "reachable", lambda endpoint: True)
    return cloud


def _converged(root: Path, cloud: FakeCloud) -> None:
    """The cloud holds exactly what the state lists: nothing orphaned, nothing twice."""
    state = _state(root)
    assert not state.creating
    assert {r.id for r in state.resources} == set(cloud.live)
    assert sorted(cloud.live.values()) == sorted({r.outputs["bucket"] for r in state.resources})
    assert {r.name for r in state.resources} == set(NAMES)


@pytest.mark.parametrize("generated_ids", [False, True], ids=["named", "generated-id"])
@pytest.mark.parametrize("victim", ["bucket-b", "auto"], ids=["explicit-name", "auto-name"])
def test_a_kill_after_the_create_call_leaves_no_orphan_and_no_name_conflict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, generated_ids: bool, victim: str
) -> None:
    cloud = _install(monkeypatch, FakeCloud(generated_ids=generated_ids), tmp_path)
    names = dict(NAMES)
    if victim == "auto":
        # Kill the auto-named bucket's create: its name is known only to the engine.
        original = cloud.create

        def create(ctx: Context, inputs: Inputs) -> Realized:
            if ctx.name == "c" and cloud.at_kill is None:  # the first up only
                cloud.kill_after = ctx.autoname(inputs.opt_text("bucket"))
            return original(ctx, inputs)

        monkeypatch.setattr(cloud, "create", create)
    else:
        cloud.kill_after = victim
    _killed(tmp_path, cloud, names)
    interrupted = _state(tmp_path)
    killed = "c" if victim == "auto" else "b"
    # Other creates may have been under way too (registrations run in parallel).
    assert killed in {creating.resource.name for creating in interrupted.creating}
    # The orphan exists in the cloud, not in the state's resources.
    orphans = len(cloud.live) - len(interrupted.resources)
    assert 1 <= orphans <= len(interrupted.creating)

    summary = _up(tmp_path)
    assert ("delete", killed) in {(c.action, c.name) for c in summary.changes}
    assert summary.count("delete") == orphans
    _converged(tmp_path, cloud)
    # A re-up is a no-op.
    assert _up(tmp_path).names("same") == set(NAMES)

    engine.down(STACK, root=tmp_path)
    assert cloud.live == {}
    assert not state_path(tmp_path, STACK).exists()


def test_a_kill_before_the_call_has_an_effect_deletes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = _install(monkeypatch, FakeCloud(), tmp_path)
    cloud.kill_before = "bucket-b"
    _killed(tmp_path, cloud)
    assert "b" in {c.resource.name for c in _state(tmp_path).creating}
    summary = _up(tmp_path)
    # Nothing of b's to delete (other creates under way may have left something).
    assert "b" not in summary.names("delete")
    assert "b" in summary.names("create")
    _converged(tmp_path, cloud)


def test_preview_after_a_kill_shows_the_orphan_s_delete_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = _install(monkeypatch, FakeCloud(), tmp_path)
    cloud.kill_after = "bucket-b"
    _killed(tmp_path, cloud)
    path = state_path(tmp_path, STACK)
    before, live = path.read_bytes(), dict(cloud.live)
    summary = engine.plan(STACK, _program(NAMES), path)
    assert ("delete", "b", "an interrupted create left it") in {
        (c.action, c.name, c.reason) for c in summary.changes
    }
    assert path.read_bytes() == before and cloud.live == live


def test_down_after_a_kill_removes_the_orphan_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = _install(monkeypatch, FakeCloud(generated_ids=True), tmp_path)
    cloud.kill_after = "bucket-a"
    _killed(tmp_path, cloud)
    assert cloud.live
    engine.down(STACK, root=tmp_path)
    assert cloud.live == {}
    assert not state_path(tmp_path, STACK).exists()


def test_a_create_that_fails_part_way_is_cleaned_up_by_the_next_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ordinary error after the effect (a function that never became Active, say)."""
    cloud = _install(monkeypatch, FakeCloud(), tmp_path)
    original = cloud.create

    def create(ctx: Context, inputs: Inputs) -> Realized:
        realized = original(ctx, inputs)
        if ctx.name == "b":
            raise DeployError("it never became ready")
        return realized

    monkeypatch.setattr(cloud, "create", create)
    with pytest.raises(DeployError, match="never became ready"):
        _up(tmp_path)
    assert "bucket-b" in cloud.live
    monkeypatch.setattr(cloud, "create", original)
    _up(tmp_path)
    _converged(tmp_path, cloud)


def test_what_was_there_before_the_create_is_never_deleted_nor_adopted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bucket of the same name that the stack did not create: the create is refused
    (as on AWS), and the next run, finding it, leaves it alone and is refused again."""
    cloud = _install(monkeypatch, FakeCloud(), tmp_path)
    cloud.live["bucket-b"] = "bucket-b"
    for _ in range(2):
        with pytest.raises(DeployError, match="bucket bucket-b already exists"):
            _up(tmp_path)
        assert cloud.live.get("bucket-b") == "bucket-b"
        (unfinished,) = _state(tmp_path).creating
        assert unfinished.existing == ["bucket-b"]
    engine.down(STACK, root=tmp_path)
    assert cloud.live == {"bucket-b": "bucket-b"}


def test_every_realizer_can_find_what_an_interrupted_create_made() -> None:
    """`find` is what makes a stopped create recoverable: every type has one (a put that
    overwrites finds nothing, by design)."""
    from localdev.deploy.realizers.base import Described

    for realizer in REALIZERS.values():
        if isinstance(realizer, Described):
            desc = realizer.description
            assert desc.find is not None or (
                desc.update == desc.create and not desc.update_deletes_first
            ), desc.type
        else:
            assert type(realizer).find is not Realizer.find, realizer.type
