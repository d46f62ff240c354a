"""API Gateway (REST APIs, v1): the API, its routes, deployment and stage, gateway
responses, throttling, and API keys with their usage plan.

Every type but two is one create (or PUT) call, one get and one delete: a `Description`
(method settings are a PATCH of their stage). What replaces and what updates in place is
the provider's (its ForceNew attributes, tests/unit/localdev/test_apigateway_replace_on.py).
The REST API, a resource, a method, a deployment, an API key and a usage plan add a
hand-written update by PATCH (a method is not deleted and put again: that would delete
its integration; a resource or plan keeps its id, so its methods or keys stay); a REST
API declared from an OpenAPI `body` is put whole after it is created and whenever the
body changes, as the provider does. Hand-written whole are the stage (created by two
calls, updated by PATCH) and the account settings (a per-region singleton: written on
create, reset on delete as pulumi-aws v7 does).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from localdev.deploy.realizers.base import (
    Context,
    Described,
    Description,
    Inputs,
    Realized,
    Realizer,
    api_shape,
    found,
    gone_ok,
    optional,
)
from localdev.deploy.state import ResourceState
from localdev.errors import DeployError

# What API Gateway answers for a missing API, route, stage, key or plan.
MISSING = frozenset({"NotFoundException"})
# The inputs naming a method: a change of one replaces the method, its integration and
# their responses (ForceNew in terraform-provider-aws; a response's status code is not).
_ON_METHOD = frozenset({"restApi", "resourceId", "httpMethod"})


def _api_key(api: str) -> str:
    return f"apigateway:restapi:{api}"


def _usage_plan_key(plan: str) -> str:
    return f"apigateway:usageplan:{plan}"


def _in_api(api_input: str = "restApi") -> Callable[[ResourceState], str]:
    """Part of one REST API: deleting the API deletes it too."""
    return lambda old: _api_key(str(old.inputs[api_input]))


def _replace(path: str, value: Any) -> dict[str, str]:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    return {"op": "replace", "path": path, "value": text}


def _retag(gateway: Any, arn: str, old: ResourceState, tags: dict[str, str]) -> None:
    stale = set(old.inputs.get("tagsAll", {})) - set(tags)
    if stale:
        gateway.untag_resource(resourceArn=arn, tagKeys=sorted(stale))
    if tags:
        gateway.tag_resource(resourceArn=arn, tags=tags)


def _where(values: dict[str, Any]) -> dict[str, Any]:
    """A method's address: (API, resource, HTTP method[, status code])."""
    where = {
        "restApiId": values["restApi"],
        "resourceId": values["resourceId"],
        "httpMethod": values["httpMethod"],
    }
    if "statusCode" in values:
        where["statusCode"] = values["statusCode"]
    return where


def _method_id(prefix: str) -> Callable[[Inputs, dict[str, Any]], str]:
    return lambda inputs, _response: "-".join(
        str(part) for part in [prefix, *_where(inputs.values).values()]
    )


def _on_method(
    type_: str,
    *,
    id_prefix: str,
    supported: frozenset[str],
    put: str,
    get: str,
    delete: str,
    args: Callable[[Inputs], dict[str, Any]],
    update_deletes_first: bool = False,
    also_replace_on: frozenset[str] = frozenset(),
) -> Description:
    """A PUT on a method (or a method response), addressed by `_where`; a change of the
    address, or of an input in `also_replace_on`, replaces it."""
    return Description(
        type=type_,
        service="apigateway",
        supported=supported,
        create=put,
        create_args=lambda _ctx, inputs: {**_where(inputs.values), **args(inputs)},
        get=get,
        delete=delete,
        address=lambda old: _where(old.inputs),
        physical_id=_method_id(id_prefix),
        missing=MISSING,
        replace_on=_ON_METHOD | also_replace_on,
        update=put,
        update_deletes_first=update_deletes_first,
        container=_in_api(),
        find=_at_method(get, id_prefix),
    )


def _at_method(get: str, id_prefix: str) -> Callable[[Context, Inputs], set[str]]:
    """`Description.find` of a PUT on a method: whatever is at its address."""

    def find(ctx: Context, inputs: Inputs) -> set[str]:
        call = getattr(ctx.clients("apigateway"), get)
        present = found(lambda: call(**_where(inputs.values)), MISSING)
        return {_method_id(id_prefix)(inputs, {})} if present else set()

    return find


def _response_id(_inputs: Inputs, response: dict[str, Any]) -> str:
    return str(response["id"])


def _listed(
    operation: str, where: Callable[[Context, Inputs], dict[str, Any]], *, name: bool = True
) -> Callable[[Context, Inputs], set[str]]:
    """`Description.find` where API Gateway chooses the id: the ids `operation` lists
    (with `where`'s arguments), those with the resource's name where it has one."""

    def find(ctx: Context, inputs: Inputs) -> set[str]:
        pages = ctx.clients("apigateway").get_paginator(operation)
        items = [item for page in pages.paginate(**where(ctx, inputs)) for item in page["items"]]
        if name:
            wanted = ctx.autoname(inputs.opt_text("name"))
            items = [item for item in items if item.get("name") == wanted]
        return {str(item["id"]) for item in items}

    return find


