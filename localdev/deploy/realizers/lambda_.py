"""Lambda: layer versions, functions (published versions), aliases, permissions,
provisioned concurrency and event source mappings.

An alias is a create, a get and a delete call: a `Description`. Hand-written are the
types that differ: a layer version is published (never updated) and may outlive its
stack; a function waits to become Active, then publishes; a permission's statement id is
auto-generated and it is found inside the function's policy; provisioned concurrency
waits to be READY; an event source mapping waits to be Enabled (or Disabled) after a
create or update, and to be gone after a delete."""

from __future__ import annotations

import datetime
import json
import time
from typing import Any

import pulumi

from localdev.deploy.assets import archive_zip
from localdev.deploy.realizers.base import (
    Context,
    Described,
    Description,
    Inputs,
    Realized,
    Realizer,
    api_shape,
    fetch,
    found,
    gone_ok,
    optional,
)
from localdev.deploy.state import ResourceState
from localdev.errors import DeployError

# What Lambda answers for a missing layer version, function, alias, policy or config.
MISSING = frozenset({"ResourceNotFoundException"})
# Functions with a model to load take a while to become Active on 2 cores.
_WAIT_S = 180.0
_POLL_S = 0.25


def _function_key(name: str) -> str:
    return f"lambda:function:{name}"


def _code(inputs: Inputs) -> dict[str, Any]:
    """A function's or layer's code as Lambda's API takes it: the zip itself, or (a zip
    over the direct-upload limit) where it was uploaded in S3."""
    bucket = inputs.opt_text("s3Bucket")
    if bucket is not None:
        return {"S3Bucket": bucket, "S3Key": inputs.text("s3Key")}
    archive = inputs.raw("code")
    if not isinstance(archive, pulumi.Archive):
        raise DeployError("input 'code' must be an archive, or s3Bucket/s3Key an S3 location")
    return {"ZipFile": archive_zip(archive)}


def _rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def invoke_arn(region: str, function_arn: str) -> str:
    return (
        f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_arn}/invocations"
    )


class LayerVersion(Realizer):
    type = "aws:lambda/layerVersion:LayerVersion"
    supported = frozenset(
        {
            "layerName",
            "code",
            "s3Bucket",
            "s3Key",
            "compatibleRuntimes",
            "compatibleArchitectures",
            "description",
            "licenseInfo",
            "skipDestroy",
            "sourceCodeHash",
        }
    )
    replace_on = None  # a layer version is immutable: any change publishes a new one

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        layer = ctx.clients("lambda").publish_layer_version(
            LayerName=inputs.text("layerName"),
            Content=_code(inputs),
            CompatibleRuntimes=inputs.items("compatibleRuntimes"),
            CompatibleArchitectures=inputs.items("compatibleArchitectures"),
            **optional(
                Description=inputs.opt_text("description"),
                LicenseInfo=inputs.opt_text("licenseInfo"),
            ),
        )
        return Realized(
            layer["LayerVersionArn"],
            {
                "arn": layer["LayerVersionArn"],
                "layerArn": layer["LayerArn"],
                "version": str(layer["Version"]),
                "codeSize": layer["Content"].get("CodeSize", 0),
                "codeSha256": layer["Content"].get("CodeSha256", ""),
                "createdDate": layer.get("CreatedDate", ""),
            },
        )

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        # Lambda numbers the versions: every version of the layer (the engine keeps those
        # that were there before the create).
        pages = ctx.clients("lambda").get_paginator("list_layer_versions")
        return {
            str(version["LayerVersionArn"])
            for page in pages.paginate(LayerName=inputs.text("layerName"))
            for version in page["LayerVersions"]
        }

    def delete(self, ctx: Context, old: ResourceState) -> None:
        if old.inputs.get("skipDestroy"):
            return
        name, version = self._parts(old)
        lam = ctx.clients("lambda")
        gone_ok(lambda: lam.delete_layer_version(LayerName=name, VersionNumber=version), MISSING)

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        name, version = self._parts(old)
        lam = ctx.clients("lambda")
        return found(lambda: lam.get_layer_version(LayerName=name, VersionNumber=version), MISSING)

    def _parts(self, old: ResourceState) -> tuple[str, int]:
        layer_arn, _, version = old.id.rpartition(":")
        return layer_arn, int(version)


