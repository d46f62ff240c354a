"""The in-process deploy engine: the real Pulumi program, realized on LocalStack.

`up` runs infra/program.py for a stack under Pulumi's mock runtime (infra/evaluate.py), with
a mock whose `new_resource` creates, updates or replaces the resource on the stack's
LocalStack endpoints with boto3 and answers with the real ids, ARNs and URLs, so that the
resources registered after it (Pulumi registers in dependency order as inputs resolve)
get real values. A state file remembers what exists; `down` deletes it all. `preview`
runs the same decisions and realizes nothing.

This engine exists for LocalStack, on machines without the Pulumi CLI. Real AWS goes
through Pulumi (infra/automation.py).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointUnreachableError
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks

from infra.errors import InfraError
from infra.evaluate import (
    Options,
    Registration,
    current_registration,
    evaluate,
    placeholder_outputs,
    unwrap_secrets,
)
from layers.package import project_root
from localdev.deploy.assets import canonical, fingerprint, is_unknown
from localdev.deploy.aws import Clients, ProviderConfig, error_code, reachable
from localdev.deploy.realizers import not_emulated_reason, realizer_for, stand_in_reason
from localdev.deploy.realizers.base import Context, Inputs, Realized, Realizer
from localdev.deploy.state import (
    Creating,
    NotEmulated,
    ResourceState,
    StackState,
    locked,
    state_path,
)
from localdev.errors import DeployError, EndpointDownError, NotLocalStackError
from stacks.schema import LocalStackTarget, StackConfig

ROOT = project_root()

Action = Literal["create", "update", "replace", "delete", "retain", "same"]
Echo = Callable[[str], None]
_VERB: dict[Action, str] = {
    "create": "created",
    "update": "updated",
    "replace": "replaced",
    "delete": "deleted",
    # Dropped from the state, left in the cloud (the `retain_on_delete` option).
    "retain": "retained",
    "same": "unchanged",
}


@dataclass(frozen=True)
class Change:
    action: Action
    type: str
    name: str
    seconds: float = 0.0
    # Why (which inputs changed, what forced a replacement); "" when unchanged.
    reason: str = ""


@dataclass(frozen=True)
class Summary:
    stack: str
    operation: Literal["up", "down", "preview"]
    changes: tuple[Change, ...]
    not_emulated: tuple[NotEmulated, ...]
    outputs: dict[str, Any]
    seconds: float

    def count(self, action: Action) -> int:
        return sum(1 for change in self.changes if change.action == action)

    @property
    def counts(self) -> dict[str, int]:
        return {verb: self.count(action) for action, verb in _VERB.items()}

    @property
    def changed(self) -> int:
        return sum(1 for change in self.changes if change.action != "same")

    def names(self, *actions: Action) -> set[str]:
        return {change.name for change in self.changes if change.action in actions}


@dataclass(frozen=True)
class ResourceStatus:
    type: str
    name: str
    id: str
    # None: not checked (LocalStack down or verify off).
    present: bool | None


@dataclass(frozen=True)
class StackStatus:
    stack: str
    endpoint: str | None
    localstack_up: bool
    resources: tuple[ResourceStatus, ...]
    outputs: dict[str, Any]
    not_emulated: tuple[NotEmulated, ...]

    @property
    def deployed(self) -> bool:
        return bool(self.resources)

    @property
    def missing(self) -> list[ResourceStatus]:
        return [resource for resource in self.resources if resource.present is False]


def up(
    stack: str,
    *,
    config: StackConfig | None = None,
    root: Path = ROOT,
    echo: Echo | None = None,
) -> Summary:
    """Deploy `stack` (stacks/<stack>.py, or `config`) to its LocalStack; idempotent."""
    from infra.program import define_stack
    from infra.stack_loader import load_stack

    config = config or load_stack(stack)
    endpoint = localstack_endpoint(config)
    if not reachable(endpoint):
        raise EndpointDownError(
            f"LocalStack is not answering at {endpoint}; start it with "
            "`inferstack localstack start`"
        )
    return deploy(stack, lambda: define_stack(config, stack, root), state_path(root, stack), echo)


def deploy(
    stack: str,
    program: Callable[[], Mapping[str, Any]],
    path: Path,
    echo: Echo | None = None,
) -> Summary:
    """Realize what `program` declares, against the state at `path` (the body of `up`)."""
    started = time.monotonic()
    with locked(path):
        previous = StackState.load(path, stack)
        recovered = _recover(previous, path, echo)
        cloud = _Cloud(previous, path, echo)
        cloud.changes.extend(recovered)
        failure: BaseException | None = None
        outputs: dict[str, Any] = {}
        try:
            outputs = evaluate(program, stack, cloud).outputs
        except BaseException as exc:
            failure = exc
        cloud.wait_idle()
        failure = cloud.error or failure
        stale = cloud.unvisited()
        providers = {**previous.providers, **cloud.providers}
        if failure is None:
            failure = _protected(stale, "it is no longer in the program")
        if failure is not None:
            # Keep everything that may exist; the next `up` (or `down`) carries on from here.
            cloud.checkpoint()
            if isinstance(failure, DeployError) or not isinstance(failure, Exception):
                raise failure  # ours, or Ctrl-C and the like
            raise DeployError(f"stack {stack!r}: {failure}") from failure
        failed = _delete_all(
            [*cloud.doomed, *stale, *previous.pending_deletes], providers, cloud.changes, echo
        )
        StackState(
            stack,
            resources=cloud.current,
            providers=providers,
            outputs=canonical(outputs),
            not_emulated=cloud.not_emulated,
            pending_deletes=failed,
        ).save(path)
    return Summary(
        stack,
        "up",
        tuple(cloud.changes),
        tuple(cloud.not_emulated),
        canonical(outputs),
        time.monotonic() - started,
    )


def preview(stack: str, *, config: StackConfig | None = None, root: Path = ROOT) -> Summary:
    """What `up` would create, update, replace, delete or retain, and why, changing
    nothing: the program runs against the state, and LocalStack is only read (does each
    resource still exist). What a created or replaced resource will compute (its ARN, a
    new version) is not known yet: its dependents see stand-in values, as Pulumi's own
    preview shows them "computed"."""
    from infra.program import define_stack
    from infra.stack_loader import load_stack

    config = config or load_stack(stack)
    endpoint = localstack_endpoint(config)
    if not reachable(endpoint):
        raise EndpointDownError(
            f"LocalStack is not answering at {endpoint}; start it with "
            "`inferstack localstack start`"
        )
    return plan(stack, lambda: define_stack(config, stack, root), state_path(root, stack))


def plan(stack: str, program: Callable[[], Mapping[str, Any]], path: Path) -> Summary:
    """What `deploy` of `program` against the state at `path` would do (the body of
    `preview`); writes nothing."""
    started = time.monotonic()
    previous = StackState.load(path, stack)
    cloud = _Cloud(previous, path, None, plan_only=True)
    failure: BaseException | None = None
    try:
        evaluate(program, stack, cloud)
    except Exception as exc:
        failure = exc
    cloud.wait_idle()
    failure = cloud.error or failure
    if failure is not None:
        if isinstance(failure, DeployError):
            raise failure
        raise DeployError(f"stack {stack!r}: {failure}") from failure
    stale = cloud.unvisited()
    refused = _protected(stale, "it is no longer in the program")
    if refused is not None:
        raise refused
    removed = [(r, "no longer in the program") for r in stale] + [
        (r, "an earlier delete of it failed") for r in previous.pending_deletes
    ]
    for creating in previous.creating:
        removed += [(orphan, _LEFT) for orphan in _left_by(creating, previous, path)[2]]
    deletes = [
        Change("retain" if r.retain_on_delete else "delete", r.type, r.name, reason=why)
        for r, why in removed
    ]
    return Summary(
        stack,
        "preview",
        (*cloud.changes, *deletes),
        tuple(cloud.not_emulated),
        {},
        time.monotonic() - started,
    )


def down(stack: str, *, root: Path = ROOT, echo: Echo | None = None) -> Summary:
    """Delete everything `up` created for `stack`, in reverse dependency order. Safe to
    re-run: what is already gone counts as deleted."""
    path = state_path(root, stack)
    started = time.monotonic()
    changes: list[Change] = []
    with locked(path):
        state = StackState.load(path, stack)
        if state.empty:
            path.unlink(missing_ok=True)
            return Summary(stack, "down", (), (), {}, time.monotonic() - started)
        refused = _protected(state.resources, "`down` deletes every resource of the stack")
        if refused is not None:
            raise refused
        for config in state.providers.values():
            endpoint = ProviderConfig.from_json(config).endpoint
            if not reachable(endpoint):
                raise EndpointDownError(
                    f"LocalStack is not answering at {endpoint}; start it to delete the stack, "
                    f"or, if that LocalStack is gone for good, delete {path}"
                )
        changes += _recover(state, path, echo)
        failed = _delete_all(
            [*state.resources, *state.pending_deletes], state.providers, changes, echo
        )
        if failed:
            StackState(stack, providers=state.providers, pending_deletes=failed).save(path)
            names = ", ".join(resource.name for resource in failed)
            raise DeployError(f"stack {stack!r}: could not delete {names}; run `down` again")
        path.unlink(missing_ok=True)
    return Summary(stack, "down", tuple(changes), (), {}, time.monotonic() - started)


def forget(stack: str, *, root: Path = ROOT) -> int:
    """Drop the stack's state without deleting anything in LocalStack: for when the
    LocalStack that held its resources is gone (community edition keeps nothing across
    restarts). What lives outside it (a local model server process) is deleted. Returns
    how many resources the state listed."""
    path = state_path(root, stack)
    with locked(path):
        state = StackState.load(path, stack)
        # What lives outside LocalStack (a local model server's process) is still there.
        outside = [
            resource
            for resource in [*state.resources, *state.pending_deletes]
            if (realizer := realizer_for(resource.type)) is not None and not realizer.aws
        ]
        failed = _delete_all(outside, {}, [], None)
        if failed:
            names = ", ".join(resource.name for resource in failed)
            raise DeployError(f"stack {stack!r}: could not delete {names}; run `down` again")
        path.unlink(missing_ok=True)
    return len(state.resources) + len(state.pending_deletes) + len(state.creating)


def status(stack: str, *, root: Path = ROOT, verify: bool = True) -> StackStatus:
    """What the state file says is deployed, and (if LocalStack answers and `verify`)
    whether each resource is still there: after a LocalStack restart they are not."""
    state = StackState.load(state_path(root, stack), stack)
    endpoint = None
    if state.providers:
        endpoint = ProviderConfig.from_json(next(iter(state.providers.values()))).endpoint
    else:
        try:
            from infra.stack_loader import load_stack

            endpoint = localstack_endpoint(load_stack(stack))
        except (InfraError, NotLocalStackError):
            endpoint = None  # no such stack, or not a LocalStack one: nothing to ask
    up_now = endpoint is not None and reachable(endpoint)
    clients = {urn: Clients(ProviderConfig.from_json(c)) for urn, c in state.providers.items()}

    def check(resource: ResourceState) -> ResourceStatus:
        present = None
        realizer = realizer_for(resource.type)
        if verify and realizer is not None and not realizer.aws:
            # Not in LocalStack (a local process): checked whether LocalStack is up or not.
            present = is_present(realizer, no_aws(), resource)
        elif verify and up_now and realizer is not None and resource.provider in clients:
            present = is_present(realizer, clients[resource.provider], resource)
        return ResourceStatus(resource.type, resource.name, resource.id, present)

    with ThreadPoolExecutor(max_workers=8) as pool:
        resources = tuple(pool.map(check, state.resources))
    return StackStatus(stack, endpoint, up_now, resources, state.outputs, tuple(state.not_emulated))


def is_present(realizer: Realizer, clients: Clients, resource: ResourceState) -> bool | None:
    """Whether `resource` still exists: False only when the cloud says it is not there (a
    not-found code of its type); None when the endpoint does not answer (unknowable);
    any other AWS error is a DeployError naming the resource and the code."""
    try:
        return realizer.exists(_context(clients, resource), resource)
    except (EndpointUnreachableError, HTTPClientError):
        return None
    except ClientError as exc:
        raise DeployError(
            f"cannot tell whether {resource.type} {resource.name} ({resource.id}) exists: "
            f"AWS error {error_code(exc) or 'without a code'}"
        ) from exc


@functools.cache
def no_aws() -> Clients:
    """The clients of resources that need none (`Realizer.aws` False): a provider with no
    endpoints, so that any AWS call made through them is refused, never sent to AWS."""
    return Clients(ProviderConfig(region="", endpoints={}, access_key="", secret_key=""))


def _clients_for(
    realizer: Realizer, resource: ResourceState, clients: Mapping[str, Clients]
) -> Clients | None:
    """The clients to act on `resource` with; None when its AWS provider is unknown."""
    return no_aws() if not realizer.aws else clients.get(resource.provider)


def localstack_endpoint(config: StackConfig) -> str:
    if not isinstance(config.target, LocalStackTarget):
        raise NotLocalStackError(
            f"this stack targets AWS ({config.target.region}); the in-process engine deploys "
            "only to LocalStack. Install the Pulumi CLI (https://www.pulumi.com/docs/install/) "
            "to deploy to AWS"
        )
    return config.target.endpoint.rstrip("/")


class _Cloud(Mocks):
    """Answers each registration by realizing the resource on LocalStack."""

    def __init__(
        self, previous: StackState, path: Path, echo: Echo | None, *, plan_only: bool = False
    ) -> None:
        # plan_only: decide what each resource needs and write nothing (`preview`).
        self._plan_only = plan_only
        self._planned_urns: set[str] = set()
        self._state = previous
        self._path = path
        self._previous = {resource.urn: resource for resource in previous.resources}
        self._echo = echo
        self._lock = threading.Condition()
        self._clients: dict[str, Clients] = {}
        self._inflight = 0
        self.providers: dict[str, dict[str, Any]] = {}
        self.current: list[ResourceState] = []
        # URN -> its create call under way (recorded before the call, dropped after it).
        self.creating: dict[str, Creating] = {}
        self.doomed: list[ResourceState] = []
        self.changes: list[Change] = []
        # What is declared, not emulated, with the name of its parent (a component).
        self._declared: list[tuple[NotEmulated, str]] = []
        # Component name -> the realized resource standing in for its not-emulated
        # children (a dynamic resource's `standsIn` input).
        self._stand_ins: dict[str, str] = {}
        self.error: BaseException | None = None

    @property
    def not_emulated(self) -> list[NotEmulated]:
        with self._lock:
            return [
                dataclasses.replace(item, reason=stand_in_reason(self._stand_ins[parent]))
                if parent in self._stand_ins
                else item
                for item, parent in self._declared
            ]

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        raise DeployError(f"the program made a provider call ({args.token}); none is realized")

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        registration = current_registration()
        inputs = unwrap_secrets(args.inputs)
        if args.typ == "pulumi:providers:aws":
            config = ProviderConfig.from_inputs(args.name, inputs)
            with self._lock:
                self._clients[registration.urn] = Clients(config)
                self.providers[registration.urn] = config.to_json()
            return fingerprint(config.to_json())[:12], inputs
        if args.typ.startswith("pulumi:providers:") or not args.custom:
            return fingerprint([registration.urn])[:12] if args.custom else None, inputs
        with self._lock:
            if self.error is not None:
                raise DeployError("stopped: an earlier resource failed")
            self._inflight += 1
        try:
            return self._realize(registration, args, inputs)
        except BaseException as exc:
            with self._lock:
                if self.error is None:
                    message = f"{args.typ} {args.name}: {exc}"
                    self.error = DeployError(message)
                    self.error.__cause__ = exc
            raise
        finally:
            with self._lock:
                self._inflight -= 1
                self._lock.notify_all()

    def wait_idle(self, timeout_s: float = 600.0) -> None:
        """Realizations run on Pulumi's worker threads; a failed run may leave some going."""
        with self._lock:
            self._lock.wait_for(lambda: self._inflight == 0, timeout=timeout_s)

    def _realize(
        self, registration: Registration, args: MockResourceArgs, inputs: dict[str, Any]
    ) -> tuple[str | None, dict[str, Any]]:
        reason = not_emulated_reason(args.typ)
        if reason is None and is_unknown(inputs):
            reason = "its inputs come from a resource that is not emulated"
        if reason is not None:
            with self._lock:
                # A URN ends with the resource's name: ...::<type>::<name>.
                parent = registration.parent.rsplit("::", 1)[-1]
                self._declared.append((NotEmulated(args.typ, args.name, reason), parent))
            return None, inputs
        realizer = realizer_for(args.typ)
        assert realizer is not None
        provider = (args.provider or "").rsplit("::", 1)[0]
        if realizer.aws:
            clients = self._clients.get(provider)
            if clients is None:
                raise DeployError("it has no AWS provider of this stack (every resource needs one)")
        else:
            clients, provider = no_aws(), ""
            stands_in = inputs.get("standsIn")
            if isinstance(stands_in, str) and stands_in:
                with self._lock:
                    self._stand_ins[stands_in] = args.name
        options = registration.options
        _check_options(options)
        old = self._previous.get(registration.urn)
        if old is not None and old.type == args.typ:
            inputs = _keep_ignored(inputs, old, options.ignore_changes)
        if realizer.aws:
            _check_supported(realizer, inputs)
        tags = {**clients.config.default_tags, **(inputs.get("tags") or {})}
        canon = canonical({key: value for key, value in inputs.items() if key != "tags"})
        if realizer.taggable:
            canon["tagsAll"] = tags
        digest = fingerprint(canon)
        context = Context(clients, args.name, tags if realizer.taggable else {})
        decided = _plan(realizer, context, canon, digest, old, options)
        if self._plan_only:
            return self._planned(registration.urn, args, inputs, decided, old, clients)
        started = time.monotonic()
        pending = ResourceState(
            urn=registration.urn,
            type=args.typ,
            name=args.name,
            id="",
            provider=provider,
            inputs=canon,
            inputs_hash=digest,
            outputs={},
            dependencies=sorted(registration.dependencies),
            protect=options.protect,
            retain_on_delete=options.retain_on_delete,
        )
        realized = self._apply(realizer, context, Inputs(inputs), decided, old, options, pending)
        action = decided.action
        elapsed = time.monotonic() - started
        record = dataclasses.replace(pending, id=realized.id, outputs=canonical(realized.outputs))
        with self._lock:
            self.creating.pop(record.urn, None)
            self.current.append(record)
            self.changes.append(Change(action, args.typ, args.name, elapsed, decided.reason))
            if action != "same" and self._echo is not None:
                self._echo(f"{action:>7}  {args.name}  ({short_type(args.typ)}, {elapsed:.1f} s)")
            self._save()
        return realized.id, {**inputs, **realized.outputs}

    def _planned(
        self,
        urn: str,
        args: MockResourceArgs,
        inputs: dict[str, Any],
        decided: Plan,
        old: ResourceState | None,
        clients: Clients,
    ) -> tuple[str | None, dict[str, Any]]:
        """Record what `up` would do; answer with what dependents would see."""
        with self._lock:
            self._planned_urns.add(urn)
            self.changes.append(Change(decided.action, args.typ, args.name, reason=decided.reason))
        if old is not None and decided.action in ("same", "update"):
            return old.id, {**inputs, **old.outputs}
        return placeholder_outputs(args.typ, args.name, inputs, clients.config.region)

    def unvisited(self) -> list[ResourceState]:
        """The previous state's resources this run has not (yet) realized."""
        with self._lock:
            visited = {resource.urn for resource in self.current} | self._planned_urns
        return [resource for resource in self._state.resources if resource.urn not in visited]

    def checkpoint(self) -> None:
        """Save everything that may exist now, so that a run stopped at any point (an
        error, Ctrl-C, a kill) leaves state the next `up` or `down` carries on from."""
        with self._lock:
            self._save()

    def _save(self) -> None:
        # Under self._lock.
        visited = {resource.urn for resource in self.current}
        StackState(
            self._state.stack,
            resources=self.current
            + [resource for resource in self._state.resources if resource.urn not in visited],
            providers={**self._state.providers, **self.providers},
            outputs=self._state.outputs,
            not_emulated=self.not_emulated,
            pending_deletes=self.doomed + self._state.pending_deletes,
            creating=list(self.creating.values()),
        ).save(self._path)

    def _apply(
        self,
        realizer: Realizer,
        context: Context,
        inputs: Inputs,
        decided: Plan,
        old: ResourceState | None,
        options: Options,
        pending: ResourceState,
    ) -> Realized:
        def create(ctx: Context) -> Realized:
            return self._create(realizer, ctx, inputs, pending)

        if old is None or old.type != realizer.type:
            created = create(context)
            if old is not None:
                self._doom(old, options)
            return created
        if decided.action == "same":
            return Realized(old.id, old.outputs)
        if decided.action == "create":
            # Gone (LocalStack restarted, or deleted by hand): the same resource again,
            # under its old physical name.
            return create(_context(context.clients, old, name=context.name, tags=context.tags))
        if decided.action == "replace":
            first = options.delete_before_replace
            if first if first is not None else realizer.delete_before_replace:
                if not options.retain_on_delete:
                    realizer.delete(context, old)
                return create(context)
            # Doomed only once its successor exists: if the create fails, `old` stays.
            created = create(context)
            self._doom(old, options)
            return created
        return realizer.update(context, inputs, old, set(decided.changed))

    def _create(
        self, realizer: Realizer, ctx: Context, inputs: Inputs, pending: ResourceState
    ) -> Realized:
        """`realizer.create`, recorded in the state before the call (with what `find` sees
        before it), so that if the run stops during the call, even by SIGKILL, the next
        one can find and delete what it made (`_recover`)."""
        existing = sorted(realizer.find(ctx, inputs))
        with self._lock:
            self.creating[pending.urn] = Creating(
                pending, dict(ctx.tags), ctx.reuse_name, ctx.suffix, existing
            )
            self._save()
        return realizer.create(ctx, inputs)

    def _doom(self, old: ResourceState, options: Options) -> None:
        """`old` is deleted at the end of the run (or, retained, dropped from the state)."""
        with self._lock:
            self.doomed.append(
                dataclasses.replace(old, protect=False, retain_on_delete=options.retain_on_delete)
            )