def _no_args(_ctx: Context, _inputs: Inputs) -> dict[str, Any]:
    return {}


def _strings(mapping: dict[str, Any]) -> dict[str, str]:
    return {str(key): str(value) for key, value in mapping.items()}


def _flags(mapping: dict[str, Any]) -> dict[str, bool]:
    return {key: bool(value) for key, value in mapping.items()}


def _lower_first(key: str) -> str:
    return key[:1].lower() + key[1:]


def _rest_api_args(ctx: Context, inputs: Inputs) -> dict[str, Any]:
    types = inputs.mapping("endpointConfiguration").get("types") or "EDGE"
    return {
        "name": ctx.autoname(inputs.opt_text("name")),
        "description": inputs.opt_text("description") or "",
        "endpointConfiguration": {"types": types if isinstance(types, list) else [types]},
        "binaryMediaTypes": inputs.items("binaryMediaTypes"),
        "tags": ctx.tags,
        **optional(apiKeySource=inputs.opt_text("apiKeySource")),
    }


def _rest_api_outputs(ctx: Context, api: dict[str, Any]) -> dict[str, Any]:
    api_id = api["id"]
    root = api.get("rootResourceId")
    if not root:
        resources = ctx.clients("apigateway").get_resources(restApiId=api_id)["items"]
        root = next(item["id"] for item in resources if item["path"] == "/")
    region, account = ctx.clients.region, ctx.clients.account
    return {
        "name": api["name"],
        "rootResourceId": root,
        "executionArn": f"arn:aws:execute-api:{region}:{account}:{api_id}",
        "arn": f"arn:aws:apigateway:{region}::/restapis/{api_id}",
        "createdDate": str(api.get("createdDate", "")),
        "tagsAll": ctx.tags,
    }


REST_API = Description(
    type="aws:apigateway/restApi:RestApi",
    service="apigateway",
    supported=frozenset(
        {
            "name",
            "description",
            "endpointConfiguration",
            "binaryMediaTypes",
            "apiKeySource",
            "body",
        }
    ),
    create="create_rest_api",
    create_args=_rest_api_args,
    get="get_rest_api",
    delete="delete_rest_api",
    address=lambda old: {"restApiId": old.id},
    physical_id=_response_id,
    outputs=_rest_api_outputs,
    missing=MISSING,
    replace_on=frozenset(),
    taggable=True,
    owns=lambda old: _api_key(old.id),
    find=_listed("get_rest_apis", _no_args),
)


# Inputs of a REST API the engine writes at create only (an update of them is refused).
_REST_API_CREATE_ONLY = frozenset({"endpointConfiguration", "binaryMediaTypes"})
# The OpenAPI extension holding a REST API's gateway responses.
_GATEWAY_RESPONSES = "x-amazon-apigateway-gateway-responses"


class RestApi(Described):
    """Created, read and deleted as described; updated by PATCH (tags by ARN). With a
    `body`, the OpenAPI document is put whole (mode overwrite, the provider's default)
    after the create and on every change of it, and the API's own inputs are written
    again over what the document set, as the provider does."""

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        created = super().create(ctx, inputs)
        body = inputs.opt_text("body")
        if body is None:
            return created
        gateway = ctx.clients("apigateway")
        _put_body(gateway, created.id, body)
        self._reconcile(gateway, created.id, inputs, str(created.outputs["name"]))
        return Realized(
            created.id, _rest_api_outputs(ctx, gateway.get_rest_api(restApiId=created.id))
        )

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        unrealized = sorted(changed & _REST_API_CREATE_ONLY)
        if unrealized:
            # The provider PATCHes these; the in-process engine sets them only at create.
            raise DeployError(
                f"{ctx.name}: changing a REST API's {', '.join(unrealized)} in place is not"
                " realized by the in-process engine; replace the REST API instead"
            )
        gateway = ctx.clients("apigateway")
        if "body" in changed:
            body = inputs.opt_text("body")
            if body is None:
                raise DeployError(
                    f"{ctx.name}: removing a REST API's body is not realized by the "
                    "in-process engine; replace the REST API instead"
                )
            _put_body(gateway, old.id, body)
            self._reconcile(gateway, old.id, inputs, str(old.outputs["name"]))
        operations = []
        if "name" in changed and inputs.opt_text("name"):
            operations.append(_replace("/name", inputs.text("name")))
        if "description" in changed:
            operations.append(_replace("/description", inputs.opt_text("description") or ""))
        if "apiKeySource" in changed:
            operations.append(
                _replace("/apiKeySource", inputs.opt_text("apiKeySource") or "HEADER")
            )
        if operations:
            gateway.update_rest_api(restApiId=old.id, patchOperations=operations)
        if "tagsAll" in changed:
            _retag(gateway, str(old.outputs["arn"]), old, ctx.tags)
        return Realized(old.id, _rest_api_outputs(ctx, gateway.get_rest_api(restApiId=old.id)))

    def _reconcile(self, gateway: Any, api_id: str, inputs: Inputs, name: str) -> None:
        """The resource's own name, description and key source win over the document's."""
        current = gateway.get_rest_api(restApiId=api_id)
        wanted = {
            "/name": inputs.opt_text("name") or name,
            "/description": inputs.opt_text("description"),
            "/apiKeySource": inputs.opt_text("apiKeySource"),
        }
        operations = [
            _replace(path, value)
            for path, value in wanted.items()
            if value is not None and current.get(path.lstrip("/")) != value
        ]
        if operations:
            gateway.update_rest_api(restApiId=api_id, patchOperations=operations)


