"""The resource graph each stack declares, checked under Pulumi's mock runtime.

Every program run here is the real `define_stack` with `pulumi.runtime.set_mocks`
(through `infra.evaluate`): no Pulumi engine, no cloud. The mocks answer with
AWS-shaped ARNs and ids, so inputs built from other resources' outputs are realistic.
"""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.evaluate import Evaluation, Registered, evaluate
from infra.gpu_network import listener_port
from infra.stack_loader import load_stack
from stacks.schema import StackConfig

COMPONENTS = {
    "inferstack:index:ArtifactStore",
    "inferstack:index:JobStore",
    "inferstack:index:JobQueue",
    "inferstack:index:LambdaModel",
    "inferstack:index:Autoscaling",
    "inferstack:index:InferenceApi",
    "inferstack:index:GpuEndpoint",
    "inferstack:index:Monitoring",
    "inferstack:index:AliasDeployments",
    "inferstack:index:GpuNetwork",
}
LOCAL_SERVER = "pulumi-python:dynamic/inferstack:LocalModelServer"


def counts(evaluation: Evaluation) -> Counter[str]:
    return Counter(resource.type for resource in evaluation.resources)


def zip_names(archive: pulumi.FileArchive) -> list[str]:
    with zipfile.ZipFile(archive.path) as built:
        return sorted(built.namelist())


def api_body(evaluation: Evaluation) -> dict[str, Any]:
    """The OpenAPI document the stack's REST API is declared from."""
    (api,) = evaluation.of_type("aws:apigateway/restApi:RestApi")
    body = json.loads(api.inputs["body"])
    assert isinstance(body, dict)
    return body