_LEFT = "an interrupted create left it"


def _recover(state: StackState, path: Path, echo: Echo | None) -> list[Change]:
    """Delete what the creates an earlier run left unfinished (stopped by a kill, or
    failed part way) made, and drop their records. Deleted rather than adopted: a create
    can be several calls (a function, its concurrency and version; a REST API and its
    body), so what one left may be half made; the run about to start creates it again
    whole."""
    changes: list[Change] = []
    for creating in list(state.creating):
        realizer, ctx, orphans = _left_by(creating, state, path)
        for orphan in orphans:
            started = time.monotonic()
            try:
                realizer.delete(ctx, orphan)
            except (ClientError, BotoCoreError) as exc:
                raise DeployError(
                    f"{short_type(orphan.type)} {orphan.name}: cannot delete {orphan.id}, which "
                    f"an interrupted create left: {exc}"
                ) from exc
            elapsed = time.monotonic() - started
            changes.append(Change("delete", orphan.type, orphan.name, elapsed, _LEFT))
            if echo is not None:
                echo(f"{'delete':>7}  {orphan.name}  ({short_type(orphan.type)}, {_LEFT})")
        state.creating.remove(creating)
        state.save(path)
    return changes


def _left_by(
    creating: Creating, state: StackState, path: Path
) -> tuple[Realizer, Context, list[ResourceState]]:
    """What the unfinished `creating` made: found as the realizer's `find` finds it, under
    the same context (so the same auto-name), less what `find` saw before the call (it
    was there already, it is not the stack's: never deleted, never adopted) and less what
    the state lists (a sibling's, where `find` lists a scope: an API's deployments). Reads
    only."""
    resource = creating.resource
    realizer = realizer_for(resource.type)
    config = state.providers.get(resource.provider)
    if realizer is None or (config is None and realizer.aws):
        raise DeployError(
            f"the deploy state {path} records an unfinished create of {resource.type} "
            f"{resource.name} that this engine cannot look for; delete the file"
        )
    ctx = Context(
        Clients(ProviderConfig.from_json(config)) if config is not None else no_aws(),
        resource.name,
        creating.tags,
        reuse_name=creating.reuse_name,
        suffix=creating.suffix,
    )
    # `skip_destroy` keeps what the stack made on purpose; this was never finished.
    inputs = {key: value for key, value in resource.inputs.items() if key != "skipDestroy"}
    listed = {r.id for r in [*state.resources, *state.pending_deletes] if r.type == resource.type}
    found = realizer.find(ctx, Inputs(inputs)) - set(creating.existing) - listed
    orphans = [
        dataclasses.replace(resource, id=id_, inputs=inputs, protect=False, retain_on_delete=False)
        for id_ in sorted(found)
    ]
    return realizer, ctx, orphans


