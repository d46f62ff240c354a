"""The shape every realizer has: create, update, delete and an existence check of one
resource type against LocalStack, with boto3; and `Described`, the one realizer for every
type that is a create (or put), a get and a delete call, driven by its `Description`."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from localdev.deploy.aws import Clients, error_code
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
    # The random part of an auto-name, chosen before the create call and recorded with
    # it, so that the name an interrupted create used can be found again.
    suffix: str = field(default_factory=lambda: secrets.token_hex(4)[:7])

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
        if prefix:
            return f"{prefix[: max_length - 7]}{self.suffix}"
        base = self.name.lower() if lowercase else self.name
        return f"{base[: max_length - 8]}-{self.suffix}"


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
    type: str
    # Input keys this realizer applies; any other non-empty input is an error (never
    # silently ignored). `tags` is implied for taggable types.
    supported: frozenset[str]
    # Input keys whose change needs a new physical resource (the rest update in place);
    # None: every change does.
    replace_on: frozenset[str] | None = None
    # Replacement normally creates the new resource first and deletes the old one at
    # the end of `up`; resources whose identity does not change must go first.
    delete_before_replace: bool = False
    taggable: bool = False
    # False for what lives outside AWS (a dynamic provider's resources): no AWS provider
    # and no clients needed, and the inputs are the provider's to check.
    aws: bool = True
    # Why a resource that was deployed unchanged is created again.
    gone: str = "it is gone from LocalStack"

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        raise NotImplementedError

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        raise NotImplementedError(f"{self.type} has no in-place update")

    def delete(self, ctx: Context, old: ResourceState) -> None:
        raise NotImplementedError

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        """Whether `old` is still there: False only on the type's not-found error codes;
        any other error propagates."""
        raise NotImplementedError

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        """The physical ids of what `create(ctx, inputs)` may have made, were it stopped part
        way: by the name it chooses, or by listing where the cloud chooses the id. Empty for
        a put that overwrites whatever is there (it cannot leave an orphan)."""
        raise NotImplementedError

    def owns(self, old: ResourceState) -> str | None:
        """A key for what deleting this resource also deletes (see `container`)."""
        return None

    def container(self, old: ResourceState) -> str | None:
        """The `owns` key of a resource whose deletion takes this one with it: when both
        go in one run, this one needs no call of its own."""
        return None


def is_missing(exc: ClientError, codes: frozenset[str]) -> bool:
    """Whether `exc` is the cloud saying the resource is not there (one of `codes`)."""
    return error_code(exc) in codes


def fetch(call: Callable[[], T], missing: frozenset[str]) -> T | None:
    """What `call` returns; None when it fails with one of the `missing` codes."""
    try:
        return call()
    except ClientError as exc:
        if is_missing(exc, missing):
            return None
        raise


def found(call: Callable[[], Any], missing: frozenset[str]) -> bool:
    """Whether `call` succeeds; False when it fails with one of the `missing` codes."""
    try:
        call()
    except ClientError as exc:
        if is_missing(exc, missing):
            return False
        raise
    return True


def gone_ok(call: Callable[[], Any], missing: frozenset[str]) -> None:
    """Run a delete; a resource that is already gone (one of the `missing` codes) is fine:
    down is safe to re-run."""
    fetch(call, missing)


Args = Callable[[ResourceState], dict[str, Any]]


def _no_outputs(_ctx: Context, _response: dict[str, Any]) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Description:
    """A resource type that is one boto3 call to create it, one to read it and one to
    delete it; `Described` realizes it."""

    type: str
    # The boto3 client.
    service: str
    supported: frozenset[str]
    # The call that creates the resource (for a setting: the PUT), and its arguments.
    create: str
    create_args: Callable[[Context, Inputs], dict[str, Any]]
    # The call that reads the resource back, and the one that deletes it.
    get: str
    delete: str
    # The arguments naming an existing resource, for `get` and `delete`.
    address: Args
    # The physical id, from the inputs and what `create` answered.
    physical_id: Callable[[Inputs, dict[str, Any]], str]
    # The error codes meaning "not there" (for the resource or what holds it).
    missing: frozenset[str]
    # The outputs, from what `create` (or `update`) answered.
    outputs: Callable[[Context, dict[str, Any]], dict[str, Any]] = _no_outputs
    # As `Realizer.replace_on`.
    replace_on: frozenset[str] | None = None
    # The call that applies a change in place, taking `create`'s arguments (a PUT names
    # itself: it replaces the resource whole); None: every change replaces.
    update: str | None = None
    # The update call refuses an existing resource: delete it first.
    update_deletes_first: bool = False
    taggable: bool = False
    # `delete`'s arguments when they are not `address`.
    delete_args: Args | None = None
    # For types `get` answers even when nothing was set (S3 defaults): whether what it
    # answered is the resource as declared.
    is_present: Callable[[dict[str, Any], ResourceState], bool] | None = None
    owns: Callable[[ResourceState], str] | None = None
    container: Callable[[ResourceState], str] | None = None
    # As `Realizer.find`; None for a put that overwrites (`update` is `create`).
    find: Callable[[Context, Inputs], set[str]] | None = None


class Described(Realizer):
    """The realizer of every type a `Description` describes."""

    def __init__(self, description: Description) -> None:
        self.description = description
        self.type = description.type
        self.supported = description.supported
        self.replace_on = description.replace_on
        self.taggable = description.taggable

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        return self._call(ctx, inputs, self.description.create)

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        desc = self.description
        if desc.update is None:
            return super().update(ctx, inputs, old, changed)
        if desc.update_deletes_first:
            self.delete(ctx, old)
        return self._call(ctx, inputs, desc.update)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        desc = self.description
        call = getattr(ctx.clients(desc.service), desc.delete)
        args = (desc.delete_args or desc.address)(old)
        gone_ok(lambda: call(**args), desc.missing)

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        desc = self.description
        call = getattr(ctx.clients(desc.service), desc.get)
        response = fetch(lambda: call(**desc.address(old)), desc.missing)
        if response is None:
            return False
        return desc.is_present is None or desc.is_present(response, old)

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        desc = self.description
        if desc.find is not None:
            return desc.find(ctx, inputs)
        if desc.update == desc.create and not desc.update_deletes_first:
            return set()  # a put: a second one overwrites the first
        raise NotImplementedError(f"{desc.type} has no find")

    def owns(self, old: ResourceState) -> str | None:
        return self.description.owns(old) if self.description.owns else None

    def container(self, old: ResourceState) -> str | None:
        return self.description.container(old) if self.description.container else None

    def _call(self, ctx: Context, inputs: Inputs, method: str) -> Realized:
        desc = self.description
        call = getattr(ctx.clients(desc.service), method)
        response: dict[str, Any] = call(**desc.create_args(ctx, inputs))
        return Realized(desc.physical_id(inputs, response), desc.outputs(ctx, response))


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
