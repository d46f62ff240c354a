"""API Gateway (REST APIs, v1): the API, its routes, deployment and stage, gateway
responses, throttling, and API keys with their usage plan."""

from __future__ import annotations

from typing import Any, ClassVar

from localdev.deploy.aws import is_missing
from localdev.deploy.realizers.base import (
    Context,
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


def _api_key(api: str) -> str:
    return f"apigateway:restapi:{api}"


def _replace(path: str, value: Any) -> dict[str, str]:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    return {"op": "replace", "path": path, "value": text}


class _InApi(Realizer):
    """Part of one REST API: deleting the API deletes it too."""

    api_input = "restApi"

    def container(self, old: ResourceState) -> str | None:
        return _api_key(str(old.inputs[self.api_input]))


class RestApi(Realizer):
    type = "aws:apigateway/restApi:RestApi"
    supported = frozenset(
        {"name", "description", "endpointConfiguration", "binaryMediaTypes", "apiKeySource"}
    )
    replace_on = frozenset()
    taggable = True

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        types = inputs.mapping("endpointConfiguration").get("types") or "EDGE"
        api = ctx.clients("apigateway").create_rest_api(
            name=ctx.autoname(inputs.opt_text("name")),
            description=inputs.opt_text("description") or "",
            endpointConfiguration={"types": types if isinstance(types, list) else [types]},
            binaryMediaTypes=inputs.items("binaryMediaTypes"),
            tags=ctx.tags,
            **optional(apiKeySource=inputs.opt_text("apiKeySource")),
        )
        return self._realized(ctx, api)

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        gateway = ctx.clients("apigateway")
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
            arn = str(old.outputs["arn"])
            stale = set(old.inputs.get("tagsAll", {})) - set(ctx.tags)
            if stale:
                gateway.untag_resource(resourceArn=arn, tagKeys=sorted(stale))
            if ctx.tags:
                gateway.tag_resource(resourceArn=arn, tags=ctx.tags)
        return self._realized(ctx, gateway.get_rest_api(restApiId=old.id))

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gone_ok(lambda: ctx.clients("apigateway").delete_rest_api(restApiId=old.id))

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        return found(lambda: ctx.clients("apigateway").get_rest_api(restApiId=old.id))

    def owns(self, old: ResourceState) -> str | None:
        return _api_key(old.id)

    def _realized(self, ctx: Context, api: dict[str, Any]) -> Realized:
        api_id = api["id"]
        root = api.get("rootResourceId")
        if not root:
            resources = ctx.clients("apigateway").get_resources(restApiId=api_id)["items"]
            root = next(item["id"] for item in resources if item["path"] == "/")
        region, account = ctx.clients.region, ctx.clients.account
        return Realized(
            api_id,
            {
                "name": api["name"],
                "rootResourceId": root,
                "executionArn": f"arn:aws:execute-api:{region}:{account}:{api_id}",
                "arn": f"arn:aws:apigateway:{region}::/restapis/{api_id}",
                "createdDate": str(api.get("createdDate", "")),
                "tagsAll": ctx.tags,
            },
        )


class Resource(_InApi):
    type = "aws:apigateway/resource:Resource"
    supported = frozenset({"restApi", "parentId", "pathPart"})
    replace_on = None

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        resource = ctx.clients("apigateway").create_resource(
            restApiId=inputs.text("restApi"),
            parentId=inputs.text("parentId"),
            pathPart=inputs.text("pathPart"),
        )
        return Realized(resource["id"], {"path": resource["path"]})

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gateway = ctx.clients("apigateway")
        gone_ok(lambda: gateway.delete_resource(restApiId=old.inputs["restApi"], resourceId=old.id))

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        gateway = ctx.clients("apigateway")
        return found(
            lambda: gateway.get_resource(restApiId=old.inputs["restApi"], resourceId=old.id)
        )


class _OnMethod(_InApi):
    """Addressed by (API, resource, HTTP method[, status code])."""

    replace_on = frozenset({"restApi", "resourceId", "httpMethod", "statusCode"})

    def where(self, values: dict[str, Any]) -> dict[str, Any]:
        where = {
            "restApiId": values["restApi"],
            "resourceId": values["resourceId"],
            "httpMethod": values["httpMethod"],
        }
        if "statusCode" in values:
            where["statusCode"] = values["statusCode"]
        return where

    def ident(self, prefix: str, values: dict[str, Any]) -> str:
        parts = [prefix, *self.where(values).values()]
        return "-".join(str(part) for part in parts)


class Method(_OnMethod):
    type = "aws:apigateway/method:Method"
    supported = frozenset(
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
    )

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        ctx.clients("apigateway").put_method(
            **self.where(inputs.values),
            authorizationType=inputs.text("authorization"),
            apiKeyRequired=inputs.flag("apiKeyRequired"),
            requestParameters={k: bool(v) for k, v in inputs.mapping("requestParameters").items()},
            **optional(
                authorizerId=inputs.opt_text("authorizerId"),
                operationName=inputs.opt_text("operationName"),
            ),
        )
        return Realized(self.ident("agm", inputs.values), {})

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        # PATCH, not a delete and put: deleting a method deletes its integration too.
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
                **self.where(inputs.values), patchOperations=operations
            )
        return Realized(old.id, {})

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gone_ok(lambda: ctx.clients("apigateway").delete_method(**self.where(old.inputs)))

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        return found(lambda: ctx.clients("apigateway").get_method(**self.where(old.inputs)))