@dataclass(frozen=True)
class Plan:
    """What a resource needs: the action, why, and which inputs changed."""

    action: Action
    reason: str = ""
    changed: frozenset[str] = frozenset()


def _plan(
    realizer: Realizer,
    context: Context,
    canon: dict[str, Any],
    digest: str,
    old: ResourceState | None,
    options: Options,
) -> Plan:
    """Decide, reading the cloud at most (does `old` still exist), what `up` does."""
    if old is None:
        return Plan("create", "new")
    if old.type != realizer.type:
        _refuse_if_protected(options, "its type changed")
        return Plan("create", f"its type changed (was {short_type(old.type)})")
    if old.inputs_hash == digest:
        if realizer.exists(context, old):
            return Plan("same")
        return Plan("create", realizer.gone)
    changed = frozenset(
        key for key in set(old.inputs) | set(canon) if old.inputs.get(key) != canon.get(key)
    )
    forcing = _forces_replacement(realizer, changed, options)
    if forcing is not None:
        _refuse_if_protected(options, f"replacing it ({forcing}) deletes it")
        return Plan("replace", forcing, changed)
    if not realizer.exists(context, old):
        return Plan("create", realizer.gone, changed)
    return Plan("update", f"{', '.join(sorted(changed))} changed", changed)


def _context(
    clients: Clients,
    old: ResourceState,
    *,
    name: str | None = None,
    tags: dict[str, str] | None = None,
) -> Context:
    """A context for acting on `old` (or recreating it under its old physical name)."""
    reuse = next(
        (old.outputs[key] for key in ("bucket", "name", "statementId") if old.outputs.get(key)),
        None,
    )
    return Context(
        clients,
        name or old.name,
        tags if tags is not None else dict(old.inputs.get("tagsAll") or {}),
        reuse_name=str(reuse) if reuse else None,
    )


