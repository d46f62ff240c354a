"""Pulumi dynamic resources in the in-process engine (localdev/deploy/realizers/dynamic.py):
the provider comes out of the `__provider` input and is called as Pulumi's host calls it;
no AWS provider or clients are needed for them, in `up`, `status`, `down` and in the
recovery from an interrupted create. A fake provider (a dict for a cloud), no process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic as dynamic
import pulumi_kubernetes as k8s
import pytest

from localdev.deploy import engine
from localdev.deploy.realizers import realizer_for, stand_in_reason
from localdev.deploy.realizers.dynamic import Dynamic
from localdev.deploy.state import StackState, state_path
from localdev.errors import DeployError

STACK = "t"
TYPE = "pulumi-python:dynamic/test:Thing"
# id -> props: what the fake provider's resources are, across deserialized copies.
LIVE: dict[str, dict[str, Any]] = {}


class Killed(BaseException):
    """Where SIGKILL would strike, inside `create` after its effect."""


class ThingProvider(dynamic.ResourceProvider):
    serialize_as_secret_always = False
    kill_after_create = False

    def create(self, props: dict[str, Any]) -> dynamic.CreateResult:
        id_ = f"thing-{props['label']}"
        LIVE[id_] = dict(props)
        if ThingProvider.kill_after_create:
            raise Killed
        return dynamic.CreateResult(id_, {**props, "made": True})

    def read(self, id_: str, props: dict[str, Any]) -> dynamic.ReadResult:
        return dynamic.ReadResult(id_ if id_ in LIVE else None, props)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        LIVE.pop(id_, None)

    def find(self, props: dict[str, Any]) -> set[str]:
        id_ = f"thing-{props['label']}"
        return {id_} if id_ in LIVE else set()


class NoFindProvider(ThingProvider):
    find = None  # type: ignore[assignment]


class Thing(dynamic.Resource, module="test", name="Thing"):
    made: pulumi.Output[bool]

    def __init__(
        self,
        name: str,
        label: str,
        provider: dynamic.ResourceProvider | None = None,
        stands_in: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {"label": label, "standsIn": stands_in, "made": None}
        super().__init__(provider or ThingProvider(), name, props, opts)


class Endpoint(pulumi.ComponentResource):
    """Declared objects the engine cannot realize, and a Thing standing in for them."""

    def __init__(self, name: str) -> None:
        super().__init__("test:index:Endpoint", name)
        k8s.core.v1.Namespace(f"{name}-namespace", opts=pulumi.ResourceOptions(parent=self))
        Thing(f"{name}-server", "server", stands_in=name, opts=pulumi.ResourceOptions(parent=self))


def _program(labels: list[str]) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        things = [Thing(f"thing-{label}", label) for label in labels]
        return {"made": [thing.made for thing in things]}

    return run


@pytest.fixture(autouse=True)
def _empty_cloud() -> None:
    LIVE.clear()
    ThingProvider.kill_after_create = False


def _up(root: Path, program: Callable[[], dict[str, Any]]) -> engine.Summary:
    return engine.deploy(STACK, program, state_path(root, STACK))


def test_dynamic_types_have_the_dynamic_realizer() -> None:
    for type_ in (TYPE, "pulumi-python:dynamic:Resource"):
        realizer = realizer_for(type_)
        assert isinstance(realizer, Dynamic)
        assert (realizer.type, realizer.aws) == (type_, False)
    assert realizer_for("aws:dynamodb/table:Table") is None


def test_up_creates_through_the_provider_then_a_re_up_changes_nothing(tmp_path: Path) -> None:
    summary = _up(tmp_path, _program(["a", "b"]))
    assert summary.names("create") == {"thing-a", "thing-b"}
    assert summary.outputs == {"made": [True, True]}
    assert set(LIVE) == {"thing-a", "thing-b"}
    state = StackState.load(state_path(tmp_path, STACK), STACK)
    assert state.providers == {}
    assert {r.provider for r in state.resources} == {""}
    assert "__provider" not in state.resources[0].outputs
    again = _up(tmp_path, _program(["a", "b"]))
    assert again.changed == 0


def test_a_resource_gone_is_created_again_and_status_sees_it_without_localstack(
    tmp_path: Path,
) -> None:
    _up(tmp_path, _program(["a"]))
    assert [r.present for r in engine.status(STACK, root=tmp_path).resources] == [True]
    LIVE.clear()  # the process died, the machine restarted
    assert [r.present for r in engine.status(STACK, root=tmp_path).resources] == [False]
    summary = _up(tmp_path, _program(["a"]))
    (change,) = summary.changes
    assert (change.action, change.reason) == ("create", Dynamic.gone)
    assert set(LIVE) == {"thing-a"}


def test_a_change_replaces_the_old_one_first(tmp_path: Path) -> None:
    _up(tmp_path, _program(["a"]))
    summary = _up(tmp_path, lambda: {"made": [Thing("thing-a", "b").made]})
    assert summary.names("replace") == {"thing-a"}
    assert set(LIVE) == {"thing-b"}


def test_down_deletes_through_the_provider(tmp_path: Path) -> None:
    _up(tmp_path, _program(["a", "b"]))
    summary = engine.down(STACK, root=tmp_path)
    assert summary.names("delete") == {"thing-a", "thing-b"}
    assert LIVE == {}
    assert not state_path(tmp_path, STACK).exists()


def test_forgetting_a_stack_whose_localstack_is_gone_still_deletes_them(tmp_path: Path) -> None:
    _up(tmp_path, _program(["a"]))
    assert engine.forget(STACK, root=tmp_path) == 1
    assert LIVE == {}
    assert not state_path(tmp_path, STACK).exists()


def test_an_interrupted_create_is_found_and_deleted_by_the_next_up(tmp_path: Path) -> None:
    ThingProvider.kill_after_create = True

    def program() -> dict[str, Any]:
        # Nothing exported: a registration stopped by a BaseException never resolves.
        Thing("thing-a", "a")
        return {}

    with pytest.raises(DeployError) as stopped:
        _up(tmp_path, program)
    assert isinstance(stopped.value.__cause__, Killed)
    assert set(LIVE) == {"thing-a"}  # made, not recorded as a resource
    state = StackState.load(state_path(tmp_path, STACK), STACK)
    assert [c.resource.name for c in state.creating] == ["thing-a"]
    ThingProvider.kill_after_create = False
    summary = _up(tmp_path, _program(["a"]))
    assert [(c.action, c.name) for c in summary.changes] == [
        ("delete", "thing-a"),
        ("create", "thing-a"),
    ]
    assert set(LIVE) == {"thing-a"}
    assert not StackState.load(state_path(tmp_path, STACK), STACK).creating


def test_a_provider_without_find_is_refused_before_it_creates(tmp_path: Path) -> None:
    with pytest.raises(DeployError, match="has no find"):
        _up(tmp_path, lambda: {"made": Thing("thing-a", "a", NoFindProvider()).made})
    assert LIVE == {}


def test_what_a_dynamic_resource_stands_in_for_says_so(tmp_path: Path) -> None:
    summary = _up(tmp_path, lambda: {"endpoint": Endpoint("gpu").urn})
    (declared,) = summary.not_emulated
    assert declared.name == "gpu-namespace"
    assert declared.reason == stand_in_reason("gpu-server")
    assert declared.reason == "no Kubernetes cluster: served by a local process instead: gpu-server"
    assert "gpu-server" in summary.names("create")
    kept = engine.status(STACK, root=tmp_path).not_emulated
    assert [item.reason for item in kept] == [declared.reason]