def _put_body(gateway: Any, api_id: str, body: str) -> None:
    """PutRestApi in overwrite mode, then the document's gateway responses: AWS imports
    them with the routes; LocalStack community's import skips that extension, so they are
    put one by one (and the ones the document no longer has are reset to the default)."""
    gateway.put_rest_api(restApiId=api_id, mode="overwrite", body=body.encode())
    try:
        responses = json.loads(body).get(_GATEWAY_RESPONSES) or {}
    except (ValueError, AttributeError) as exc:
        raise DeployError(
            "REST API body is not a JSON OpenAPI document (the in-process engine reads "
            f"JSON only): {exc}"
        ) from exc
    existing = gateway.get_gateway_responses(restApiId=api_id, limit=500)["items"]
    for response in existing:
        kind = response["responseType"]
        if not response.get("defaultResponse", False) and kind not in responses:
            gateway.delete_gateway_response(restApiId=api_id, responseType=kind)
    for kind, response in responses.items():
        gateway.put_gateway_response(
            restApiId=api_id,
            responseType=kind,
            responseParameters=_strings(response.get("responseParameters") or {}),
            responseTemplates=_strings(response.get("responseTemplates") or {}),
            **optional(statusCode=response.get("statusCode") and str(response["statusCode"])),
        )


RESOURCE = Description(
    type="aws:apigateway/resource:Resource",
    service="apigateway",
    supported=frozenset({"restApi", "parentId", "pathPart"}),
    create="create_resource",
    create_args=lambda _ctx, inputs: {
        "restApiId": inputs.text("restApi"),
        "parentId": inputs.text("parentId"),
        "pathPart": inputs.text("pathPart"),
    },
    get="get_resource",
    delete="delete_resource",
    address=lambda old: {"restApiId": old.inputs["restApi"], "resourceId": old.id},
    physical_id=_response_id,
    outputs=lambda _ctx, resource: {"path": resource["path"]},
    missing=MISSING,
    replace_on=frozenset({"restApi"}),
    container=_in_api(),
    find=lambda ctx, inputs: {
        id_
        for id_, item in (
            (str(item["id"]), item)
            for page in ctx.clients("apigateway")
            .get_paginator("get_resources")
            .paginate(restApiId=inputs.text("restApi"))
            for item in page["items"]
        )
        if item.get("parentId") == inputs.text("parentId")
        and item.get("pathPart") == inputs.text("pathPart")
    },
)


class Resource(Described):
    """Created, read and deleted as described; a new path part or parent is a PATCH (the
    resource keeps its id, and the methods on it stay)."""

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        operations = [
            _replace(f"/{key}", inputs.text(key))
            for key in ("pathPart", "parentId")
            if key in changed
        ]
        resource = ctx.clients("apigateway").update_resource(
            restApiId=inputs.text("restApi"), resourceId=old.id, patchOperations=operations
        )
        return Realized(old.id, self.description.outputs(ctx, resource))


def _method_args(inputs: Inputs) -> dict[str, Any]:
    return {
        "authorizationType": inputs.text("authorization"),
        "apiKeyRequired": inputs.flag("apiKeyRequired"),
        "requestParameters": _flags(inputs.mapping("requestParameters")),
        **optional(
            authorizerId=inputs.opt_text("authorizerId"),
            operationName=inputs.opt_text("operationName"),
        ),
    }