def _check_options(options: Options) -> None:
    """Refuse the resource options the engine does not honour, naming them."""
    # Secret outputs change only how Pulumi stores and shows values (pulumi-aws marks an
    # API key's value so); this engine's state is a local plaintext file, for LocalStack.
    refused = [f"`{name}`" for name in options.others if name != "additionalSecretOutputs"]
    for option, paths in (
        ("ignore_changes", options.ignore_changes),
        ("replace_on_changes", options.replace_on_changes),
    ):
        # Top-level inputs only: nested paths and `tags` (merged with the provider's
        # default tags) would need the provider's diff.
        nested = [p for p in paths if p == "tags" or not (p.isidentifier() or p == "*")]
        if nested:
            refused.append(f"`{option}` on {', '.join(nested)}")
        if option == "ignore_changes" and "*" in paths:
            refused.append("`ignore_changes` on *")
    if refused:
        raise DeployError(
            f"resource option(s) {'; '.join(refused)} are not honoured by the in-process "
            "engine; remove them or deploy with the Pulumi CLI"
        )


def _keep_ignored(
    inputs: dict[str, Any], old: ResourceState, ignored: tuple[str, ...]
) -> dict[str, Any]:
    """`ignore_changes`: the listed inputs keep the value the resource has in the state
    (so they neither update nor replace it)."""
    if not ignored:
        return inputs
    kept = {key: value for key, value in inputs.items() if key not in ignored}
    kept.update({key: old.inputs[key] for key in ignored if key in old.inputs})
    return kept


