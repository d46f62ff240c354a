"""Lambda: layer versions, functions (published versions), aliases, permissions and
provisioned concurrency.

An alias is a create, a get and a delete call: a `Description`. Hand-written are the
types that differ: a layer version is published (never updated) and may outlive its
stack; a function waits to become Active, then publishes; a permission's statement id is
auto-generated and it is found inside the function's policy; provisioned concurrency
waits to be READY."""

from __future__ import annotations

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


ALIAS = Description(
    type="aws:lambda/alias:Alias",
    service="lambda",
    supported=frozenset({"name", "functionName", "functionVersion", "description"}),
    create="create_alias",
    create_args=lambda _ctx, inputs: {
        "FunctionName": inputs.text("functionName"),
        "Name": inputs.text("name"),
        "FunctionVersion": inputs.text("functionVersion"),
        "Description": inputs.opt_text("description") or "",
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


REALIZERS: list[Realizer] = [
    LayerVersion(),
    Function(),
    Described(ALIAS),
    Permission(),
    ProvisionedConcurrencyConfig(),
]