class Method(Described):
    """Created, read and deleted as described; updated by PATCH, not a delete and put:
    deleting a method deletes its integration too."""

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        operations = []
        if "apiKeyRequired" in changed:
            operations.append(_replace("/apiKeyRequired", inputs.flag("apiKeyRequired")))
        if "authorization" in changed:
            operations.append(_replace("/authorizationType", inputs.text("authorization")))
        if "authorizerId" in changed:
            operations.append(_replace("/authorizerId", inputs.opt_text("authorizerId") or ""))
        if "operationName" in changed:
            operations.append(_replace("/operationName", inputs.opt_text("operationName") or ""))
        if "requestParameters" in changed:
            before = old.inputs.get("requestParameters") or {}
            after = inputs.mapping("requestParameters")
            for key in set(before) - set(after):
                operations.append({"op": "remove", "path": f"/requestParameters/{key}"})
            for key, value in after.items():
                op = "replace" if key in before else "add"
                operations.append(
                    {
                        "op": op,
                        "path": f"/requestParameters/{key}",
                        "value": str(bool(value)).lower(),
                    }
                )
        if operations:
            ctx.clients("apigateway").update_method(
                **_where(inputs.values), patchOperations=operations
            )
        return Realized(old.id, {})


METHOD = replace(  # updated by Method.update
    _on_method(
        "aws:apigateway/method:Method",
        id_prefix="agm",
        supported=frozenset(
            {
                "restApi",
                "resourceId",
                "httpMethod",
                "authorization",
                "apiKeyRequired",
                "authorizerId",
                "operationName",
                "requestParameters",
            }
        ),
        put="put_method",
        get="get_method",
        delete="delete_method",
        args=_method_args,
    ),
    update=None,
)

# PUT replaces an existing integration whole: create and update are the same call.
INTEGRATION = _on_method(
    "aws:apigateway/integration:Integration",
    id_prefix="agi",
    supported=frozenset(
        {
            "restApi",
            "resourceId",
            "httpMethod",
            "type",
            "integrationHttpMethod",
            "uri",
            "timeoutMilliseconds",
            "requestTemplates",
            "requestParameters",
            "passthroughBehavior",
            "contentHandling",
            "credentials",
            "cacheKeyParameters",
            "cacheNamespace",
            "connectionType",
            "connectionId",
        }
    ),
    put="put_integration",
    get="get_integration",
    delete="delete_integration",
    args=lambda inputs: {
        "type": inputs.text("type"),
        "requestTemplates": inputs.mapping("requestTemplates"),
        "requestParameters": inputs.mapping("requestParameters"),
        "cacheKeyParameters": inputs.items("cacheKeyParameters"),
        **optional(
            integrationHttpMethod=inputs.opt_text("integrationHttpMethod"),
            uri=inputs.opt_text("uri"),
            timeoutInMillis=inputs.opt_integer("timeoutMilliseconds"),
            passthroughBehavior=inputs.opt_text("passthroughBehavior"),
            contentHandling=inputs.opt_text("contentHandling"),
            credentials=inputs.opt_text("credentials"),
            cacheNamespace=inputs.opt_text("cacheNamespace"),
            connectionType=inputs.opt_text("connectionType"),
            connectionId=inputs.opt_text("connectionId"),
        ),
    },
    also_replace_on=frozenset(
        {"type", "integrationHttpMethod", "passthroughBehavior", "credentials"}
    ),
)


class Integration(Described):
    """As described; replaced old one first: a new type (say) keeps the address (API,
    resource, method), so deleting the old integration after putting the new one would
    delete the new one."""

    delete_before_replace = True


METHOD_RESPONSE = _on_method(
    "aws:apigateway/methodResponse:MethodResponse",
    id_prefix="agmr",
    supported=frozenset(
        {
            "restApi",
            "resourceId",
            "httpMethod",
            "statusCode",
            "responseParameters",
            "responseModels",
        }
    ),
    put="put_method_response",
    get="get_method_response",
    delete="delete_method_response",
    args=lambda inputs: {
        "responseParameters": _flags(inputs.mapping("responseParameters")),
        "responseModels": inputs.mapping("responseModels"),
    },
    update_deletes_first=True,
)

INTEGRATION_RESPONSE = _on_method(
    "aws:apigateway/integrationResponse:IntegrationResponse",
    id_prefix="agir",
    supported=frozenset(
        {
            "restApi",
            "resourceId",
            "httpMethod",
            "statusCode",
            "responseParameters",
            "responseTemplates",
            "selectionPattern",
            "contentHandling",
        }
    ),
    put="put_integration_response",
    get="get_integration_response",
    delete="delete_integration_response",
    args=lambda inputs: {
        "responseParameters": inputs.mapping("responseParameters"),
        "responseTemplates": inputs.mapping("responseTemplates"),
        **optional(
            selectionPattern=inputs.opt_text("selectionPattern"),
            contentHandling=inputs.opt_text("contentHandling"),
        ),
    },
    # A changed status code updates in place (not ForceNew) but is a new address: the
    # response under the old code goes first.
    update_deletes_first=True,
)