def _forces_replacement(
    realizer: Realizer, changed: frozenset[str], options: Options
) -> str | None:
    """Why the change needs a new physical resource (None: it updates in place)."""
    if realizer.replace_on is None:
        return f"{', '.join(sorted(changed))} changed; {short_type(realizer.type)} has no update"
    forced = changed & realizer.replace_on
    if forced:
        return f"{', '.join(sorted(forced))} changed"
    wanted = set(options.replace_on_changes)
    forced = changed if "*" in wanted else changed & wanted
    if forced:
        return f"{', '.join(sorted(forced))} changed; replace_on_changes"
    return None


def _refuse_if_protected(options: Options, why: str) -> None:
    if options.protect:
        raise DeployError(
            f"it is protected (the `protect` resource option) and {why}; remove `protect` "
            "from the program and run `up` first"
        )


def _protected(resources: list[ResourceState], why: str) -> DeployError | None:
    """The error refusing to delete the protected ones among `resources` (None: none)."""
    names = [f"{short_type(r.type)} {r.name}" for r in resources if r.protect]
    if not names:
        return None
    return DeployError(
        f"cannot delete {', '.join(names)}: protected by the `protect` resource option, and "
        f"{why}; remove `protect` from the program and run `up` first"
    )


def _check_supported(realizer: Realizer, inputs: Mapping[str, Any]) -> None:
    ignored = {"tags"} if realizer.taggable else set()
    extra = sorted(
        key
        for key, value in inputs.items()
        if value not in (None, "", [], {}) and key not in realizer.supported | ignored
    )
    if extra:
        raise DeployError(
            f"input(s) {', '.join(extra)} are not realized by the in-process engine; extend "
            "localdev/deploy/realizers or deploy with the Pulumi CLI"
        )