class Integration(_OnMethod):
    type = "aws:apigateway/integration:Integration"
    supported = frozenset(
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
    )

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        # PUT replaces an existing integration whole: create and update are the same call.
        ctx.clients("apigateway").put_integration(
            **self.where(inputs.values),
            type=inputs.text("type"),
            requestTemplates=inputs.mapping("requestTemplates"),
            requestParameters=inputs.mapping("requestParameters"),
            cacheKeyParameters=inputs.items("cacheKeyParameters"),
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
        )
        return Realized(self.ident("agi", inputs.values), {})

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        return self.create(ctx, inputs)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gone_ok(lambda: ctx.clients("apigateway").delete_integration(**self.where(old.inputs)))

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        return found(lambda: ctx.clients("apigateway").get_integration(**self.where(old.inputs)))


class MethodResponse(_OnMethod):
    type = "aws:apigateway/methodResponse:MethodResponse"
    supported = frozenset(
        {
            "restApi",
            "resourceId",
            "httpMethod",
            "statusCode",
            "responseParameters",
            "responseModels",
        }
    )

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        ctx.clients("apigateway").put_method_response(
            **self.where(inputs.values),
            responseParameters={
                k: bool(v) for k, v in inputs.mapping("responseParameters").items()
            },
            responseModels=inputs.mapping("responseModels"),
        )
        return Realized(self.ident("agmr", inputs.values), {})

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        self.delete(ctx, old)
        return self.create(ctx, inputs)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gateway = ctx.clients("apigateway")
        gone_ok(lambda: gateway.delete_method_response(**self.where(old.inputs)))

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        gateway = ctx.clients("apigateway")
        return found(lambda: gateway.get_method_response(**self.where(old.inputs)))


class IntegrationResponse(_OnMethod):
    type = "aws:apigateway/integrationResponse:IntegrationResponse"
    supported = frozenset(
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
    )

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        ctx.clients("apigateway").put_integration_response(
            **self.where(inputs.values),
            responseParameters=inputs.mapping("responseParameters"),
            responseTemplates=inputs.mapping("responseTemplates"),
            **optional(
                selectionPattern=inputs.opt_text("selectionPattern"),
                contentHandling=inputs.opt_text("contentHandling"),
            ),
        )
        return Realized(self.ident("agir", inputs.values), {})

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        return self.create(ctx, inputs)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gateway = ctx.clients("apigateway")
        gone_ok(lambda: gateway.delete_integration_response(**self.where(old.inputs)))

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        gateway = ctx.clients("apigateway")
        return found(lambda: gateway.get_integration_response(**self.where(old.inputs)))


class GatewayResponse(_InApi):
    type = "aws:apigateway/response:Response"
    api_input = "restApiId"
    supported = frozenset(
        {"restApiId", "responseType", "statusCode", "responseParameters", "responseTemplates"}
    )
    replace_on = frozenset({"restApiId", "responseType"})

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        api, kind = inputs.text("restApiId"), inputs.text("responseType")
        ctx.clients("apigateway").put_gateway_response(
            restApiId=api,
            responseType=kind,
            responseParameters=inputs.mapping("responseParameters"),
            responseTemplates=inputs.mapping("responseTemplates"),
            **optional(statusCode=inputs.opt_text("statusCode")),
        )
        return Realized(f"aggr-{api}-{kind}", {})

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        return self.create(ctx, inputs)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gateway = ctx.clients("apigateway")
        gone_ok(
            lambda: gateway.delete_gateway_response(
                restApiId=old.inputs["restApiId"], responseType=old.inputs["responseType"]
            )
        )

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        gateway = ctx.clients("apigateway")
        try:
            response = gateway.get_gateway_response(
                restApiId=old.inputs["restApiId"], responseType=old.inputs["responseType"]
            )
        except Exception as exc:
            if is_missing(exc):
                return False
            raise
        # Every response type "exists" with its default; ours is the non-default one.
        return not response.get("defaultResponse", False)