class Function(Realizer):
    type = "aws:lambda/function:Function"
    _CODE = frozenset({"code", "s3Bucket", "s3Key", "architectures", "sourceCodeHash"})
    _CONFIG = frozenset(
        {
            "role",
            "handler",
            "runtime",
            "layers",
            "memorySize",
            "timeout",
            "ephemeralStorage",
            "environment",
            "description",
        }
    )
    supported = _CODE | _CONFIG | {"name", "publish", "reservedConcurrentExecutions", "packageType"}
    replace_on = frozenset({"name", "packageType"})
    taggable = True

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        lam = ctx.clients("lambda")
        name = ctx.autoname(inputs.opt_text("name"))
        if inputs.opt_text("packageType") not in (None, "Zip"):
            raise DeployError("only Zip functions are realized (no container images)")
        lam.create_function(
            FunctionName=name,
            Code=_code(inputs),
            Architectures=inputs.items("architectures") or ["x86_64"],
            Publish=False,
            Tags=ctx.tags,
            **self._configuration(inputs),
        )
        self._wait(lam, name, "$LATEST", "State", "Active")
        self._concurrency(lam, name, inputs)
        version = self._publish(lam, name) if inputs.flag("publish") else "$LATEST"
        return self._realized(ctx, name, version)

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        lam = ctx.clients("lambda")
        name = old.id
        if changed & self._CODE:
            lam.update_function_code(
                FunctionName=name,
                **_code(inputs),
                Architectures=inputs.items("architectures") or ["x86_64"],
            )
            self._wait(lam, name, "$LATEST", "LastUpdateStatus", "Successful")
        if changed & self._CONFIG:
            lam.update_function_configuration(FunctionName=name, **self._configuration(inputs))
            self._wait(lam, name, "$LATEST", "LastUpdateStatus", "Successful")
        if "reservedConcurrentExecutions" in changed:
            self._concurrency(lam, name, inputs)
        if "tagsAll" in changed:
            arn = lam.get_function_configuration(FunctionName=name)["FunctionArn"]
            stale = set(old.inputs.get("tagsAll", {})) - set(ctx.tags)
            if stale:
                lam.untag_resource(Resource=arn, TagKeys=sorted(stale))
            if ctx.tags:
                lam.tag_resource(Resource=arn, Tags=ctx.tags)
        version = str(old.outputs.get("version", "$LATEST"))
        published = changed & (self._CODE | self._CONFIG | {"publish"})
        if inputs.flag("publish") and (published or version == "$LATEST"):
            version = self._publish(lam, name)
        elif not inputs.flag("publish"):
            version = "$LATEST"
        return self._realized(ctx, name, version)

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        name = ctx.autoname(inputs.opt_text("name"))
        lam = ctx.clients("lambda")
        return {name} if found(lambda: lam.get_function(FunctionName=name), MISSING) else set()

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gone_ok(lambda: ctx.clients("lambda").delete_function(FunctionName=old.id), MISSING)

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        lam = ctx.clients("lambda")
        version = str(old.outputs.get("version", "$LATEST"))
        return found(
            lambda: lam.get_function_configuration(FunctionName=old.id, Qualifier=version),
            MISSING,
        )

    def owns(self, old: ResourceState) -> str | None:
        return _function_key(old.id)

    def _configuration(self, inputs: Inputs) -> dict[str, Any]:
        storage = inputs.mapping("ephemeralStorage")
        return {
            "Role": inputs.text("role"),
            "Runtime": inputs.text("runtime"),
            "Handler": inputs.text("handler"),
            "Layers": inputs.items("layers"),
            "MemorySize": inputs.opt_integer("memorySize") or 128,
            "Timeout": inputs.opt_integer("timeout") or 3,
            "EphemeralStorage": {"Size": int(storage.get("size") or 512)},
            "Environment": {
                "Variables": {
                    str(k): str(v)
                    for k, v in (inputs.mapping("environment").get("variables") or {}).items()
                }
            },
            "Description": inputs.opt_text("description") or "",
        }

    def _concurrency(self, lam: Any, name: str, inputs: Inputs) -> None:
        reserved = inputs.opt_integer("reservedConcurrentExecutions")
        if reserved is not None and reserved >= 0:
            lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=reserved)
        else:
            gone_ok(lambda: lam.delete_function_concurrency(FunctionName=name), MISSING)

    def _publish(self, lam: Any, name: str) -> str:
        version = str(lam.publish_version(FunctionName=name)["Version"])
        self._wait(lam, name, version, "State", "Active")
        return version

    def _wait(self, lam: Any, name: str, qualifier: str, field: str, wanted: str) -> None:
        deadline = time.monotonic() + _WAIT_S
        while True:
            config = lam.get_function_configuration(FunctionName=name, Qualifier=qualifier)
            value = config.get(field)
            if value == wanted:
                return
            if value == "Failed":
                reason = config.get("StateReason") or config.get("LastUpdateStatusReason")
                raise DeployError(f"function {name}:{qualifier} failed: {reason}")
            if time.monotonic() > deadline:
                raise DeployError(
                    f"function {name}:{qualifier}: {field} is still {value!r} after {_WAIT_S:.0f} s"
                )
            time.sleep(_POLL_S)

    def _realized(self, ctx: Context, name: str, version: str) -> Realized:
        lam = ctx.clients("lambda")
        config = lam.get_function_configuration(FunctionName=name)
        arn = config["FunctionArn"]
        qualified = f"{arn}:{version}"
        return Realized(
            name,
            {
                "name": name,
                "arn": arn,
                "version": version,
                "qualifiedArn": qualified,
                "invokeArn": invoke_arn(ctx.clients.region, arn),
                "qualifiedInvokeArn": invoke_arn(ctx.clients.region, qualified),
                "sourceCodeHash": config.get("CodeSha256", ""),
                "codeSha256": config.get("CodeSha256", ""),
                "codeSize": config.get("CodeSize", 0),
                "lastModified": config.get("LastModified", ""),
                "tagsAll": ctx.tags,
            },
        )