GATEWAY_RESPONSE = Description(
    type="aws:apigateway/response:Response",
    service="apigateway",
    supported=frozenset(
        {"restApiId", "responseType", "statusCode", "responseParameters", "responseTemplates"}
    ),
    create="put_gateway_response",
    create_args=lambda _ctx, inputs: {
        "restApiId": inputs.text("restApiId"),
        "responseType": inputs.text("responseType"),
        "responseParameters": inputs.mapping("responseParameters"),
        "responseTemplates": inputs.mapping("responseTemplates"),
        **optional(statusCode=inputs.opt_text("statusCode")),
    },
    get="get_gateway_response",
    delete="delete_gateway_response",
    address=lambda old: {
        "restApiId": old.inputs["restApiId"],
        "responseType": old.inputs["responseType"],
    },
    physical_id=lambda inputs, _response: (
        f"aggr-{inputs.text('restApiId')}-{inputs.text('responseType')}"
    ),
    missing=MISSING,
    replace_on=frozenset({"restApiId", "responseType"}),
    update="put_gateway_response",
    # Every response type "exists" with its default; ours is the non-default one.
    is_present=lambda response, _old: not response.get("defaultResponse", False),
    container=_in_api("restApiId"),
)

DEPLOYMENT = Description(
    type="aws:apigateway/deployment:Deployment",
    service="apigateway",
    supported=frozenset({"restApi", "description", "triggers", "variables"}),
    create="create_deployment",
    create_args=lambda _ctx, inputs: {
        "restApiId": inputs.text("restApi"),
        "description": inputs.opt_text("description") or "",
        "variables": _strings(inputs.mapping("variables")),
    },
    get="get_deployment",
    delete="delete_deployment",
    address=lambda old: {"restApiId": old.inputs["restApi"], "deploymentId": old.id},
    physical_id=_response_id,
    outputs=lambda _ctx, deployment: {"createdDate": str(deployment.get("createdDate", ""))},
    missing=MISSING,
    # A deployment is a snapshot: changed triggers (or variables) mean a new one; only its
    # description updates in place.
    replace_on=frozenset({"restApi", "triggers", "variables"}),
    container=_in_api(),
    # Every deployment of the API (the engine keeps those that were there before).
    find=_listed(
        "get_deployments", lambda _ctx, inputs: {"restApiId": inputs.text("restApi")}, name=False
    ),
)


class Deployment(Described):
    """Created, read and deleted as described; a new description is a PATCH."""

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        deployment = ctx.clients("apigateway").update_deployment(
            restApiId=inputs.text("restApi"),
            deploymentId=old.id,
            patchOperations=[_replace("/description", inputs.opt_text("description") or "")],
        )
        return Realized(old.id, self.description.outputs(ctx, deployment))


class Stage(Realizer):
    type = "aws:apigateway/stage:Stage"
    supported = frozenset(
        {
            "restApi",
            "stageName",
            "deployment",
            "description",
            "variables",
            "accessLogSettings",
            "tracingEnabled",
        }
    )
    replace_on = frozenset({"restApi", "stageName"})
    taggable = True

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        api, stage = inputs.text("restApi"), inputs.text("stageName")
        gateway = ctx.clients("apigateway")
        gateway.create_stage(
            restApiId=api,
            stageName=stage,
            deploymentId=inputs.text("deployment"),
            description=inputs.opt_text("description") or "",
            variables=_strings(inputs.mapping("variables")),
            tracingEnabled=inputs.flag("tracingEnabled"),
            tags=ctx.tags,
        )
        # CreateStage takes no access-log settings; they are a PATCH afterwards.
        operations = self._access_logs(inputs)
        if operations:
            gateway.update_stage(restApiId=api, stageName=stage, patchOperations=operations)
        return self._realized(ctx, api, stage)

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        api, stage = inputs.text("restApi"), inputs.text("stageName")
        gateway = ctx.clients("apigateway")
        operations = []
        if "deployment" in changed:
            operations.append(_replace("/deploymentId", inputs.text("deployment")))
        if "description" in changed:
            operations.append(_replace("/description", inputs.opt_text("description") or ""))
        if "tracingEnabled" in changed:
            operations.append(_replace("/tracingEnabled", inputs.flag("tracingEnabled")))
        if "variables" in changed:
            for key in set(old.inputs.get("variables") or {}) - set(inputs.mapping("variables")):
                operations.append({"op": "remove", "path": f"/variables/{key}"})
            for key, value in inputs.mapping("variables").items():
                operations.append(_replace(f"/variables/{key}", value))
        if "accessLogSettings" in changed:
            operations += self._access_logs(inputs) or [
                {"op": "remove", "path": "/accessLogSettings"}
            ]
        if operations:
            gateway.update_stage(restApiId=api, stageName=stage, patchOperations=operations)
        if "tagsAll" in changed:
            _retag(gateway, self._arn(ctx, api, stage), old, ctx.tags)
        return self._realized(ctx, api, stage)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gateway = ctx.clients("apigateway")
        gone_ok(
            lambda: gateway.delete_stage(
                restApiId=old.inputs["restApi"], stageName=old.inputs["stageName"]
            ),
            MISSING,
        )

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        gateway = ctx.clients("apigateway")
        return found(
            lambda: gateway.get_stage(
                restApiId=old.inputs["restApi"], stageName=old.inputs["stageName"]
            ),
            MISSING,
        )

    def container(self, old: ResourceState) -> str | None:
        return _api_key(str(old.inputs["restApi"]))

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        api, stage = inputs.text("restApi"), inputs.text("stageName")
        gateway = ctx.clients("apigateway")
        present = found(lambda: gateway.get_stage(restApiId=api, stageName=stage), MISSING)
        return {f"ags-{api}-{stage}"} if present else set()

    def _access_logs(self, inputs: Inputs) -> list[dict[str, str]]:
        settings = inputs.mapping("accessLogSettings")
        if not settings:
            return []
        return [
            _replace("/accessLogSettings/destinationArn", settings["destinationArn"]),
            _replace("/accessLogSettings/format", settings["format"]),
        ]

    def _arn(self, ctx: Context, api: str, stage: str) -> str:
        return f"arn:aws:apigateway:{ctx.clients.region}::/restapis/{api}/stages/{stage}"

    def _realized(self, ctx: Context, api: str, stage: str) -> Realized:
        region, account = ctx.clients.region, ctx.clients.account
        endpoint = ctx.clients.config.endpoint_for("apigateway").rstrip("/")
        return Realized(
            f"ags-{api}-{stage}",
            {
                # Where this stage answers on LocalStack (the provider would compute the
                # AWS hostname, which resolves nowhere here).
                "invokeUrl": f"{endpoint}/restapis/{api}/{stage}/_user_request_",
                "executionArn": f"arn:aws:execute-api:{region}:{account}:{api}/{stage}",
                "arn": self._arn(ctx, api, stage),
                "tagsAll": ctx.tags,
            },
        )


