"""The whole stack: which components a `StackConfig` becomes, and what it exports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import bundles, providers
from infra.artifact_store import ArtifactStore, ArtifactStoreArgs
from infra.artifacts import Artifact, load_artifact
from infra.autoscaling import Autoscaling, AutoscalingArgs
from infra.gpu_endpoint import GpuEndpoint, GpuEndpointArgs, PodRole
from infra.inference_api import InferenceApi, InferenceApiArgs, ModelRoute
from infra.lambda_model import LambdaModel, LambdaModelArgs, S3Model
from stacks.schema import StackConfig


def define_stack(config: StackConfig, stack: str, root: Path) -> dict[str, Any]:
    """Declare every resource of `config`; returns the stack outputs to export."""
    prefix = f"inferstack-{stack}"
    aws_provider = providers.aws_provider(stack, config)
    on_aws = pulumi.ResourceOptions(providers=[aws_provider])
    artifacts = {model.name: load_artifact(root, model) for model in config.models}
    # Every function's zips are found and fit Lambda's limits before anything is declared.
    function_bundles = {
        model.name: bundles.function_bundle(root, model, function, artifacts[model.name], stack)
        for model, function in config.lambda_functions
    }
    store = ArtifactStore(
        f"{prefix}-artifacts",
        ArtifactStoreArgs(config=config.artifact_store, artifacts=list(artifacts.values())),
        on_aws,
    )
    outputs: dict[str, Any] = {"bucket": store.bucket.bucket, "modelUris": store.model_uris}
    functions = _define_functions(config, prefix, function_bundles, artifacts, store, on_aws)
    if functions:
        default_model = config.default_model
        assert default_model is not None
        api = InferenceApi(
            f"{prefix}-api",
            InferenceApiArgs(
                config=config.api,
                routes=[
                    ModelRoute(
                        model,
                        function.function.name,
                        function.alias.name,
                        function.alias.invoke_arn,
                    )
                    for model, function in functions.items()
                ],
                default_model=default_model,
                log_retention_days=config.log_retention_days,
            ),
            on_aws,
        )
        outputs["url"] = api.url
        outputs["functions"] = {model: fn.function.name for model, fn in functions.items()}
        if api.api_keys:
            outputs["apiKeys"] = pulumi.Output.secret(
                {client: key.value for client, key in api.api_keys.items()}
            )
    if config.gpu_models:
        outputs["gpuServices"] = _define_gpu_endpoints(
            config, stack, artifacts, store, aws_provider
        )
    return outputs


def _define_functions(
    config: StackConfig,
    prefix: str,
    function_bundles: dict[str, bundles.FunctionBundle],
    artifacts: dict[str, Artifact],
    store: ArtifactStore,
    opts: pulumi.ResourceOptions,
) -> dict[str, LambdaModel]:
    runtime_layers: dict[tuple[str, str], aws.lambda_.LayerVersion] = {}
    environment = {}
    if config.api.cors is not None:
        # Lambda proxy responses carry their own headers: the app must add this one.
        environment["CORS_ALLOW_ORIGIN"] = config.api.cors.allow_origin
    # Zips over Lambda's direct-upload limit go through the artifact bucket, once it is
    # encrypted and versioned (depending on the store waits for all its resources).
    code_bucket = bundles.CodeBucket(prefix, store.bucket.id, ready=[store], opts=opts)
    functions = {}
    for model, function in config.lambda_functions:
        bundle = function_bundles[model.name]
        key = (function.runtime, function.architecture)
        if key not in runtime_layers:
            # One runtime layer per runtime and architecture, shared by the functions.
            layer_name = (
                f"{prefix}-runtime-{function.runtime.replace('.', '')}-{function.architecture}"
            )
            code = code_bucket.source(bundle.runtime_layer)
            runtime_layers[key] = aws.lambda_.LayerVersion(
                layer_name,
                layer_name=layer_name,
                code=code.code,
                s3_bucket=code.s3_bucket,
                s3_key=code.s3_key,
                compatible_runtimes=[function.runtime],
                compatible_architectures=[function.architecture],
                opts=opts,
            )
        artifact = artifacts[model.name]
        delivery: bundles.Zip | S3Model
        if model.delivery == "s3":
            delivery = S3Model(
                bucket_arn=store.bucket.arn,
                key_prefix=artifact.key_prefix,
                uri=store.model_uris[model.name],
                kms_key_arn=config.artifact_store.kms_key_arn,
            )
        else:
            assert bundle.model_layer is not None
            delivery = bundle.model_layer
        name = f"{prefix}-{model.name}"
        lambda_model = LambdaModel(
            name,
            LambdaModelArgs(
                function_name=name,
                config=function,
                code=bundle.code,
                runtime_layer_arn=runtime_layers[key].arn,
                model=delivery,
                model_dir=bundles.model_dir(model.name),
                log_retention_days=config.log_retention_days,
                environment=environment,
                code_bucket=code_bucket,
            ),
            opts,
        )
        provisioned = function.provisioned
        if provisioned is not None and provisioned.autoscaled:
            assert lambda_model.provisioned is not None
            Autoscaling(
                name,
                AutoscalingArgs(
                    function_name=lambda_model.function.name,
                    alias_name=lambda_model.alias.name,
                    config=provisioned,
                    provisioned=lambda_model.provisioned,
                ),
                opts,
            )
        functions[model.name] = lambda_model
    return functions


def _define_gpu_endpoints(
    config: StackConfig,
    stack: str,
    artifacts: dict[str, Artifact],
    store: ArtifactStore,
    aws_provider: aws.Provider,
) -> dict[str, pulumi.Output[str]]:
    assert config.kubernetes is not None
    prefix = f"inferstack-{stack}"
    kubernetes = providers.kubernetes_provider(stack, config.kubernetes)
    opts = pulumi.ResourceOptions(providers=[aws_provider, kubernetes])
    services = {}
    for model in config.gpu_models:
        assert model.gpu is not None
        artifact = artifacts[model.name]
        pod_role = None
        if config.kubernetes.oidc_provider_arn is not None:
            pod_role = PodRole(
                oidc_provider_arn=config.kubernetes.oidc_provider_arn,
                bucket_arn=store.bucket.arn,
                key_prefix=artifact.key_prefix,
                kms_key_arn=config.artifact_store.kms_key_arn,
            )
        endpoint = GpuEndpoint(
            f"{prefix}-{model.name}",
            GpuEndpointArgs(
                model=model.name,
                config=model.gpu,
                namespace=f"{prefix}-{model.name}",
                model_uri=store.model_uris[model.name],
                region=config.target.region,
                pod_role=pod_role,
                pod_monitor=config.kubernetes.pod_monitor,
            ),
            opts,
        )
        services[model.name] = endpoint.service_address
    return services
