"""Pulumi dynamic resources (`pulumi.dynamic.Resource`, e.g. infra/local_server.py's
model server process), hosted in the engine's process as Pulumi's dynamic provider host
hosts them: the provider travels in the resource's `__provider` input (dill, base64), is
deserialized and called (create, read for "does it exist", delete). Nothing of theirs is
in AWS: no provider, no clients.

Recovery from an interrupted create needs one method Pulumi's interface lacks: the
provider's `find(props) -> set[str]`, the ids a create with these props may have left
(see `Realizer.find`); a provider without it is refused before anything is created.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import dill
from pulumi.dynamic import ResourceProvider

from localdev.deploy.realizers.base import Context, Inputs, Realized, Realizer
from localdev.deploy.state import ResourceState
from localdev.errors import DeployError

T = TypeVar("T")

PROVIDER_KEY = "__provider"
# pulumi-python:dynamic:Resource, or pulumi-python:dynamic/<module>:<name> for a subclass.
TYPE_PREFIX = "pulumi-python:dynamic"

_cache: dict[str, ResourceProvider] = {}
_cache_lock = threading.Lock()


def provider_of(props: dict[str, Any]) -> ResourceProvider:
    """The provider serialized in `props` (deserialized once per process, as Pulumi's host
    does)."""
    serialized = props.get(PROVIDER_KEY)
    if not isinstance(serialized, str) or not serialized:
        raise DeployError(f"a dynamic resource without its {PROVIDER_KEY} input")
    with _cache_lock:
        provider = _cache.get(serialized)
        if provider is None:
            provider = dill.loads(base64.b64decode(serialized))
            if not isinstance(provider, ResourceProvider):
                raise DeployError(f"{PROVIDER_KEY} holds {type(provider).__name__}, not a provider")
            _cache[serialized] = provider
    return provider


class Dynamic(Realizer):
    """A dynamic resource type (`pulumi-python:dynamic/<module>:<name>`): what it does is
    its provider's."""

    # Not consulted: the inputs are the provider's to check (`aws` is False).
    supported = frozenset()
    # Every change replaces; a replaced resource goes first (a process holding its port).
    replace_on = None
    delete_before_replace = True
    aws = False
    gone = "it is gone (its provider's read no longer finds it)"

    def __init__(self, type_: str) -> None:
        self.type = type_

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        provider = provider_of(inputs.values)
        result = _call("create", lambda: provider.create(dict(inputs.values)))
        outputs = {k: v for k, v in (result.outs or {}).items() if k != PROVIDER_KEY}
        return Realized(str(result.id), outputs)

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        props = _props(old)
        result = _call("read", lambda: provider_of(props).read(old.id, props))
        return bool(result.id)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        props = _props(old)
        _call("delete", lambda: provider_of(props).delete(old.id, props))

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        provider = provider_of(inputs.values)
        find = getattr(provider, "find", None)
        if find is None:
            raise DeployError(
                f"dynamic provider {type(provider).__name__} has no find(props): the in-process"
                " engine could not clean up after an interrupted create; add it, or deploy with"
                " the Pulumi CLI"
            )
        return {str(id_) for id_ in _call("find", lambda: find(dict(inputs.values)))}


def _props(old: ResourceState) -> dict[str, Any]:
    """What Pulumi passes read and delete: the resource's state (its inputs and outputs)."""
    return {**old.inputs, **old.outputs}


def _call(method: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except DeployError:
        raise
    except Exception as exc:  # the provider's own errors, whatever they are
        raise DeployError(f"the dynamic provider's {method} failed: {exc}") from exc