# settings key -> the stage's PATCH path below /<method path>/
_SETTING_PATHS = {
    "throttlingBurstLimit": "throttling/burstLimit",
    "throttlingRateLimit": "throttling/rateLimit",
    "metricsEnabled": "metrics/enabled",
    "loggingLevel": "logging/loglevel",
    "dataTraceEnabled": "logging/dataTrace",
    "cachingEnabled": "caching/enabled",
    "cacheTtlInSeconds": "caching/ttlInSeconds",
    "cacheDataEncrypted": "caching/dataEncrypted",
    "requireAuthorizationForCacheControl": "caching/requireAuthorizationForCacheControl",
    "unauthorizedCacheControlHeaderStrategy": "caching/unauthorizedCacheControlHeaderStrategy",
}


def _method_settings_args(_ctx: Context, inputs: Inputs) -> dict[str, Any]:
    path = inputs.text("methodPath")
    settings = inputs.mapping("settings")
    unknown = set(settings) - set(_SETTING_PATHS)
    if unknown:
        raise DeployError(f"method settings {sorted(unknown)} are not realized")
    return {
        "restApiId": inputs.text("restApi"),
        "stageName": inputs.text("stageName"),
        "patchOperations": [
            _replace(f"/{path}/{_SETTING_PATHS[key]}", value)
            for key, value in sorted(settings.items())
            if value is not None
        ],
    }


def _stage_address(old: ResourceState) -> dict[str, Any]:
    return {"restApiId": old.inputs["restApi"], "stageName": old.inputs["stageName"]}


# Not a resource of its own: a PATCH of its stage (put), the stage's settings (get),
# a PATCH removing them (delete).
METHOD_SETTINGS = Description(
    type="aws:apigateway/methodSettings:MethodSettings",
    service="apigateway",
    supported=frozenset({"restApi", "stageName", "methodPath", "settings"}),
    create="update_stage",
    create_args=_method_settings_args,
    get="get_stage",
    delete="update_stage",
    address=_stage_address,
    delete_args=lambda old: {
        **_stage_address(old),
        "patchOperations": [{"op": "remove", "path": f"/{old.inputs['methodPath']}"}],
    },
    physical_id=lambda inputs, _response: "-".join(
        inputs.text(key) for key in ("restApi", "stageName", "methodPath")
    ),
    missing=MISSING,
    replace_on=frozenset({"restApi", "stageName", "methodPath"}),
    update="update_stage",
    is_present=lambda stage, old: (
        str(old.inputs["methodPath"]) in (stage.get("methodSettings") or {})
    ),
    container=_in_api(),
)


