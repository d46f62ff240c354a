"""The engine's record of what it created: build/deploy/<stack>.json.

One entry per realized resource (type, name, URN, physical id, its inputs as a canonical
JSON value and their hash, the outputs the cloud computed, the URNs it depends on), the
providers' settings (so `down` needs no program run), the stack outputs, and old physical
resources whose deletion has not succeeded yet, and the creates under way. Written
atomically, after every realized resource and before every create call (so an `up`
stopped at any point, even by SIGKILL, loses nothing it finished, and the next run can
find what an unfinished create left).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from localdev.errors import DeployError

VERSION = 1


@dataclass
class ResourceState:
    urn: str
    type: str
    name: str
    id: str
    provider: str
    inputs: dict[str, Any]
    inputs_hash: str
    outputs: dict[str, Any]
    dependencies: list[str] = field(default_factory=list)
    # Resource options: `down` (or a replacement) refuses to delete a protected resource,
    # and drops a retained one from the state without deleting it.
    protect: bool = False
    retain_on_delete: bool = False


@dataclass
class Creating:
    """A create call under way (or stopped part way). `resource` is the record it will
    have, without its physical id; the context it ran in (logical name, tags, the name
    it reused, its auto-name's random part) lets the realizer find what it made; `existing`
    are the ids that `find` saw before the call: never ours, never deleted."""

    resource: ResourceState
    tags: dict[str, str]
    reuse_name: str | None
    suffix: str
    existing: list[str]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Creating:
        return cls(**{**data, "resource": ResourceState(**data["resource"])})


@dataclass
class NotEmulated:
    type: str
    name: str
    reason: str


@dataclass
class StackState:
    stack: str
    resources: list[ResourceState] = field(default_factory=list)
    # Provider URN -> its settings (see aws.ProviderConfig).
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    not_emulated: list[NotEmulated] = field(default_factory=list)
    # Replaced or removed physical resources still to delete (a delete failed).
    pending_deletes: list[ResourceState] = field(default_factory=list)
    creating: list[Creating] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path, stack: str) -> StackState:
        if not path.is_file():
            return cls(stack)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {VERSION}")
            return cls(
                stack=data["stack"],
                resources=[ResourceState(**item) for item in data["resources"]],
                providers=data["providers"],
                outputs=data["outputs"],
                not_emulated=[NotEmulated(**item) for item in data["not_emulated"]],
                pending_deletes=[ResourceState(**item) for item in data["pending_deletes"]],
                # Absent from files written before creates were recorded.
                creating=[Creating.from_json(item) for item in data.get("creating", [])],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise DeployError(
                f"the deploy state {path} is unreadable ({exc}); if its LocalStack is gone, "
                "delete the file"
            ) from exc

    def save(self, path: Path) -> None:
        """Write the state so that a reader (or a crash) sees the old file or the new one,
        never a mix: a temporary file in the same directory, flushed to disk, renamed."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        text = json.dumps({"version": VERSION, **asdict(self)}, indent=1, sort_keys=True)
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)

    @property
    def empty(self) -> bool:
        return not self.resources and not self.pending_deletes and not self.creating


def state_path(root: Path, stack: str) -> Path:
    return root / "build" / "deploy" / f"{stack}.json"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One `up` or `down` per stack at a time, across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DeployError(
                f"another `up` or `down` of this stack is running (lock {handle.name})"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
