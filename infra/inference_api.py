"""One API Gateway REST API for the stack, serving Open Inference Protocol v2 routes.

Routes (every method ANY, so the app answers wrong methods with its own JSON errors):

    /v2, /v2/health/live, /v2/health/ready  -> the default model's function
    /v2/models/<model>                      -> that model's function
    /v2/models/<model>/{proxy+}             -> that model's function (ready, infer, ...)

Each route integrates (Lambda proxy) with the `live` alias of its model's function.
Server-level metadata and health therefore come from the default model's function
(which lists only its own model); per-model readiness is `/v2/models/<model>/ready`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies
from stacks.schema import ApiConfig

# API Gateway's own errors (no route, missing key, throttled, integration failure) get
# the same {"error": ...} body as the app's.
_ERROR_BODY = '{"error": $context.error.messageString}'
# Static: the request path is client-controlled and templates cannot escape it into JSON.
_NOT_FOUND_BODY = (
    '{"error": "no such route; this API serves /v2, /v2/health/live, /v2/health/ready,'
    ' /v2/models/{name} and /v2/models/{name}/..."}'
)
_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "apiKeyId": "$context.identity.apiKeyId",
        "time": "$context.requestTime",
        "method": "$context.httpMethod",
        "path": "$context.path",
        "status": "$context.status",
        "length": "$context.responseLength",
        "latencyMs": "$context.responseLatency",
        "integrationLatencyMs": "$context.integrationLatency",
        "error": "$context.error.message",
    }
)
# Access-log groups are named /aws/apigateway/<component name>, and the program names the
# API inferstack-<stack>-api: the account-wide logging role (one per account and region)
# is scoped to this prefix, so it serves every inferstack stack in the account.
ACCESS_LOG_PREFIX = "/aws/apigateway/inferstack-"


@dataclass
class ModelRoute:
    model: str
    function_name: pulumi.Input[str]
    alias_name: pulumi.Input[str]
    invoke_arn: pulumi.Input[str]


@dataclass
class InferenceApiArgs:
    config: ApiConfig
    routes: list[ModelRoute]
    default_model: str
    log_retention_days: int


@dataclass(frozen=True)
class _Path:
    slug: str
    parent: str | None
    part: str
    model: str | None  # the model answering this path; None: no method of its own


class InferenceApi(pulumi.ComponentResource):
    api: aws.apigateway.RestApi
    stage: aws.apigateway.Stage
    url: pulumi.Output[str]
    api_keys: dict[str, aws.apigateway.ApiKey]

    def __init__(
        self, name: str, args: InferenceApiArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("inferstack:index:InferenceApi", name, None, opts)
        self._name = name
        self._args = args
        config = args.config
        self.api = aws.apigateway.RestApi(
            name,
            description="inferstack: Open Inference Protocol v2",
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(
                types="REGIONAL"
            ),
            opts=self._child(),
        )
        paths = _paths(args)
        routed = self._create_routes(paths)
        routed += self._create_gateway_responses()
        deployment = aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=self.api.id,
            # Redeploy exactly when the route table or its targets change: new function
            # versions need no redeploy, the integrations point at the stable `live` alias.
            triggers={
                "routes": _fingerprint(args, paths),
                "targets": pulumi.Output.all(*[r.invoke_arn for r in args.routes]).apply(
                    lambda arns: hashlib.sha256("\n".join(arns).encode()).hexdigest()
                ),
            },
            opts=self._child(depends_on=routed),
        )
        self.stage = self._create_stage(deployment)
        aws.apigateway.MethodSettings(
            f"{name}-throttling",
            rest_api=self.api.id,
            stage_name=self.stage.stage_name,
            method_path="*/*",
            settings=aws.apigateway.MethodSettingsSettingsArgs(
                throttling_rate_limit=config.throttle_rate_rps,
                throttling_burst_limit=config.throttle_burst,
                metrics_enabled=True,
                logging_level="OFF",
            ),
            opts=self._child(),
        )
        self.api_keys = self._create_keys() if config.keys is not None else {}
        for route in args.routes:
            self._create_permission(route)
        self.url = self.stage.invoke_url
        self.register_outputs({"url": self.url, "rest_api_id": self.api.id})

    def _child(self, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=depends_on)

    def _create_routes(self, paths: list[_Path]) -> list[pulumi.Resource]:
        invoke_arns = {route.model: route.invoke_arn for route in self._args.routes}
        resources: dict[str | None, pulumi.Input[str]] = {None: self.api.root_resource_id}
        created: list[pulumi.Resource] = []
        for path in paths:
            resource = aws.apigateway.Resource(
                f"{self._name}-{path.slug}",
                rest_api=self.api.id,
                parent_id=resources[path.parent],
                path_part=path.part,
                opts=self._child(),
            )
            resources[path.slug] = resource.id
            if path.model is None:
                continue
            created += self._create_proxy_method(path.slug, resource, invoke_arns[path.model])
            if self._args.config.cors is not None:
                created += self._create_preflight(path.slug, resource)
        return created

    def _create_proxy_method(
        self, slug: str, resource: aws.apigateway.Resource, invoke_arn: pulumi.Input[str]
    ) -> list[pulumi.Resource]:
        method = aws.apigateway.Method(
            f"{self._name}-{slug}-any",
            rest_api=self.api.id,
            resource_id=resource.id,
            http_method="ANY",
            authorization="NONE",
            api_key_required=self._args.config.keys is not None,
            opts=self._child(),
        )
        integration = aws.apigateway.Integration(
            f"{self._name}-{slug}-lambda",
            rest_api=self.api.id,
            resource_id=resource.id,
            http_method=method.http_method,
            type="AWS_PROXY",
            # Lambda is always invoked with POST, whatever the client's method.
            integration_http_method="POST",
            uri=invoke_arn,
            timeout_milliseconds=self._args.config.integration_timeout_s * 1000,
            opts=self._child(),
        )
        return [method, integration]

    def _create_preflight(
        self, slug: str, resource: aws.apigateway.Resource
    ) -> list[pulumi.Resource]:
        """CORS preflight answered by API Gateway itself: no API key, no Lambda invoke."""
        cors = self._args.config.cors
        assert cors is not None
        headers = {
            "Access-Control-Allow-Origin": cors.allow_origin,
            "Access-Control-Allow-Methods": "GET,POST,OPTIONS",
            "Access-Control-Allow-Headers": ",".join(cors.allow_headers),
            "Access-Control-Max-Age": str(cors.max_age_s),
        }
        names = {f"method.response.header.{header}": True for header in headers}
        values = {
            f"method.response.header.{header}": f"'{value}'" for header, value in headers.items()
        }
        method = aws.apigateway.Method(
            f"{self._name}-{slug}-options",
            rest_api=self.api.id,
            resource_id=resource.id,
            http_method="OPTIONS",
            authorization="NONE",
            api_key_required=False,
            opts=self._child(),
        )
        integration = aws.apigateway.Integration(
            f"{self._name}-{slug}-options-mock",
            rest_api=self.api.id,
            resource_id=resource.id,
            http_method=method.http_method,
            type="MOCK",
            request_templates={"application/json": '{"statusCode": 204}'},
            opts=self._child(),
        )
        method_response = aws.apigateway.MethodResponse(
            f"{self._name}-{slug}-options-204",
            rest_api=self.api.id,
            resource_id=resource.id,
            http_method=method.http_method,
            status_code="204",
            response_parameters=names,
            opts=self._child(),
        )
        integration_response = aws.apigateway.IntegrationResponse(
            f"{self._name}-{slug}-options-headers",
            rest_api=self.api.id,
            resource_id=resource.id,
            http_method=method.http_method,
            status_code=method_response.status_code,
            response_parameters=values,
            opts=self._child(depends_on=[integration]),
        )
        return [method, integration, method_response, integration_response]

    def _create_gateway_responses(self) -> list[pulumi.Resource]:
        cors = self._args.config.cors
        headers = (
            {"gatewayresponse.header.Access-Control-Allow-Origin": f"'{cors.allow_origin}'"}
            if cors is not None
            else None
        )
        responses = [
            ("default-4xx", "DEFAULT_4XX", None, _ERROR_BODY),
            ("default-5xx", "DEFAULT_5XX", None, _ERROR_BODY),
            # API Gateway reports an unknown path as a missing token (403); it is a 404.
            ("not-found", "MISSING_AUTHENTICATION_TOKEN", "404", _NOT_FOUND_BODY),
        ]
        return [
            aws.apigateway.Response(
                f"{self._name}-{slug}",
                rest_api_id=self.api.id,
                response_type=response_type,
                status_code=status,
                response_templates={"application/json": body},
                response_parameters=headers,
                opts=self._child(),
            )
            for slug, response_type, status, body in responses
        ]

    def _create_stage(self, deployment: aws.apigateway.Deployment) -> aws.apigateway.Stage:
        config = self._args.config
        if not config.access_logs:
            return aws.apigateway.Stage(
                f"{self._name}-stage",
                rest_api=self.api.id,
                deployment=deployment.id,
                stage_name=config.stage,
                opts=self._child(),
            )
        log_group = aws.cloudwatch.LogGroup(
            f"{self._name}-access-logs",
            name=f"/aws/apigateway/{self._name}",
            retention_in_days=self._args.log_retention_days,
            opts=self._child(),
        )
        depends_on: list[pulumi.Resource] = [log_group]
        if config.manage_account_logging_role:
            depends_on.append(self._create_account_logging_role(log_group))
        return aws.apigateway.Stage(
            f"{self._name}-stage",
            rest_api=self.api.id,
            deployment=deployment.id,
            stage_name=config.stage,
            access_log_settings=aws.apigateway.StageAccessLogSettingsArgs(
                destination_arn=log_group.arn, format=_ACCESS_LOG_FORMAT
            ),
            opts=self._child(depends_on=depends_on),
        )

    def _create_account_logging_role(
        self, log_group: aws.cloudwatch.LogGroup
    ) -> aws.apigateway.Account:
        """The account-wide role API Gateway writes logs with (access logs need one)."""
        role = aws.iam.Role(
            f"{self._name}-logging-role",
            assume_role_policy=policies.service_trust("apigateway.amazonaws.com"),
            opts=self._child(),
        )
        # Scoped to inferstack's access-log groups in this account and region, not to all.
        groups = log_group.arn.apply(
            lambda arn: arn.split(":log-group:")[0] + f":log-group:{ACCESS_LOG_PREFIX}*"
        )
        policy = aws.iam.RolePolicy(
            f"{self._name}-logging-policy",
            role=role.id,
            policy=policies.document(
                policies.allow(
                    ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    [groups, pulumi.Output.concat(groups, ":*")],
                )
            ),
            opts=self._child(),
        )
        return aws.apigateway.Account(
            f"{self._name}-account",
            cloudwatch_role_arn=role.arn,
            opts=self._child(depends_on=[policy]),
        )

    def _create_keys(self) -> dict[str, aws.apigateway.ApiKey]:
        keys_config = self._args.config.keys
        assert keys_config is not None
        quota = keys_config.quota
        plan = aws.apigateway.UsagePlan(
            f"{self._name}-usage-plan",
            api_stages=[
                aws.apigateway.UsagePlanApiStageArgs(
                    api_id=self.api.id, stage=self.stage.stage_name
                )
            ],
            throttle_settings=aws.apigateway.UsagePlanThrottleSettingsArgs(
                rate_limit=self._args.config.throttle_rate_rps,
                burst_limit=self._args.config.throttle_burst,
            ),
            quota_settings=(
                aws.apigateway.UsagePlanQuotaSettingsArgs(limit=quota.limit, period=quota.period)
                if quota is not None
                else None
            ),
            opts=self._child(),
        )
        keys = {}
        for client in keys_config.clients:
            key = aws.apigateway.ApiKey(
                f"{self._name}-{client}",
                description=f"inferstack API key for {client}",
                opts=self._child(),
            )
            aws.apigateway.UsagePlanKey(
                f"{self._name}-{client}",
                key_id=key.id,
                key_type="API_KEY",
                usage_plan_id=plan.id,
                opts=self._child(),
            )
            keys[client] = key
        return keys

    def _create_permission(self, route: ModelRoute) -> aws.lambda_.Permission:
        # Only this API (any of its stages and methods) may invoke the alias.
        return aws.lambda_.Permission(
            f"{self._name}-invoke-{route.model}",
            action="lambda:InvokeFunction",
            function=route.function_name,
            qualifier=route.alias_name,
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.concat(self.api.execution_arn, "/*/*"),
            opts=self._child(),
        )


def _paths(args: InferenceApiArgs) -> list[_Path]:
    paths = [
        _Path("v2", None, "v2", args.default_model),
        _Path("health", "v2", "health", None),
        _Path("health-live", "health", "live", args.default_model),
        _Path("health-ready", "health", "ready", args.default_model),
        _Path("models", "v2", "models", None),
    ]
    for route in args.routes:
        paths.append(_Path(f"models-{route.model}", "models", route.model, route.model))
        paths.append(
            _Path(f"models-{route.model}-proxy", f"models-{route.model}", "{proxy+}", route.model)
        )
    return paths


def _fingerprint(args: InferenceApiArgs, paths: list[_Path]) -> str:
    config = args.config
    described = {
        "paths": [(path.slug, path.part, path.model) for path in paths],
        "keys": config.keys is not None,
        "cors": config.cors.model_dump() if config.cors is not None else None,
        "timeout": config.integration_timeout_s,
        "responses": [_ERROR_BODY, _NOT_FOUND_BODY],
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()