class Account(Realizer):
    """The account-wide (per region) API Gateway settings: one CloudWatch role."""

    type = "aws:apigateway/account:Account"
    supported = frozenset({"cloudwatchRoleArn"})
    replace_on = frozenset()

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        account = ctx.clients("apigateway").update_account(
            patchOperations=[
                _replace("/cloudwatchRoleArn", inputs.opt_text("cloudwatchRoleArn") or "")
            ]
        )
        throttle = account.get("throttleSettings") or {}
        return Realized(
            "api-gateway-account",
            {"throttleSettings": [{_lower_first(k): v for k, v in throttle.items()}]},
        )

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        return self.create(ctx, inputs)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        # As pulumi-aws v7: deleting the setting resets the account's CloudWatch role,
        # whichever stack wrote it last (hence one owner per account and region).
        ctx.clients("apigateway").update_account(
            patchOperations=[_replace("/cloudwatchRoleArn", "")]
        )

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        return set()  # a put: a second one overwrites the first

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        account = ctx.clients("apigateway").get_account()
        return bool(account.get("cloudwatchRoleArn") == old.inputs.get("cloudwatchRoleArn"))


API_KEY = Description(
    type="aws:apigateway/apiKey:ApiKey",
    service="apigateway",
    supported=frozenset({"name", "description", "enabled", "value", "customerId"}),
    create="create_api_key",
    create_args=lambda ctx, inputs: {
        "name": ctx.autoname(inputs.opt_text("name")),
        "description": inputs.opt_text("description") or "",
        "enabled": inputs.flag("enabled", default=True),
        "tags": ctx.tags,
        **optional(value=inputs.opt_text("value"), customerId=inputs.opt_text("customerId")),
    },
    get="get_api_key",
    delete="delete_api_key",
    address=lambda old: {"apiKey": old.id},
    physical_id=_response_id,
    outputs=lambda ctx, key: {
        "name": key["name"],
        "value": key["value"],
        "arn": f"arn:aws:apigateway:{ctx.clients.region}::/apikeys/{key['id']}",
        "createdDate": str(key.get("createdDate", "")),
        "tagsAll": ctx.tags,
    },
    missing=MISSING,
    replace_on=frozenset({"value"}),
    taggable=True,
    find=_listed(
        "get_api_keys", lambda ctx, inputs: {"nameQuery": ctx.autoname(inputs.opt_text("name"))}
    ),
)


class ApiKey(Described):
    """Created, read and deleted as described; updated by PATCH."""

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        operations = []
        if "name" in changed and inputs.opt_text("name"):
            operations.append(_replace("/name", inputs.text("name")))
        if "description" in changed:
            operations.append(_replace("/description", inputs.opt_text("description") or ""))
        if "enabled" in changed:
            operations.append(_replace("/enabled", inputs.flag("enabled", default=True)))
        if "customerId" in changed:
            operations.append(_replace("/customerId", inputs.opt_text("customerId") or ""))
        gateway = ctx.clients("apigateway")
        if operations:
            gateway.update_api_key(apiKey=old.id, patchOperations=operations)
        key = gateway.get_api_key(apiKey=old.id, includeValue=True)
        return Realized(old.id, self.description.outputs(ctx, key))


def _stages(inputs: Inputs) -> list[dict[str, str]]:
    """A plan's API stages; per-method throttles on one are not realized."""
    stages = inputs.items("apiStages")
    if any(stage.get("throttles") for stage in stages):
        raise DeployError(
            "a usage plan's per-method throttles (apiStages[].throttles) are not realized"
        )
    return [{"apiId": str(stage["apiId"]), "stage": str(stage["stage"])} for stage in stages]


def _usage_plan_args(ctx: Context, inputs: Inputs) -> dict[str, Any]:
    stages = _stages(inputs)
    throttle = api_shape(inputs.mapping("throttleSettings"))
    quota = api_shape(inputs.mapping("quotaSettings"))
    return {
        "name": ctx.autoname(inputs.opt_text("name")),
        "description": inputs.opt_text("description") or "",
        "apiStages": stages,
        "tags": ctx.tags,
        **optional(
            throttle={_lower_first(k): v for k, v in throttle.items()} or None,
            quota={_lower_first(k): v for k, v in quota.items()} or None,
        ),
    }


USAGE_PLAN = Description(
    type="aws:apigateway/usagePlan:UsagePlan",
    service="apigateway",
    supported=frozenset(
        {"name", "description", "apiStages", "throttleSettings", "quotaSettings", "productCode"}
    ),
    create="create_usage_plan",
    create_args=_usage_plan_args,
    get="get_usage_plan",
    delete="delete_usage_plan",
    address=lambda old: {"usagePlanId": old.id},
    physical_id=_response_id,
    outputs=lambda ctx, plan: {
        "name": plan["name"],
        "arn": f"arn:aws:apigateway:{ctx.clients.region}::/usageplans/{plan['id']}",
        "tagsAll": ctx.tags,
    },
    missing=MISSING,
    replace_on=frozenset(),
    taggable=True,
    owns=lambda old: _usage_plan_key(old.id),
    find=_listed("get_usage_plans", _no_args),
)


def _set(path: str, value: Any, *, new: bool) -> dict[str, str]:
    """`add` where the value was not set before, `replace` where it was."""
    return {**_replace(path, value), "op": "add" if new else "replace"}


