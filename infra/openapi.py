"""The REST API's routes as one OpenAPI 3 document (the RestApi's `body`).

Every route, integration, CORS preflight and gateway response lives in this one
document, so that the set of routes is one input of one resource: removing a model is an
update of the RestApi (a PUT that replaces the whole definition), and the deployment
that follows it snapshots exactly the routes that remain. A route integrates with a
Lambda function (AWS_PROXY) or with a model server over HTTP (HTTP_PROXY, through a VPC
link on AWS). Pure: no Pulumi, the integrations' ARNs, URLs and ids come in resolved.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from stacks.schema import ApiConfig

# API Gateway's own errors (no route, missing key, throttled, integration failure) get
# the same {"error": ...} body as the app's.
ERROR_BODY = '{"error": $context.error.messageString}'
# Static: the request path is client-controlled and templates cannot escape it into JSON.
NOT_FOUND_BODY = (
    '{"error": "no such route; this API serves /v2, /v2/health/live, /v2/health/ready,'
    ' /v2/models/{name} and /v2/models/{name}/..."}'
)
# A model server's routes while it cannot answer (starting, scaled to no ready pod, gone):
# what API Gateway reports when it cannot reach an HTTP integration, as a retryable 503.
# LocalStack answers a refused connection with API_CONFIGURATION_ERROR; AWS answers a VPC
# link whose load balancer has no healthy target with "Execution failed due to
# configuration error" (the same type), a failed or timed-out connection with the others.
RETRY_AFTER_S = 5
UNREACHABLE_RESPONSES = ("API_CONFIGURATION_ERROR", "INTEGRATION_FAILURE", "INTEGRATION_TIMEOUT")
# $context.error.message unquoted inside the string: its messages are API Gateway's own
# fixed texts, none with a quote.
UNREACHABLE_BODY = (
    '{"error": "the model server is not reachable (starting, or not ready); retry after'
    f' {RETRY_AFTER_S} s: $context.error.message"}}'
)
# The security scheme every keyed operation names.
API_KEY_SCHEME = "api_key"
# What a CORS preflight answers, besides the configured origin and headers.
CORS_METHODS = "GET,POST,OPTIONS"
OPENAPI_VERSION = "3.0.1"


@dataclass(frozen=True)
class Route:
    path: str
    model: str


@dataclass(frozen=True)
class LambdaIntegration:
    """A model's function alias (Lambda proxy)."""

    invoke_arn: str


@dataclass(frozen=True)
class HttpIntegration:
    """A model server (HTTP proxy): the route's path is appended to `base_url`."""

    base_url: str  # "http://host:port", no trailing slash
    vpc_link_id: str | None  # None: connectionType INTERNET (the local stand-in)


Integration = LambdaIntegration | HttpIntegration


def route_table(models: list[str], default_model: str) -> list[Route]:
    """Server-level routes answered by the default model's function, then each model's."""
    server = [Route(path, default_model) for path in ("/v2", "/v2/health/live", "/v2/health/ready")]
    return server + [
        Route(path, model)
        for model in models
        for path in (f"/v2/models/{model}", f"/v2/models/{model}/{{proxy+}}")
    ]


def rest_api_body(
    title: str,
    description: str,
    config: ApiConfig,
    routes: list[Route],
    integrations: dict[str, Integration],
) -> dict[str, Any]:
    """The whole REST API: `integrations` maps each model to what serves it."""
    served_over_http = any(
        isinstance(integrations[route.model], HttpIntegration) for route in routes
    )
    body: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "description": description, "version": "1"},
        "paths": {
            route.path: _path_item(route, integrations[route.model], config) for route in routes
        },
        "x-amazon-apigateway-gateway-responses": _gateway_responses(config, served_over_http),
    }
    if config.keys is not None:
        body["x-amazon-apigateway-api-key-source"] = "HEADER"
        body["components"] = {
            "securitySchemes": {
                API_KEY_SCHEME: {"type": "apiKey", "name": "x-api-key", "in": "header"}
            }
        }
    return body