def _alias_arns(ctx: Context, inputs: Inputs) -> set[str]:
    lam = ctx.clients("lambda")
    alias = fetch(
        lambda: lam.get_alias(FunctionName=inputs.text("functionName"), Name=inputs.text("name")),
        MISSING,
    )
    return set() if alias is None else {str(alias["AliasArn"])}


def _routing(inputs: Inputs) -> dict[str, Any]:
    """The alias's weighted routing ({version: weight}) as Create/UpdateAlias take it. Both
    calls carry it, empty too, as the AWS provider's do: on an update, empty weights
    remove what an earlier one set."""
    weights = inputs.mapping("routingConfig").get("additionalVersionWeights") or {}
    return {
        "AdditionalVersionWeights": {
            str(version): float(weight) for version, weight in weights.items()
        }
    }


ALIAS = Description(
    type="aws:lambda/alias:Alias",
    service="lambda",
    supported=frozenset(
        {"name", "functionName", "functionVersion", "description", "routingConfig"}
    ),
    create="create_alias",
    create_args=lambda _ctx, inputs: {
        "FunctionName": inputs.text("functionName"),
        "Name": inputs.text("name"),
        "FunctionVersion": inputs.text("functionVersion"),
        "Description": inputs.opt_text("description") or "",
        "RoutingConfig": _routing(inputs),
    },
    get="get_alias",
    delete="delete_alias",
    address=lambda old: {"FunctionName": old.inputs["functionName"], "Name": old.inputs["name"]},
    physical_id=lambda _inputs, alias: str(alias["AliasArn"]),
    outputs=lambda ctx, alias: {
        "arn": alias["AliasArn"],
        "invokeArn": invoke_arn(ctx.clients.region, alias["AliasArn"]),
    },
    missing=MISSING,
    replace_on=frozenset({"name", "functionName"}),
    update="update_alias",
    find=_alias_arns,
    container=lambda old: _function_key(str(old.inputs["functionName"])),
)


class Permission(Realizer):
    type = "aws:lambda/permission:Permission"
    supported = frozenset(
        {
            "action",
            "function",
            "principal",
            "qualifier",
            "sourceArn",
            "sourceAccount",
            "statementId",
            "statementIdPrefix",
        }
    )
    replace_on = None
    # The statement id stays the same across a replacement: the old one must go first.
    delete_before_replace = True

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        statement = self._statement(ctx, inputs)
        ctx.clients("lambda").add_permission(
            FunctionName=inputs.text("function"),
            StatementId=statement,
            Action=inputs.text("action"),
            Principal=inputs.text("principal"),
            **optional(
                Qualifier=inputs.opt_text("qualifier"),
                SourceArn=inputs.opt_text("sourceArn"),
                SourceAccount=inputs.opt_text("sourceAccount"),
            ),
        )
        return Realized(statement, {"statementId": statement})

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        statement = self._statement(ctx, inputs)
        old = ResourceState("", self.type, ctx.name, statement, "", inputs.values, "", {})
        return {statement} if self.exists(ctx, old) else set()

    def _statement(self, ctx: Context, inputs: Inputs) -> str:
        return ctx.autoname(
            inputs.opt_text("statementId"), prefix=inputs.opt_text("statementIdPrefix")
        )

    def delete(self, ctx: Context, old: ResourceState) -> None:
        lam = ctx.clients("lambda")
        gone_ok(
            lambda: lam.remove_permission(
                FunctionName=old.inputs["function"],
                StatementId=old.id,
                **optional(Qualifier=old.inputs.get("qualifier")),
            ),
            MISSING,
        )

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        lam = ctx.clients("lambda")
        policy = fetch(
            lambda: lam.get_policy(
                FunctionName=old.inputs["function"],
                **optional(Qualifier=old.inputs.get("qualifier")),
            ),
            MISSING,
        )
        if policy is None:
            return False
        statements = json.loads(policy["Policy"])["Statement"]
        return any(item.get("Sid") == old.id for item in statements)

    def container(self, old: ResourceState) -> str | None:
        return _function_key(str(old.inputs["function"]))