class UsagePlan(Described):
    """Created, read and deleted as described, plus the product code (a PATCH after the
    create: CreateUsagePlan takes none); every change is a PATCH, as the provider's, so
    the plan keeps its id and its keys."""

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        created = super().create(ctx, inputs)
        code = inputs.opt_text("productCode")
        if code is not None:
            ctx.clients("apigateway").update_usage_plan(
                usagePlanId=created.id, patchOperations=[_set("/productCode", code, new=True)]
            )
        return created

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        before = Inputs(old.inputs)
        operations = []
        if "name" in changed and inputs.opt_text("name"):
            operations.append(_replace("/name", inputs.text("name")))
        if "description" in changed:
            operations.append(_replace("/description", inputs.opt_text("description") or ""))
        if "productCode" in changed:
            code = inputs.opt_text("productCode")
            operations.append(
                {"op": "remove", "path": "/productCode"}
                if code is None
                else _set("/productCode", code, new=before.opt_text("productCode") is None)
            )
        if "apiStages" in changed:
            operations += _stage_operations(_stages(before), _stages(inputs))
        if "throttleSettings" in changed:
            operations += _limit_operations(
                "/throttle",
                before.mapping("throttleSettings"),
                inputs.mapping("throttleSettings"),
                defaults={"burstLimit": 0, "rateLimit": 0},
            )
        if "quotaSettings" in changed:
            operations += _limit_operations(
                "/quota",
                before.mapping("quotaSettings"),
                inputs.mapping("quotaSettings"),
                defaults={"limit": None, "offset": 0, "period": None},
            )
        gateway = ctx.clients("apigateway")
        if operations:
            plan = gateway.update_usage_plan(usagePlanId=old.id, patchOperations=operations)
        else:
            plan = gateway.get_usage_plan(usagePlanId=old.id)
        realized = Realized(old.id, self.description.outputs(ctx, plan))
        if "tagsAll" in changed:
            _retag(gateway, str(realized.outputs["arn"]), old, ctx.tags)
        return realized


def _stage_operations(
    before: list[dict[str, str]], after: list[dict[str, str]]
) -> list[dict[str, str]]:
    """The stages no longer listed removed, the new ones added (value `apiId:stage`)."""
    old = {f"{stage['apiId']}:{stage['stage']}" for stage in before}
    new = {f"{stage['apiId']}:{stage['stage']}" for stage in after}
    return [{"op": "remove", "path": "/apiStages", "value": key} for key in sorted(old - new)] + [
        {"op": "add", "path": "/apiStages", "value": key} for key in sorted(new - old)
    ]


def _limit_operations(
    path: str, before: dict[str, Any], after: dict[str, Any], *, defaults: dict[str, Any]
) -> list[dict[str, str]]:
    """A plan's throttle or quota: removed whole, or every field written (an unset one
    as its default, as the provider writes it)."""
    if not after:
        return [{"op": "remove", "path": path}]
    values = {key: after.get(key, default) for key, default in defaults.items()}
    missing = [key for key, value in values.items() if value is None]
    if missing:
        raise DeployError(f"usage plan {path.lstrip('/')} needs {', '.join(missing)}")
    return [_set(f"{path}/{key}", value, new=not before) for key, value in values.items()]


USAGE_PLAN_KEY = Description(
    type="aws:apigateway/usagePlanKey:UsagePlanKey",
    service="apigateway",
    supported=frozenset({"usagePlanId", "keyId", "keyType"}),
    create="create_usage_plan_key",
    create_args=lambda _ctx, inputs: {
        "usagePlanId": inputs.text("usagePlanId"),
        "keyId": inputs.text("keyId"),
        "keyType": inputs.text("keyType"),
    },
    get="get_usage_plan_key",
    delete="delete_usage_plan_key",
    address=lambda old: {"usagePlanId": old.inputs["usagePlanId"], "keyId": old.id},
    physical_id=_response_id,
    outputs=lambda _ctx, link: {"name": link.get("name", ""), "value": link.get("value", "")},
    missing=MISSING,
    container=lambda old: _usage_plan_key(str(old.inputs["usagePlanId"])),
    find=lambda ctx, inputs: (
        {inputs.text("keyId")}
        if found(
            lambda: ctx.clients("apigateway").get_usage_plan_key(
                usagePlanId=inputs.text("usagePlanId"), keyId=inputs.text("keyId")
            ),
            MISSING,
        )
        else set()
    ),
)


REALIZERS: list[Realizer] = [
    RestApi(REST_API),
    Resource(RESOURCE),
    Method(METHOD),
    Integration(INTEGRATION),
    Described(METHOD_RESPONSE),
    Described(INTEGRATION_RESPONSE),
    Described(GATEWAY_RESPONSE),
    Deployment(DEPLOYMENT),
    Stage(),
    Described(METHOD_SETTINGS),
    Account(),
    ApiKey(API_KEY),
    UsagePlan(USAGE_PLAN),
    Described(USAGE_PLAN_KEY),
]