def serialize(body: dict[str, Any]) -> str:
    """One text per document (sorted keys): equal bodies are equal inputs, so an unchanged
    route set is no change of the RestApi."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def deployment_trigger(body: str) -> str:
    """The Deployment's redeploy trigger: every route input is in the body, so a hash of
    the body changes exactly when what a deployment snapshots changes."""
    return hashlib.sha256(body.encode()).hexdigest()


def _path_item(route: Route, integration: Integration, config: ApiConfig) -> dict[str, Any]:
    # Every method ANY, so the app answers wrong methods with its own JSON errors.
    proxy: dict[str, Any] = {
        "x-amazon-apigateway-integration": _integration(route, integration, config)
    }
    if route.path.endswith("/{proxy+}"):
        proxy["parameters"] = [
            {"name": "proxy", "in": "path", "required": True, "schema": {"type": "string"}}
        ]
    if config.keys is not None:
        proxy["security"] = [{API_KEY_SCHEME: []}]
    item: dict[str, Any] = {"x-amazon-apigateway-any-method": proxy}
    if config.cors is not None:
        item["options"] = _preflight(config)
    return item


def _integration(route: Route, integration: Integration, config: ApiConfig) -> dict[str, Any]:
    common = {
        "passthroughBehavior": "when_no_match",
        "timeoutInMillis": config.integration_timeout_s * 1000,
    }
    if isinstance(integration, LambdaIntegration):
        # Lambda is always invoked with POST, whatever the client's method.
        return {"type": "aws_proxy", "httpMethod": "POST", "uri": integration.invoke_arn, **common}
    greedy = route.path.endswith("/{proxy+}")
    # The server's route is the API's: the client's method, path and query go through.
    http: dict[str, Any] = {
        "type": "http_proxy",
        "httpMethod": "ANY",
        "uri": integration.base_url + route.path.replace("{proxy+}", "{proxy}"),
        **common,
    }
    if greedy:
        http["requestParameters"] = {"integration.request.path.proxy": "method.request.path.proxy"}
    if integration.vpc_link_id is not None:
        http["connectionType"] = "VPC_LINK"
        http["connectionId"] = integration.vpc_link_id
    return http


def _preflight(config: ApiConfig) -> dict[str, Any]:
    """CORS preflight answered by API Gateway itself (MOCK): no API key, no Lambda invoke."""
    cors = config.cors
    assert cors is not None
    headers = {
        "Access-Control-Allow-Origin": cors.allow_origin,
        "Access-Control-Allow-Methods": CORS_METHODS,
        "Access-Control-Allow-Headers": ",".join(cors.allow_headers),
        "Access-Control-Max-Age": str(cors.max_age_s),
    }
    return {
        "responses": {
            "204": {
                "description": "CORS preflight",
                "headers": {header: {"schema": {"type": "string"}} for header in headers},
            }
        },
        "x-amazon-apigateway-integration": {
            "type": "mock",
            "requestTemplates": {"application/json": '{"statusCode": 204}'},
            "passthroughBehavior": "when_no_match",
            "responses": {
                "default": {
                    "statusCode": "204",
                    "responseParameters": {
                        f"method.response.header.{header}": f"'{value}'"
                        for header, value in headers.items()
                    },
                }
            },
        },
    }


def _gateway_responses(config: ApiConfig, served_over_http: bool) -> dict[str, Any]:
    parameters = (
        {"gatewayresponse.header.Access-Control-Allow-Origin": f"'{config.cors.allow_origin}'"}
        if config.cors is not None
        else None
    )
    responses: dict[str, Any] = {
        "DEFAULT_4XX": {"responseTemplates": {"application/json": ERROR_BODY}},
        "DEFAULT_5XX": {"responseTemplates": {"application/json": ERROR_BODY}},
        # API Gateway reports an unknown path as a missing token (403); it is a 404.
        "MISSING_AUTHENTICATION_TOKEN": {
            "statusCode": "404",
            "responseTemplates": {"application/json": NOT_FOUND_BODY},
        },
    }
    if parameters is not None:
        for response in responses.values():
            response["responseParameters"] = parameters
    if served_over_http:
        # API-wide, like every gateway response: a Lambda route's failed or timed-out
        # invocation answers this 503 too (also worth a retry).
        for kind in UNREACHABLE_RESPONSES:
            responses[kind] = {
                "statusCode": "503",
                "responseParameters": {
                    **(parameters or {}),
                    "gatewayresponse.header.Retry-After": f"'{RETRY_AFTER_S}'",
                },
                "responseTemplates": {"application/json": UNREACHABLE_BODY},
            }
    return responses