class Deployment(_InApi):
    type = "aws:apigateway/deployment:Deployment"
    supported = frozenset({"restApi", "description", "triggers", "variables"})
    replace_on = None  # a deployment is a snapshot: changed triggers mean a new one

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        deployment = ctx.clients("apigateway").create_deployment(
            restApiId=inputs.text("restApi"),
            description=inputs.opt_text("description") or "",
            variables={str(k): str(v) for k, v in inputs.mapping("variables").items()},
        )
        return Realized(deployment["id"], {"createdDate": str(deployment.get("createdDate", ""))})

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gateway = ctx.clients("apigateway")
        gone_ok(
            lambda: gateway.delete_deployment(restApiId=old.inputs["restApi"], deploymentId=old.id)
        )

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        gateway = ctx.clients("apigateway")
        return found(
            lambda: gateway.get_deployment(restApiId=old.inputs["restApi"], deploymentId=old.id)
        )


class Stage(_InApi):
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
            variables={str(k): str(v) for k, v in inputs.mapping("variables").items()},
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
            arn = self._arn(ctx, api, stage)
            stale = set(old.inputs.get("tagsAll", {})) - set(ctx.tags)
            if stale:
                gateway.untag_resource(resourceArn=arn, tagKeys=sorted(stale))
            if ctx.tags:
                gateway.tag_resource(resourceArn=arn, tags=ctx.tags)
        return self._realized(ctx, api, stage)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gateway = ctx.clients("apigateway")
        gone_ok(
            lambda: gateway.delete_stage(
                restApiId=old.inputs["restApi"], stageName=old.inputs["stageName"]
            )
        )

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        gateway = ctx.clients("apigateway")
        return found(
            lambda: gateway.get_stage(
                restApiId=old.inputs["restApi"], stageName=old.inputs["stageName"]
            )
        )

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


