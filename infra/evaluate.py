"""Run the Pulumi program in-process under Pulumi's mock runtime, without an engine.

`evaluate()` records every resource the program registers: its type, name, parent,
provider, inputs, dependencies, and the outputs a fake cloud gave it (ARNs, ids and URLs
shaped like AWS's, so that policies and URLs built from them read like the real ones).
The tests and the stack benchmark use it. The in-process deploy engine (infra/deploy)
runs the same machinery with a cloud of its own in place of the fake one: `evaluate(...,
cloud=...)`, with `current_registration()` telling that cloud which resource it is
realizing.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.runtime
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

ACCOUNT_ID = "123456789012"
PROJECT = "inferstack"


@dataclass(frozen=True)
class Registered:
    urn: str
    type: str
    name: str
    id: str
    custom: bool
    parent: str
    # The URN of the provider resource this resource was created with ("" for none).
    provider: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    # Input keys the program marked secret (their values above are unwrapped).
    secret_inputs: frozenset[str]
    dependencies: frozenset[str]
    property_dependencies: Mapping[str, frozenset[str]]
    options: Options

    def depends_on(self, other: Registered) -> bool:
        return other.urn in self.dependencies or any(
            other.urn in urns for urns in self.property_dependencies.values()
        )


@dataclass(frozen=True)
class Evaluation:
    stack: str
    resources: list[Registered]
    outputs: dict[str, Any]

    def of_type(self, type_: str) -> list[Registered]:
        return [resource for resource in self.resources if resource.type == type_]

    def named(self, name: str) -> Registered:
        matches = [resource for resource in self.resources if resource.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name!r}")
        return matches[0]

    def by_urn(self, urn: str) -> Registered:
        return next(resource for resource in self.resources if resource.urn == urn)

    def children(self, parent: Registered) -> list[Registered]:
        return [resource for resource in self.resources if resource.parent == parent.urn]


@dataclass(frozen=True)
class Options:
    """The resource options a registration carried that change how a deploy acts on it."""

    protect: bool = False
    retain_on_delete: bool = False
    # None: the option was not set (the provider's default applies).
    delete_before_replace: bool | None = None
    # Property paths, in the provider's (camelCase) names.
    ignore_changes: tuple[str, ...] = ()
    replace_on_changes: tuple[str, ...] = ()
    # Every other option it set (custom timeouts, aliases, import, ...), by request field.
    others: tuple[str, ...] = ()


# RegisterResourceRequest fields that are resource options other than the ones above
# (capabilities, versions and provider maps are not).
_OTHER_OPTIONS = frozenset(
    {
        "additionalSecretOutputs",
        "aliasURNs",
        "aliases",
        "customTimeouts",
        "deletedWith",
        "hideDiffs",
        "hooks",
        "importId",
        "replace_with",
        "replacement_trigger",
        "transforms",
    }
)


@dataclass(frozen=True)
class Registration:
    """The resource whose registration is being answered by `Mocks.new_resource`."""

    urn: str
    parent: str
    # Every resource it waited for: explicit depends_on and those its inputs came from.
    dependencies: frozenset[str]
    options: Options = Options()


_registering = threading.local()


def current_registration() -> Registration:
    """For a `Mocks.new_resource` running under `evaluate`: the resource it answers.

    `MockResourceArgs` carries no URN or dependencies; the monitor answers each
    registration synchronously on its own worker thread, so a thread-local says which.
    """
    registration: Registration | None = getattr(_registering, "current", None)
    if registration is None:
        raise RuntimeError("current_registration() outside a registration under evaluate()")
    return registration


def evaluate(
    program: Callable[[], Mapping[str, Any]], stack: str, cloud: Mocks | None = None
) -> Evaluation:
    """Run `program` as stack `stack`; it returns the stack outputs it would export.

    `cloud` answers each registration (default: a fake cloud with AWS-shaped outputs).
    Each call starts from fresh runtime settings, a fresh root stack resource and a fresh
    monitor: Pulumi's mock settings are process-global, and nothing may leak between
    two evaluations in one process.
    """
    cloud = cloud or _FakeCloud()
    monitor = _RecordingMonitor(cloud)
    _ensure_open_event_loop()
    pulumi.runtime.reset_options(project=PROJECT, stack=stack)
    pulumi.runtime.set_mocks(cloud, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    outputs: dict[str, Any] = {}

    def run() -> pulumi.Output[None]:
        return pulumi.Output.from_input(program()).apply(outputs.update)

    try:
        pulumi.runtime.test(run)()  # type: ignore[no-untyped-call]
    finally:
        # Leave no mock monitor behind for whatever runs next in this process.
        pulumi.runtime.reset_options()
    return Evaluation(stack=stack, resources=monitor.registered, outputs=outputs)


class _RecordingMonitor(MockMonitor):
    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self.registered: list[Registered] = []

    def RegisterResource(self, request: Any) -> Any:
        _registering.current = Registration(
            urn=self.make_urn(request.parent, request.type, request.name),
            parent=request.parent,
            dependencies=frozenset(request.dependencies).union(
                *(value.urns for value in request.propertyDependencies.values())
            ),
            options=_options(request),
        )
        try:
            response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        finally:
            _registering.current = None
        if request.type == "pulumi:pulumi:Stack":
            return response
        registration = self.resources[response.urn]
        raw = rpc.deserialize_properties(request.object)
        inputs = {key: unwrap_secrets(value) for key, value in raw.items()}
        self.registered.append(
            Registered(
                urn=response.urn,
                type=request.type,
                name=request.name,
                id=registration.id or "",
                custom=request.custom,
                parent=request.parent,
                # A provider reference is "<urn>::<id>".
                provider=request.provider.rsplit("::", 1)[0] if request.provider else "",
                inputs=inputs,
                outputs={key: unwrap_secrets(value) for key, value in registration.state.items()},
                secret_inputs=frozenset(
                    key for key, value in raw.items() if rpc.is_rpc_secret(value)
                ),
                dependencies=frozenset(request.dependencies),
                property_dependencies={
                    key: frozenset(value.urns)
                    for key, value in request.propertyDependencies.items()
                },
                options=_options(request),
            )
        )
        return response


def _options(request: Any) -> Options:
    return Options(
        protect=request.protect,
        retain_on_delete=request.retainOnDelete,
        delete_before_replace=(
            request.deleteBeforeReplace if request.deleteBeforeReplaceDefined else None
        ),
        ignore_changes=tuple(request.ignoreChanges),
        replace_on_changes=tuple(request.replaceOnChanges),
        others=tuple(sorted(name for name in _OTHER_OPTIONS if _is_set(request, name))),
    )


def _is_set(request: Any, name: str) -> bool:
    if name == "hooks":
        return bool(request.hooks.ListFields())  # the SDK always sends the message
    if name == "aliases":
        # The provider SDK adds an alias per former type name of the resource class (a
        # spec with only `type`): those are its renames, not the program's aliases.
        return any(
            {field.name for field, _ in alias.spec.ListFields()} - {"type", "parentUrn"}
            or not alias.HasField("spec")
            for alias in request.aliases
        )
    # ListFields: the fields set to something other than their default.
    return any(field.name == name for field, _ in request.ListFields())


def unwrap_secrets(value: Any) -> Any:
    """The value with Pulumi's secret wrappers (at any depth) removed."""
    if rpc.is_rpc_secret(value):
        return unwrap_secrets(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {key: unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(item) for item in value]
    return value


class _FakeCloud(Mocks):
    """Answers every registration with the inputs plus AWS-shaped computed outputs."""

    def __init__(self) -> None:
        self.region = "us-east-1"

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        raise NotImplementedError(f"the program made an invoke ({args.token}); it should not")

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ.startswith("pulumi:providers:aws"):
            self.region = args.inputs.get("region", self.region)
        if not args.custom:
            return None, {}
        outputs = dict(args.inputs)
        physical_id = _fake_outputs(args.typ, args.name, outputs, self.region)
        return physical_id, outputs


def placeholder_outputs(
    type_: str, name: str, inputs: dict[str, Any], region: str
) -> tuple[str, dict[str, Any]]:
    """A physical id and outputs shaped like the provider's, standing in for what the
    cloud has not computed yet (a deploy preview); returns (id, inputs + outputs)."""
    state = dict(inputs)
    return _fake_outputs(type_, name, state, region), state


def _fake_outputs(type_: str, name: str, state: dict[str, Any], region: str) -> str:
    """Fill in what the provider would compute; returns the physical id."""
    account = ACCOUNT_ID
    short = hashlib.sha256(name.encode()).hexdigest()[:10]
    if type_ == "aws:s3/bucket:Bucket":
        bucket = state.setdefault("bucket", f"{name}-{short[:7]}")
        state["arn"] = f"arn:aws:s3:::{bucket}"
        return str(bucket)
    if type_ == "aws:iam/role:Role":
        role = state.setdefault("name", f"{name}-{short[:7]}")
        state["arn"] = f"arn:aws:iam::{account}:role/{role}"
        return str(role)
    if type_ == "aws:cloudwatch/logGroup:LogGroup":
        group = state.setdefault("name", name)
        state["arn"] = f"arn:aws:logs:{region}:{account}:log-group:{group}"
        return str(group)
    if type_ == "aws:lambda/layerVersion:LayerVersion":
        layer_arn = f"arn:aws:lambda:{region}:{account}:layer:{state['layerName']}"
        state.update(layerArn=layer_arn, version="1", arn=f"{layer_arn}:1")
        return f"{layer_arn}:1"
    if type_ == "aws:lambda/function:Function":
        function = state.setdefault("name", name)
        arn = f"arn:aws:lambda:{region}:{account}:function:{function}"
        state.update(
            arn=arn, version="1", qualifiedArn=f"{arn}:1", invokeArn=_invoke_arn(region, arn)
        )
        return str(function)
    if type_ == "aws:lambda/alias:Alias":
        arn = f"arn:aws:lambda:{region}:{account}:function:{state['functionName']}:{state['name']}"
        state.update(arn=arn, invokeArn=_invoke_arn(region, arn))
        return arn
    if type_ == "aws:apigateway/restApi:RestApi":
        state.setdefault("name", name)
        state.update(
            rootResourceId=f"{short[:6]}root",
            executionArn=f"arn:aws:execute-api:{region}:{account}:{short}",
        )
        return short
    if type_ == "aws:apigateway/stage:Stage":
        state["invokeUrl"] = (
            f"https://{state['restApi']}.execute-api.{region}.amazonaws.com/{state['stageName']}"
        )
        return f"ags-{state['restApi']}-{state['stageName']}"
    if type_ == "aws:apigateway/apiKey:ApiKey":
        state.setdefault("name", name)
        state["value"] = hashlib.sha256(f"key:{name}".encode()).hexdigest()[:40]
        return short
    if type_ == "aws:sqs/queue:Queue":
        queue = state.setdefault("name", name)
        state.update(
            arn=f"arn:aws:sqs:{region}:{account}:{queue}",
            url=f"https://sqs.{region}.amazonaws.com/{account}/{queue}",
        )
        return str(state["url"])
    if type_ == "aws:sns/topic:Topic":
        topic = state.setdefault("name", name)
        state["arn"] = f"arn:aws:sns:{region}:{account}:{topic}"
        return str(state["arn"])
    if type_ == "aws:cloudwatch/metricAlarm:MetricAlarm":
        state["arn"] = f"arn:aws:cloudwatch:{region}:{account}:alarm:{state['name']}"
        return str(state["name"])
    if type_ == "aws:cloudwatch/dashboard:Dashboard":
        dashboard = state["dashboardName"]
        state["dashboardArn"] = f"arn:aws:cloudwatch::{account}:dashboard/{dashboard}"
        return str(dashboard)
    if type_ == "aws:lb/loadBalancer:LoadBalancer":
        balancer = state.setdefault("name", name)
        kind = "net" if state.get("loadBalancerType") == "network" else "app"
        elb = f"arn:aws:elasticloadbalancing:{region}:{account}"
        state.update(
            arn=f"{elb}:loadbalancer/{kind}/{balancer}/{short}",
            dnsName=f"{balancer}-{short}.elb.{region}.amazonaws.com",
        )
        return str(state["arn"])
    if type_ == "aws:lb/targetGroup:TargetGroup":
        group = state.setdefault("name", name)
        elb = f"arn:aws:elasticloadbalancing:{region}:{account}"
        state["arn"] = f"{elb}:targetgroup/{group}/{short}"
        return str(state["arn"])
    if type_ == "pulumi-python:dynamic/inferstack:LocalModelServer":
        # infra/local_server.py's process: its preferred port, a pid no process has.
        port = int(state["environment"]["INFERSTACK_PORT"])
        state.update(pid=0, startTime=0, port=port, url=f"http://127.0.0.1:{port}")
        return "0"
    if type_.startswith("kubernetes:"):
        metadata = state.get("metadata") or {}
        return "/".join(part for part in (metadata.get("namespace"), metadata.get("name")) if part)
    state.setdefault("arn", f"arn:aws:mock:{region}:{account}:{name}")
    return short


def _invoke_arn(region: str, function_arn: str) -> str:
    return (
        f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations"
    )


def _ensure_open_event_loop() -> None:
    """Pulumi registers resources on the thread's current event loop: give it an open one
    when what ran before in this thread closed or cleared its own."""
    try:
        usable = not asyncio.get_event_loop().is_closed()
    except RuntimeError:  # none is current
        usable = False
    if not usable:
        asyncio.set_event_loop(asyncio.new_event_loop())