def _delete_all(
    doomed: list[ResourceState],
    providers: Mapping[str, Mapping[str, Any]],
    changes: list[Change],
    echo: Echo | None,
) -> list[ResourceState]:
    """Delete `doomed`, dependents before what they depend on; returns what failed."""
    clients = {urn: Clients(ProviderConfig.from_json(dict(c))) for urn, c in providers.items()}
    owned = {}
    for resource in doomed:
        realizer = realizer_for(resource.type)
        key = realizer.owns(resource) if realizer else None
        if key:
            owned[key] = resource
    failed: list[ResourceState] = []
    failed_owners: set[str] = set()
    riders: dict[str, list[ResourceState]] = {}
    for resource in _dependents_first(doomed):
        realizer = realizer_for(resource.type)
        acting = _clients_for(realizer, resource, clients) if realizer else None
        if realizer is None or acting is None:
            failed.append(resource)
            continue
        started = time.monotonic()
        container = realizer.container(resource)
        if container in owned:
            # Deleted with its container (a REST API, a function, an emptied bucket, ...).
            riders.setdefault(container, []).append(resource)
        elif resource.retain_on_delete:
            changes.append(Change("retain", resource.type, resource.name))
            if echo is not None:
                echo(f"{'retain':>7}  {resource.name}  ({short_type(resource.type)})")
            continue
        else:
            try:
                realizer.delete(_context(acting, resource), resource)
            except (ClientError, BotoCoreError, DeployError) as exc:
                # Recorded as still to delete (the next up or down retries); a bug propagates.
                if echo is not None:
                    echo(f"  failed  {resource.name}: {exc}")
                failed.append(resource)
                key = realizer.owns(resource)
                if key:
                    failed_owners.add(key)
                continue
        elapsed = time.monotonic() - started
        changes.append(Change("delete", resource.type, resource.name, elapsed))
        if echo is not None and container not in owned:
            echo(f"{'delete':>7}  {resource.name}  ({short_type(resource.type)}, {elapsed:.1f} s)")
    for key in failed_owners:
        failed += riders.get(key, [])
    return failed