class MethodSettings(_InApi):
    type = "aws:apigateway/methodSettings:MethodSettings"
    supported = frozenset({"restApi", "stageName", "methodPath", "settings"})
    replace_on = frozenset({"restApi", "stageName", "methodPath"})
    # settings key -> the stage's PATCH path below /<method path>/
    _PATHS: ClassVar[dict[str, str]] = {
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

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        api, stage, path = (inputs.text(k) for k in ("restApi", "stageName", "methodPath"))
        operations = [
            _replace(f"/{path}/{self._PATHS[key]}", value)
            for key, value in sorted(inputs.mapping("settings").items())
            if value is not None and key in self._PATHS
        ]
        unknown = set(inputs.mapping("settings")) - set(self._PATHS)
        if unknown:
            raise DeployError(f"method settings {sorted(unknown)} are not realized")
        ctx.clients("apigateway").update_stage(
            restApiId=api, stageName=stage, patchOperations=operations
        )
        return Realized(f"{api}-{stage}-{path}", {})

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        return self.create(ctx, inputs)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gateway = ctx.clients("apigateway")
        gone_ok(
            lambda: gateway.update_stage(
                restApiId=old.inputs["restApi"],
                stageName=old.inputs["stageName"],
                patchOperations=[{"op": "remove", "path": f"/{old.inputs['methodPath']}"}],
            )
        )

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        gateway = ctx.clients("apigateway")
        try:
            stage = gateway.get_stage(
                restApiId=old.inputs["restApi"], stageName=old.inputs["stageName"]
            )
        except Exception as exc:
            if is_missing(exc):
                return False
            raise
        return str(old.inputs["methodPath"]) in (stage.get("methodSettings") or {})


class Account(Realizer):
    """The account-wide (per region) API Gateway settings: one CloudWatch role."""

    type = "aws:apigateway/account:Account"
    supported = frozenset({"cloudwatchRoleArn", "resetOnDelete"})
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
        # Like the provider: the setting stays unless reset_on_delete asks otherwise.
        if old.inputs.get("resetOnDelete"):
            ctx.clients("apigateway").update_account(
                patchOperations=[_replace("/cloudwatchRoleArn", "")]
            )

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        account = ctx.clients("apigateway").get_account()
        return bool(account.get("cloudwatchRoleArn") == old.inputs.get("cloudwatchRoleArn"))


class ApiKey(Realizer):
    type = "aws:apigateway/apiKey:ApiKey"
    supported = frozenset({"name", "description", "enabled", "value", "customerId"})
    replace_on = frozenset({"value"})
    taggable = True

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        key = ctx.clients("apigateway").create_api_key(
            name=ctx.autoname(inputs.opt_text("name")),
            description=inputs.opt_text("description") or "",
            enabled=inputs.flag("enabled", default=True),
            tags=ctx.tags,
            **optional(value=inputs.opt_text("value"), customerId=inputs.opt_text("customerId")),
        )
        return self._realized(ctx, key)

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
        return self._realized(ctx, gateway.get_api_key(apiKey=old.id, includeValue=True))

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gone_ok(lambda: ctx.clients("apigateway").delete_api_key(apiKey=old.id))

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        return found(lambda: ctx.clients("apigateway").get_api_key(apiKey=old.id))

    def _realized(self, ctx: Context, key: dict[str, Any]) -> Realized:
        return Realized(
            key["id"],
            {
                "name": key["name"],
                "value": key["value"],
                "arn": f"arn:aws:apigateway:{ctx.clients.region}::/apikeys/{key['id']}",
                "createdDate": str(key.get("createdDate", "")),
                "tagsAll": ctx.tags,
            },
        )


class UsagePlan(Realizer):
    type = "aws:apigateway/usagePlan:UsagePlan"
    supported = frozenset(
        {"name", "description", "apiStages", "throttleSettings", "quotaSettings", "productCode"}
    )
    replace_on = None  # its PATCH paths are many; a new plan (and key links) is simpler
    taggable = True

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        stages = [
            {"apiId": stage["apiId"], "stage": stage["stage"]}
            for stage in inputs.items("apiStages")
        ]
        throttle = api_shape(inputs.mapping("throttleSettings"))
        quota = api_shape(inputs.mapping("quotaSettings"))
        plan = ctx.clients("apigateway").create_usage_plan(
            name=ctx.autoname(inputs.opt_text("name")),
            description=inputs.opt_text("description") or "",
            apiStages=stages,
            tags=ctx.tags,
            **optional(
                throttle={_lower_first(k): v for k, v in throttle.items()} or None,
                quota={_lower_first(k): v for k, v in quota.items()} or None,
            ),
        )
        region = ctx.clients.region
        return Realized(
            plan["id"],
            {
                "name": plan["name"],
                "arn": f"arn:aws:apigateway:{region}::/usageplans/{plan['id']}",
                "tagsAll": ctx.tags,
            },
        )

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gone_ok(lambda: ctx.clients("apigateway").delete_usage_plan(usagePlanId=old.id))

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        return found(lambda: ctx.clients("apigateway").get_usage_plan(usagePlanId=old.id))

    def owns(self, old: ResourceState) -> str | None:
        return f"apigateway:usageplan:{old.id}"


class UsagePlanKey(Realizer):
    type = "aws:apigateway/usagePlanKey:UsagePlanKey"
    supported = frozenset({"usagePlanId", "keyId", "keyType"})
    replace_on = None

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        link = ctx.clients("apigateway").create_usage_plan_key(
            usagePlanId=inputs.text("usagePlanId"),
            keyId=inputs.text("keyId"),
            keyType=inputs.text("keyType"),
        )
        return Realized(link["id"], {"name": link.get("name", ""), "value": link.get("value", "")})

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gateway = ctx.clients("apigateway")
        gone_ok(
            lambda: gateway.delete_usage_plan_key(
                usagePlanId=old.inputs["usagePlanId"], keyId=old.id
            )
        )

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        gateway = ctx.clients("apigateway")
        return found(
            lambda: gateway.get_usage_plan_key(usagePlanId=old.inputs["usagePlanId"], keyId=old.id)
        )

    def container(self, old: ResourceState) -> str | None:
        return f"apigateway:usageplan:{old.inputs['usagePlanId']}"


def _lower_first(key: str) -> str:
    return key[:1].lower() + key[1:]


REALIZERS: list[Realizer] = [
    RestApi(),
    Resource(),
    Method(),
    Integration(),
    MethodResponse(),
    IntegrationResponse(),
    GatewayResponse(),
    Deployment(),
    Stage(),
    MethodSettings(),
    Account(),
    ApiKey(),
    UsagePlan(),
    UsagePlanKey(),
]
