"""The shape every realizer has: create, update, delete and an existence check of one
resource type against LocalStack, with boto3."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from localdev.deploy.aws import Clients, is_missing
from localdev.deploy.state import ResourceState
from localdev.errors import DeployError

T = TypeVar("T")


@dataclass(frozen=True)
class Realized:
    id: str
    # What the cloud computed (ARNs, versions, ...), by the provider's output names.
    outputs: dict[str, Any]


@dataclass(frozen=True)
class Context:
    clients: Clients
    # The resource's logical (Pulumi) name.
    name: str
    # Provider default tags merged with the resource's own `tags`.
    tags: dict[str, str]
    # When a vanished resource is recreated unchanged: its old physical name, kept so
    # that names (and ARNs built from them) stay what dependents already hold.
    reuse_name: str | None = None

    def autoname(
        self,
        explicit: Any,
        *,
        prefix: str | None = None,
        max_length: int = 64,
        lowercase: bool = False,
    ) -> str:
        """The input's name, or Pulumi's auto-name: the logical name (or the given prefix)
        and random hex characters."""
        if explicit:
            return str(explicit)
        if self.reuse_name:
            return self.reuse_name
        suffix = secrets.token_hex(4)[:7]
        if prefix:
            return f"{prefix[: max_length - 7]}{suffix}"
        base = self.name.lower() if lowercase else self.name
        return f"{base[: max_length - 8]}-{suffix}"


class Inputs:
    """Typed reads of a resource's resolved inputs (camelCase keys, numbers as floats)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def text(self, key: str) -> str:
        value = self.values.get(key)
        if value is None or value == "":
            raise DeployError(f"input {key!r} is required")
        return str(value)

    def opt_text(self, key: str) -> str | None:
        value = self.values.get(key)
        return None if value is None or value == "" else str(value)

    def integer(self, key: str) -> int:
        return int(self.values[key])

    def opt_integer(self, key: str) -> int | None:
        value = self.values.get(key)
        return None if value is None else int(value)

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.values.get(key)
        return default if value is None else bool(value)

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.values.get(key)
        return dict(value) if isinstance(value, dict) else {}

    def items(self, key: str) -> list[Any]:
        value = self.values.get(key)
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]

    def raw(self, key: str) -> Any:
        return self.values.get(key)


class Realizer:
    type: ClassVar[str]
    # Input keys this realizer applies; any other non-empty input is an error (never
    # silently ignored). `tags` is implied for taggable types.
    supported: ClassVar[frozenset[str]]
    # Input keys whose change needs a new physical resource (the rest update in place);
    # None: every change does.
    replace_on: ClassVar[frozenset[str] | None] = None
    # Replacement normally creates the new resource first and deletes the old one at
    # the end of `up`; resources whose identity does not change must go first.
    delete_before_replace: ClassVar[bool] = False
    taggable: ClassVar[bool] = False

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        raise NotImplementedError

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        raise NotImplementedError(f"{self.type} has no in-place update")

    def delete(self, ctx: Context, old: ResourceState) -> None:
        raise NotImplementedError

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        raise NotImplementedError

    def owns(self, old: ResourceState) -> str | None:
        """A key for what deleting this resource also deletes (see `container`)."""
        return None

    def container(self, old: ResourceState) -> str | None:
        """The `owns` key of a resource whose deletion takes this one with it: when both
        go in one run, this one needs no call of its own."""
        return None


def found(call: Callable[[], Any]) -> bool:
    """Whether `call` succeeds; False when the cloud says the resource is missing."""
    try:
        call()
    except Exception as exc:
        if is_missing(exc):
            return False
        raise
    return True


def gone_ok(call: Callable[[], Any]) -> None:
    """Run a delete; a resource that is already gone is fine (down is safe to re-run)."""
    try:
        call()
    except Exception as exc:
        if not is_missing(exc):
            raise


def api_shape(value: Any) -> Any:
    """camelCase provider inputs -> the PascalCase shapes AWS APIs take (`id` -> `ID`),
    whole floats -> ints, None dropped."""
    if isinstance(value, dict):
        return {
            ("ID" if key == "id" else key[:1].upper() + key[1:]): api_shape(item)
            for key, item in value.items()
            if item is not None
        }
    if isinstance(value, list):
        return [api_shape(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def optional(**kwargs: Any) -> dict[str, Any]:
    """Keyword arguments without the ones that are None (boto3 rejects None)."""
    return {key: value for key, value in kwargs.items() if value is not None}