class ProvisionedConcurrencyConfig(Realizer):
    type = "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"
    supported = frozenset(
        {"functionName", "qualifier", "provisionedConcurrentExecutions", "skipDestroy"}
    )
    replace_on = frozenset({"functionName", "qualifier"})

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        lam = ctx.clients("lambda")
        function, qualifier = inputs.text("functionName"), inputs.text("qualifier")
        lam.put_provisioned_concurrency_config(
            FunctionName=function,
            Qualifier=qualifier,
            ProvisionedConcurrentExecutions=inputs.integer("provisionedConcurrentExecutions"),
        )
        deadline = time.monotonic() + _WAIT_S
        while True:
            config = lam.get_provisioned_concurrency_config(
                FunctionName=function, Qualifier=qualifier
            )
            if config["Status"] == "READY":
                break
            if config["Status"] == "FAILED" or time.monotonic() > deadline:
                raise DeployError(
                    f"provisioned concurrency of {function}:{qualifier} is {config['Status']}: "
                    f"{config.get('StatusReason', 'no reason given')}"
                )
            time.sleep(_POLL_S)
        return Realized(f"{function},{qualifier}", {})

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        return self.create(ctx, inputs)

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        return set()  # a put: a second one overwrites the first

    def delete(self, ctx: Context, old: ResourceState) -> None:
        if old.inputs.get("skipDestroy"):
            return
        function, qualifier = old.id.split(",", 1)
        lam = ctx.clients("lambda")
        gone_ok(
            lambda: lam.delete_provisioned_concurrency_config(
                FunctionName=function, Qualifier=qualifier
            ),
            MISSING,
        )

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        function, qualifier = old.id.split(",", 1)
        lam = ctx.clients("lambda")
        return found(
            lambda: lam.get_provisioned_concurrency_config(
                FunctionName=function, Qualifier=qualifier
            ),
            MISSING,
        )

    def container(self, old: ResourceState) -> str | None:
        return _function_key(old.id.split(",", 1)[0])


# Event source mapping states (GetEventSourceMapping's `State`) a change settles in, and
# those it passes through on the way.
_SETTLED = frozenset({"Enabled", "Disabled"})
_SETTLING = frozenset({"Creating", "Enabling", "Disabling", "Updating"})