def _dependents_first(resources: list[ResourceState]) -> list[ResourceState]:
    """Reverse topological order over the resources' recorded dependencies; among
    independent ones, the later-created first."""
    indices: dict[str, list[int]] = {}
    for index, resource in enumerate(resources):
        indices.setdefault(resource.urn, []).append(index)
    # dependents[i]: how many resources in the set still depend on resources[i].
    dependents = [0] * len(resources)
    for resource in resources:
        for urn in set(resource.dependencies):
            for index in indices.get(urn, []):
                dependents[index] += 1
    done = [False] * len(resources)
    order: list[ResourceState] = []
    while len(order) < len(resources):
        ready = [i for i in range(len(resources)) if not done[i] and dependents[i] == 0]
        # A cycle cannot come from Pulumi; if the records say otherwise, go by age.
        index = max(ready) if ready else max(i for i in range(len(resources)) if not done[i])
        done[index] = True
        order.append(resources[index])
        for urn in set(resources[index].dependencies):
            for dependency in indices.get(urn, []):
                dependents[dependency] -= 1
    return order


def short_type(type_: str) -> str:
    """aws:lambda/function:Function -> lambda.Function"""
    package, _, rest = type_.partition(":")
    module, _, name = rest.partition(":")
    return f"{module.split('/')[0]}.{name}" if package == "aws" else type_
