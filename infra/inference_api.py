"""One API Gateway REST API for the stack, serving Open Inference Protocol v2 routes.

Routes (every method ANY, so the app answers wrong methods with its own JSON errors):

    /v2, /v2/health/live, /v2/health/ready  -> the default model's function
    /v2/models/<model>                      -> that model's function, or its model server
    /v2/models/<model>/{proxy+}             -> the same (ready, infer, ...)

A Lambda model's routes integrate (Lambda proxy) with the `live` alias of its function
(`ModelRoute`); a GPU-served model's (`ServerRoute`) proxy HTTP to its model server,
through a VPC link on AWS, with the same API keys, throttling and access logs.
Server-level metadata and health therefore come from the default model's function
(which lists only its own model); per-model readiness is `/v2/models/<model>/ready`.
The routes, CORS preflights and gateway responses are one OpenAPI body on the RestApi
(`infra.openapi`); the deployment is redeployed exactly when that body changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import openapi, policies
from stacks.schema import ApiConfig

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
class ServerRoute:
    """A GPU-served model: its routes go to the model server at `base_url`
    ("http://host:port"), through the VPC link `vpc_link_id` (None: over the network)."""

    model: str
    base_url: pulumi.Input[str]
    vpc_link_id: pulumi.Input[str] | None = None


@dataclass
class InferenceApiArgs:
    config: ApiConfig
    routes: list[ModelRoute | ServerRoute]
    default_model: str
    log_retention_days: int


class InferenceApi(pulumi.ComponentResource):
    api: aws.apigateway.RestApi
    # The OpenAPI document the RestApi is declared from (see `infra.openapi`).
    body: pulumi.Output[str]
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
        description = "inferstack: Open Inference Protocol v2"
        models = [route.model for route in args.routes]
        table = openapi.route_table(models, args.default_model)
        self.body = pulumi.Output.all(*[_integration(route) for route in args.routes]).apply(
            lambda integrations: openapi.serialize(
                openapi.rest_api_body(
                    name, description, config, table, dict(zip(models, integrations, strict=True))
                )
            )
        )
        self.api = aws.apigateway.RestApi(
            name,
            description=description,
            endpoint_configuration=aws.apigateway.RestApiEndpointConfigurationArgs(
                types="REGIONAL"
            ),
            body=self.body,
            opts=self._child(),
        )
        deployment = aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=self.api.id,
            # Every route input (paths, integrations and their targets, preflights, gateway
            # responses) is in the body: redeploy exactly when it changes. New function
            # versions need no redeploy, the integrations point at the stable `live` alias.
            # The stage's method settings (throttling) are stage state, not part of a
            # deployment's snapshot.
            triggers={"body": self.body.apply(openapi.deployment_trigger)},
            opts=self._child(),
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
            # A model server needs no permission: API Gateway calls it over the network.
            if isinstance(route, ModelRoute):
                self._create_permission(route)
        self.url = self.stage.invoke_url
        self.register_outputs({"url": self.url, "rest_api_id": self.api.id})

    def _child(self, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=depends_on)

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
        """The account-wide role API Gateway writes logs with (access logs need one).

        One per account and region: deleting the setting (destroying this stack) resets
        it, so exactly one stack owns it (`infra.stack_loader` refuses two)."""
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
            policy=policies.document(*policies.api_gateway_logging(groups)),
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


def _integration(route: ModelRoute | ServerRoute) -> pulumi.Output[openapi.Integration]:
    if isinstance(route, ModelRoute):
        return pulumi.Output.from_input(route.invoke_arn).apply(openapi.LambdaIntegration)
    return pulumi.Output.all(route.base_url, route.vpc_link_id).apply(
        lambda values: openapi.HttpIntegration(base_url=values[0], vpc_link_id=values[1])
    )