class EventSourceMapping(Realizer):
    """A queue's messages delivered to a function; the id is the mapping's UUID, which
    Lambda chooses (found again by listing the queue's mappings to the function)."""

    type = "aws:lambda/eventSourceMapping:EventSourceMapping"
    _UPDATABLE = frozenset(
        {
            "batchSize",
            "enabled",
            "filterCriteria",
            "functionName",
            "functionResponseTypes",
            "maximumBatchingWindowInSeconds",
            "scalingConfig",
        }
    )
    supported = _UPDATABLE | {"eventSourceArn"}
    # event_source_mapping.go: event_source_arn (and, not realized: queues, topics,
    # starting_position, starting_position_timestamp, self_managed_event_source and the
    # Kafka source configs).
    replace_on = frozenset({"eventSourceArn"})
    taggable = True

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        lam = ctx.clients("lambda")
        mapping = lam.create_event_source_mapping(
            EventSourceArn=inputs.text("eventSourceArn"),
            FunctionName=inputs.text("functionName"),
            Enabled=inputs.flag("enabled", default=True),
            Tags=ctx.tags,
            **optional(
                FunctionResponseTypes=inputs.items("functionResponseTypes") or None,
                BatchSize=inputs.opt_integer("batchSize"),
                MaximumBatchingWindowInSeconds=inputs.opt_integer("maximumBatchingWindowInSeconds"),
                ScalingConfig=api_shape(inputs.raw("scalingConfig")),
                FilterCriteria=api_shape(inputs.raw("filterCriteria")),
            ),
        )
        return self._realized(ctx, self._settled(lam, str(mapping["UUID"])))

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        lam = ctx.clients("lambda")
        # The API's argument names are the inputs' in PascalCase.
        changes = {
            key[:1].upper() + key[1:]: value
            for key, value in self._settings(inputs).items()
            if key in changed
        }
        if changes:
            lam.update_event_source_mapping(UUID=old.id, **changes)
        mapping = self._settled(lam, old.id)
        if "tagsAll" in changed:
            arn = mapping["EventSourceMappingArn"]
            stale = set(old.inputs.get("tagsAll", {})) - set(ctx.tags)
            if stale:
                lam.untag_resource(Resource=arn, TagKeys=sorted(stale))
            if ctx.tags:
                lam.tag_resource(Resource=arn, Tags=ctx.tags)
        return self._realized(ctx, mapping)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        lam = ctx.clients("lambda")
        deadline = time.monotonic() + _WAIT_S
        while True:
            try:
                lam.delete_event_source_mapping(UUID=old.id)
                break
            except lam.exceptions.ResourceNotFoundException:
                return
            except lam.exceptions.ResourceInUseException:
                # Still being created or updated: deletable once it settles.
                if time.monotonic() > deadline:
                    raise
                time.sleep(_POLL_S)
        # Lambda answers "Deleting" for a while: gone only once the get fails.
        while self.exists(ctx, old):
            if time.monotonic() > deadline:
                raise DeployError(f"event source mapping {old.id} is still there after delete")
            time.sleep(_POLL_S)

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        lam = ctx.clients("lambda")
        return found(lambda: lam.get_event_source_mapping(UUID=old.id), MISSING)

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        pages = ctx.clients("lambda").get_paginator("list_event_source_mappings")
        return {
            str(mapping["UUID"])
            for page in pages.paginate(
                EventSourceArn=inputs.text("eventSourceArn"),
                FunctionName=inputs.text("functionName"),
            )
            for mapping in page["EventSourceMappings"]
        }

    def _settings(self, inputs: Inputs) -> dict[str, Any]:
        """The value UpdateEventSourceMapping takes for each updatable input; a removed
        input is sent as what undoes it, as the provider does (an empty scaling config or
        filter, no response types, no batching window, the source's default batch size)."""
        sqs = inputs.text("eventSourceArn").startswith("arn:aws:sqs:")
        return {
            "functionName": inputs.text("functionName"),
            "enabled": inputs.flag("enabled", default=True),
            "batchSize": inputs.opt_integer("batchSize") or (10 if sqs else 100),
            "maximumBatchingWindowInSeconds": (
                inputs.opt_integer("maximumBatchingWindowInSeconds") or 0
            ),
            "functionResponseTypes": inputs.items("functionResponseTypes"),
            "scalingConfig": api_shape(inputs.mapping("scalingConfig")),
            "filterCriteria": api_shape(inputs.mapping("filterCriteria")),
        }

    def _settled(self, lam: Any, uuid: str) -> dict[str, Any]:
        """The mapping once it is Enabled or Disabled (a create or update passes through
        Creating, Enabling, Disabling or Updating)."""
        deadline = time.monotonic() + _WAIT_S
        while True:
            mapping: dict[str, Any] = lam.get_event_source_mapping(UUID=uuid)
            state = mapping.get("State")
            if state in _SETTLED:
                return mapping
            if state not in _SETTLING or time.monotonic() > deadline:
                raise DeployError(
                    f"event source mapping {uuid} is {state!r}: "
                    f"{mapping.get('StateTransitionReason') or 'no reason given'}"
                )
            time.sleep(_POLL_S)

    def _realized(self, ctx: Context, mapping: dict[str, Any]) -> Realized:
        modified = mapping.get("LastModified")
        return Realized(
            str(mapping["UUID"]),
            {
                "uuid": mapping["UUID"],
                "arn": mapping.get("EventSourceMappingArn", ""),
                "functionArn": mapping["FunctionArn"],
                "state": mapping["State"],
                "stateTransitionReason": mapping.get("StateTransitionReason", ""),
                "lastModified": _rfc3339(modified) if modified else "",
                "lastProcessingResult": mapping.get("LastProcessingResult", ""),
                "tagsAll": ctx.tags,
            },
        )


REALIZERS: list[Realizer] = [
    LayerVersion(),
    Function(),
    Described(ALIAS),
    Permission(),
    ProvisionedConcurrencyConfig(),
    EventSourceMapping(),
]