def proxy_integrations(evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    """Each path's Lambda proxy integration (the ANY method's)."""
    return {
        path: item["x-amazon-apigateway-any-method"]["x-amazon-apigateway-integration"]
        for path, item in api_body(evaluation)["paths"].items()
    }


def function_named(evaluation: Evaluation, name: str) -> Registered:
    return next(
        fn for fn in evaluation.of_type("aws:lambda/function:Function") if fn.inputs["name"] == name
    )


def test_local_stack_declares_the_lambda_path_and_a_gpu_model_served_locally(
    evaluations: dict[str, Evaluation],
) -> None:
    local = counts(evaluations["local"])
    # digits (layer), digits-int8 (S3), minilm-int8 (layer).
    assert local["aws:lambda/function:Function"] == 3
    assert local["aws:lambda/alias:Alias"] == 3
    assert local["aws:apigateway/restApi:RestApi"] == 1
    # The artifact bucket, and the data bucket of digits' jobs and batches.
    assert local["aws:s3/bucket:Bucket"] == 2
    # digits' job queue and dead-letter queue, polled by one mapping; its batches'
    # notification.
    assert local["aws:sqs/queue:Queue"] == 2
    assert local["aws:lambda/eventSourceMapping:EventSourceMapping"] == 1
    assert local["aws:s3/bucketNotification:BucketNotification"] == 1
    # One runtime layer shared by the functions, one model layer per layer-delivered model.
    assert local["aws:lambda/layerVersion:LayerVersion"] == 3
    # digits-gpu: its GPU endpoint's objects are declared (not emulated on LocalStack),
    # and one local model server process stands in for them.
    assert local["inferstack:index:GpuEndpoint"] == 1
    assert local["kubernetes:apps/v1:Deployment"] == 1
    assert local["pulumi-python:dynamic/inferstack:LocalModelServer"] == 1
    assert not [t for t in local if t.startswith("aws:appautoscaling")]
    assert local["aws:apigateway/apiKey:ApiKey"] == 0


def test_prod_stack_declares_autoscaling_keys_and_a_gpu_endpoint(
    evaluations: dict[str, Evaluation],
) -> None:
    prod = counts(evaluations["prod"])
    assert prod["inferstack:index:Autoscaling"] == 1
    assert prod["aws:appautoscaling/target:Target"] == 1
    assert prod["aws:appautoscaling/policy:Policy"] == 1
    assert prod["aws:appautoscaling/scheduledAction:ScheduledAction"] == 2
    assert prod["aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"] == 1
    assert prod["aws:apigateway/apiKey:ApiKey"] == 2
    assert prod["aws:apigateway/usagePlanKey:UsagePlanKey"] == 2
    for kind in ("Namespace", "Service", "ServiceAccount"):
        assert prod[f"kubernetes:core/v1:{kind}"] == 1
    assert prod["kubernetes:apps/v1:Deployment"] == 1
    assert prod["kubernetes:autoscaling/v2:HorizontalPodAutoscaler"] == 1
    assert prod["kubernetes:policy/v1:PodDisruptionBudget"] == 1


def test_every_resource_sits_under_a_component(stack: Evaluation) -> None:
    components = {r.urn: r for r in stack.resources if r.type in COMPONENTS}
    for resource in stack.resources:
        if resource.type in COMPONENTS or resource.type.startswith("pulumi:providers:"):
            # Components and providers hang off the stack itself.
            assert resource.parent.endswith(f"::pulumi:pulumi:Stack::inferstack-{stack.stack}")
        elif resource.name.startswith(f"inferstack-{stack.stack}-runtime-"):
            # The shared runtime layer belongs to no single model.
            assert resource.type == "aws:lambda/layerVersion:LayerVersion"
        else:
            assert resource.parent in components, f"{resource.name} is not in a component"


def test_every_resource_uses_the_stacks_explicit_provider(stack: Evaluation) -> None:
    providers = {r.type: r.urn for r in stack.resources if r.type.startswith("pulumi:providers:")}
    for resource in stack.resources:
        if not resource.custom or resource.type.startswith("pulumi:providers:"):
            continue
        if resource.type.startswith("pulumi-python:dynamic"):
            # A dynamic resource's provider is its own code (its `__provider` input).
            assert resource.provider == "", resource.name
            continue
        package = resource.type.split(":", 1)[0]
        assert resource.provider == providers[f"pulumi:providers:{package}"], resource.name


def test_localstack_provider_points_only_the_services_in_use_at_localstack(
    evaluations: dict[str, Evaluation],
) -> None:
    (provider,) = evaluations["local"].of_type("pulumi:providers:aws")
    inputs = provider.inputs
    (endpoints,) = json.loads(inputs["endpoints"])
    assert set(endpoints) == {
        "apigateway",
        "cloudwatch",
        "iam",
        "lambda",
        "logs",
        "s3",
        "sns",
        "sqs",
        "sts",
    }
    assert set(endpoints.values()) == {"http://127.0.0.1:4566"}
    for flag in (
        "skipCredentialsValidation",
        "skipRequestingAccountId",
        "skipMetadataApiCheck",
        "s3UsePathStyle",
    ):
        assert inputs[flag] == "true", flag
    assert (inputs["accessKey"], inputs["secretKey"]) == ("test", "test")
    assert {"accessKey", "secretKey"} <= provider.secret_inputs


def test_aws_providers_have_a_region_and_no_endpoints_or_keys(
    evaluations: dict[str, Evaluation],
) -> None:
    for name in ("dev", "prod"):
        (provider,) = evaluations[name].of_type("pulumi:providers:aws")
        assert provider.inputs["region"] == "us-east-1"
        assert "endpoints" not in provider.inputs
        assert "accessKey" not in provider.inputs
        tags = json.loads(provider.inputs["defaultTags"])["tags"]
        assert tags == {"inferstack:stack": name, "env": name}


def test_api_reaches_each_function_through_a_scoped_permission(stack: Evaluation) -> None:
    (api,) = stack.of_type("aws:apigateway/restApi:RestApi")
    permissions = [
        p
        for p in stack.of_type("aws:lambda/permission:Permission")
        # S3's, for batches, are checked in test_jobs.py.
        if p.inputs["principal"] != "s3.amazonaws.com"
    ]
    assert {p.inputs["principal"] for p in permissions} == {"apigateway.amazonaws.com"}
    functions = stack.of_type("aws:lambda/function:Function")
    assert len(permissions) == len(functions)
    for permission in permissions:
        function = function_named(stack, permission.inputs["function"])
        alias = next(
            a
            for a in stack.of_type("aws:lambda/alias:Alias")
            if a.inputs["functionName"] == function.inputs["name"]
        )
        # API -> permission -> function (on the live alias).
        assert permission.depends_on(api)
        assert permission.depends_on(function)
        assert permission.inputs["qualifier"] == "live" == alias.inputs["name"]
        assert permission.inputs["sourceArn"] == api.outputs["executionArn"] + "/*/*"
        integrations = [
            i for i in proxy_integrations(stack).values() if i["uri"] == alias.outputs["invokeArn"]
        ]
        assert integrations, f"no integration reaches {function.name}"
        for integration in integrations:
            assert (integration["type"], integration["httpMethod"]) == ("aws_proxy", "POST")


def test_routes_follow_the_open_inference_protocol(stack: Evaluation) -> None:
    config = load_stack(stack.stack)
    integrations = proxy_integrations(stack)
    # API Gateway creates the intermediate resources (/v2/health, /v2/models) itself.
    expected = {"/v2", "/v2/health/live", "/v2/health/ready"}
    for model in config.lambda_models:
        expected |= {f"/v2/models/{model.name}", f"/v2/models/{model.name}/{{proxy+}}"}
    servers = {r.name: r for r in stack.of_type(LOCAL_SERVER)}
    links = stack.of_type("aws:apigateway/vpcLink:VpcLink")
    for model in config.gpu_models:
        # A GPU-served model's routes proxy HTTP to its model server, path and all: the
        # local process, or on AWS its listener on the load balancer, through the VPC link.
        if servers:
            url = servers[f"inferstack-{stack.stack}-{model.name}-server"].outputs["url"]
        else:
            (balancer,) = stack.of_type("aws:lb/loadBalancer:LoadBalancer")
            (link,) = links
            url = f"http://{balancer.outputs['dnsName']}:{listener_port(model.name)}"
        for path in (f"/v2/models/{model.name}", f"/v2/models/{model.name}/{{proxy+}}"):
            assert integrations[path]["type"] == "http_proxy", path
            assert integrations[path]["uri"] == url + path.replace("{proxy+}", "{proxy}")
            if not servers:
                assert integrations[path]["connectionType"] == "VPC_LINK", path
                assert integrations[path]["connectionId"] == link.id, path
            expected.add(path)
    assert set(integrations) == expected
    # Health answers from the default model's function; each model path from its own.
    default = config.default_model
    routes = [("/v2", default), ("/v2/health/ready", default), ("/v2/health/live", default)]
    for model in config.lambda_models:
        routes += [(f"/v2/models/{model.name}", model.name)]
        routes += [(f"/v2/models/{model.name}/{{proxy+}}", model.name)]
    for path, target in routes:
        uri = integrations[path]["uri"]
        assert f":function:inferstack-{stack.stack}-{target}:live/" in uri, path
        assert integrations[path]["timeoutInMillis"] == config.api.integration_timeout_s * 1000
    proxy_parameter = {
        "name": "proxy",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    for path, item in api_body(stack)["paths"].items():
        parameters = item["x-amazon-apigateway-any-method"].get("parameters")
        assert parameters == ([proxy_parameter] if path.endswith("/{proxy+}") else None), path


def test_routes_are_one_resource_and_the_deployment_follows_them(stack: Evaluation) -> None:
    """No route is a resource of its own: removing one is an update of the RestApi's
    body, and the deployment's trigger is that body's hash."""
    from infra.openapi import deployment_trigger

    for type_ in ("resource:Resource", "method:Method", "integration:Integration"):
        assert not stack.of_type(f"aws:apigateway/{type_}"), type_
    for type_ in ("methodResponse:MethodResponse", "integrationResponse:IntegrationResponse"):
        assert not stack.of_type(f"aws:apigateway/{type_}"), type_
    assert not stack.of_type("aws:apigateway/response:Response")
    (api,) = stack.of_type("aws:apigateway/restApi:RestApi")
    (deployment,) = stack.of_type("aws:apigateway/deployment:Deployment")
    (stage,) = stack.of_type("aws:apigateway/stage:Stage")
    assert deployment.depends_on(api)
    assert deployment.inputs["triggers"] == {"body": deployment_trigger(api.inputs["body"])}
    assert stage.depends_on(deployment)
    assert stage.inputs["stageName"] == load_stack(stack.stack).api.stage


def test_functions_wait_for_their_log_group_policy_and_model(stack: Evaluation) -> None:
    for model in load_stack(stack.stack).lambda_models:
        function = function_named(stack, f"inferstack-{stack.stack}-{model.name}")
        log_group = stack.named(f"{function.name}-logs")
        policy = stack.named(f"{function.name}-policy")
        assert function.depends_on(log_group) and function.depends_on(policy)
        variables = function.inputs["environment"]["variables"]
        if model.delivery == "s3":
            objects = [
                o
                for o in stack.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
                if o.inputs["key"].startswith(f"models/{model.name}/")
            ]
            assert len(objects) == 2 and all(function.depends_on(o) for o in objects)
            bucket = stack.outputs["bucket"]
            assert variables["MODEL_URI"] == stack.outputs["modelUris"][model.name]
            assert variables["MODEL_URI"].startswith(f"s3://{bucket}/models/{model.name}/")
            assert "MODEL_DIR" not in variables
        else:
            layer = stack.named(f"{function.name}-model")
            assert function.depends_on(layer)
            assert layer.outputs["arn"] in function.inputs["layers"]
            assert variables["MODEL_DIR"] == f"/opt/models/{model.name}"
            assert "MODEL_URI" not in variables
        assert function.inputs["handler"] == "functions.handler.handler"
        assert function.inputs["publish"] is True


def test_artifacts_are_uploaded_under_content_addressed_keys(
    stack: Evaluation, project_root: Path
) -> None:
    from model_runtime.manifest import Manifest

    config = load_stack(stack.stack)
    keys = {o.inputs["key"] for o in stack.of_type("aws:s3/bucketObjectv2:BucketObjectv2")}
    expected = set()
    for model in config.models:
        digest = Manifest.load(project_root / model.artifact_dir).content_hash()
        expected |= {
            f"models/{model.name}/{digest}/model.onnx",
            f"models/{model.name}/{digest}/manifest.json",
        }
    assert keys == expected


def test_autoscaling_targets_the_live_alias_provisioned_concurrency(
    evaluations: dict[str, Evaluation],
) -> None:
    prod = evaluations["prod"]
    (target,) = prod.of_type("aws:appautoscaling/target:Target")
    (provisioned,) = prod.of_type(
        "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"
    )
    (policy,) = prod.of_type("aws:appautoscaling/policy:Policy")
    assert target.inputs["resourceId"] == "function:inferstack-prod-digits:live"
    assert target.inputs["scalableDimension"] == "lambda:function:ProvisionedConcurrency"
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (2, 20)
    assert target.depends_on(provisioned)
    tracking = policy.inputs["targetTrackingScalingPolicyConfiguration"]
    assert tracking["predefinedMetricSpecification"]["predefinedMetricType"] == (
        "LambdaProvisionedConcurrencyUtilization"
    )
    assert tracking["targetValue"] == 0.7
    schedules = {
        a.inputs["schedule"]
        for a in prod.of_type("aws:appautoscaling/scheduledAction:ScheduledAction")
    }
    assert schedules == {"cron(0 8 ? * MON-FRI *)", "cron(0 20 ? * MON-FRI *)"}


def test_fixed_provisioned_concurrency_needs_no_autoscaling(
    run_program: Callable[[StackConfig, str], Evaluation],
) -> None:
    from stacks.schema import LambdaConfig, ModelConfig, ProvisionedConcurrency

    config = load_stack("dev")
    fixed = LambdaConfig(reserved_concurrency=5, provisioned=ProvisionedConcurrency(min=3, max=3))
    models = [ModelConfig(name="digits", lambda_=fixed)]
    evaluation = run_program(config.model_copy(update={"models": models}), "fixed")
    (provisioned,) = evaluation.of_type(
        "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig"
    )
    assert provisioned.inputs["provisionedConcurrentExecutions"] == 3
    assert not evaluation.of_type("aws:appautoscaling/target:Target")


def test_stack_outputs(evaluations: dict[str, Evaluation]) -> None:
    prod = evaluations["prod"].outputs
    assert prod["url"].startswith("https://") and prod["url"].endswith("/prod")
    assert set(prod["apiKeys"]) == {"web", "batch"}
    assert prod["functions"] == {
        "digits": "inferstack-prod-digits",
        "digits-int8": "inferstack-prod-digits-int8",
        "minilm-int8": "inferstack-prod-minilm-int8",
    }
    assert prod["gpuServices"] == {
        "digits-gpu": "digits-gpu.inferstack-prod-digits-gpu.svc.cluster.local:8080"
    }
    assert "apiKeys" not in evaluations["local"].outputs


def test_evaluations_do_not_leak_between_runs(
    run_program: Callable[[StackConfig, str], Evaluation], evaluations: dict[str, Evaluation]
) -> None:
    again = run_program(load_stack("local"), "local")
    first = evaluations["local"]
    # Registration order is the event loop's; the set of resources must be the same.
    assert sorted(r.urn for r in again.resources) == sorted(r.urn for r in first.resources)
    assert len(again.resources) == len(first.resources)
    for evaluation in evaluations.values():
        assert all(f"urn:pulumi:{evaluation.stack}::" in r.urn for r in evaluation.resources)
    # The runtime is left without mocks: a stray resource outside evaluate() cannot
    # silently register against the last stack's monitor.
    assert pulumi.runtime.settings.get_monitor() is None


def test_program_errors_surface_from_evaluate() -> None:
    def broken() -> dict[str, object]:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        evaluate(broken, "broken")


def test_model_layer_ships_only_what_onnxruntime_needs(
    tmp_path: Path,
    project_root: Path,
    run_program: Callable[[StackConfig, str], Evaluation],
) -> None:
    from infra.errors import ArtifactMissingError
    from layers.targets import Target
    from model_runtime.manifest import BackendArtifact, hash_files
    from stacks.schema import LambdaConfig, ModelConfig
    from tests.support.project import stage_packages, write_artifact

    directory = tmp_path / "two-backends"
    manifest = write_artifact(directory, "digits")
    (directory / "model.pt2").write_bytes(b"a torch export")
    manifest.model_copy(
        update={
            "files": hash_files(directory, ["model.onnx", "model.pt2"]),
            "backends": [
                BackendArtifact(backend="onnxruntime", file="model.onnx", format="onnx"),
                BackendArtifact(backend="torch", file="model.pt2", format="torch_export"),
            ],
        }
    ).write(directory)
    model = ModelConfig(name="digits", artifact=str(directory), lambda_=LambdaConfig())
    config = load_stack("local").model_copy(update={"models": [model]})
    with pytest.raises(ArtifactMissingError, match="the model layer of digits"):
        run_program(config, "local")  # what `inferstack up` builds first
    stage_packages(project_root, Target.of(), directory, "layer")
    evaluation = run_program(config, "local")

    layer = evaluation.named("inferstack-local-digits-model")
    assert zip_names(layer.inputs["code"]) == [
        "models/digits/manifest.json",
        "models/digits/model.onnx",
    ]
    uploaded = {
        o.inputs["key"].rsplit("/", 1)[-1]
        for o in evaluation.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
    }
    assert uploaded == {"manifest.json", "model.onnx", "model.pt2"}
    code = zip_names(function_named(evaluation, "inferstack-local-digits").inputs["code"])
    assert "functions/handler.py" in code
    # Sources and their bytecode for the target Python, nothing else.
    assert all(name.endswith((".py", ".pyc")) for name in code)


def test_api_gateways_own_errors_have_the_apps_json_shape(stack: Evaluation) -> None:
    responses = api_body(stack)["x-amazon-apigateway-gateway-responses"]
    # With model servers behind the API, an unreachable one answers a retryable 503.
    unreachable = (
        {"API_CONFIGURATION_ERROR", "INTEGRATION_FAILURE", "INTEGRATION_TIMEOUT"}
        if load_stack(stack.stack).gpu_models
        else set()
    )
    assert set(responses) == {
        "DEFAULT_4XX",
        "DEFAULT_5XX",
        "MISSING_AUTHENTICATION_TOKEN",
        *unreachable,
    }
    for kind in unreachable:
        assert responses[kind]["statusCode"] == "503"
        assert responses[kind]["responseParameters"]["gatewayresponse.header.Retry-After"] == "'5'"
        assert "error" in responses[kind]["responseTemplates"]["application/json"]
    for default in ("DEFAULT_4XX", "DEFAULT_5XX"):
        body = responses[default]["responseTemplates"]["application/json"]
        # messageString is already a quoted JSON string.
        assert body == '{"error": $context.error.messageString}'
    not_found = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert not_found["statusCode"] == "404"
    assert "error" in json.loads(not_found["responseTemplates"]["application/json"])
