"""The whole stack: which components a `StackConfig` becomes, and what it exports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import bundles, providers
from infra.alias_deployments import AliasDeployments, AliasDeploymentsArgs
from infra.artifact_store import ArtifactStore, ArtifactStoreArgs
from infra.artifacts import Artifact, load_artifact
from infra.autoscaling import Autoscaling, AutoscalingArgs
from infra.gpu_endpoint import GpuEndpoint, GpuEndpointArgs, PodRole
from infra.inference_api import InferenceApi, InferenceApiArgs, ModelRoute
from infra.job_queue import JobQueue, JobQueueArgs
from infra.job_store import BatchTrigger, JobStore, JobStoreArgs
from infra.lambda_model import Batches, Jobs, LambdaModel, LambdaModelArgs, S3Model
from infra.monitoring import MonitoredFunction, Monitoring, MonitoringArgs
from model_runtime.versions.label import VersionLabel
from stacks.schema import LambdaConfig, ModelConfig, StackConfig


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
    job_store = None
    if config.async_models:
        job_store = JobStore(
            f"{prefix}-jobs",
            JobStoreArgs(config=config.artifact_store, models=config.async_models),
            on_aws,
        )
    functions = _define_functions(
        config, prefix, function_bundles, artifacts, store, job_store, on_aws
    )
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
        if job_store is not None:
            outputs["jobsBucket"] = job_store.bucket.bucket
            outputs["jobs"] = _job_outputs(config, functions, job_store, api.url)
        if api.api_keys:
            outputs["apiKeys"] = pulumi.Output.secret(
                {client: key.value for client, key in api.api_keys.items()}
            )
        monitoring = _define_monitoring(config, prefix, functions, on_aws)
        outputs["alarmTopic"] = monitoring.topic.arn
        outputs["dashboard"] = monitoring.dashboard.dashboard_name
        deployments = _define_alias_deployments(config, prefix, functions, monitoring, on_aws)
        if deployments:
            outputs["deployments"] = deployments
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
    job_store: JobStore | None,
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
        # The delivery packaging planned (the stack's, or S3 for a model over the budget).
        if bundle.model_layer is None:
            delivery = S3Model(
                bucket_arn=store.bucket.arn,
                key_prefix=artifact.key_prefix,
                uri=store.model_uris[model.name],
                kms_key_arn=config.artifact_store.kms_key_arn,
            )
        else:
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
                ephemeral_storage_mb=bundle.ephemeral_storage_mb,
                log_retention_days=config.log_retention_days,
                environment=environment,
                code_bucket=code_bucket,
                label=VersionLabel.of(artifact.manifest),
                jobs=_define_jobs(config, model, function, name, job_store, opts),
                canary=model.canary,
                codedeploy_moves_alias=model.alarm_rollback is not None,
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
    triggers = [
        BatchTrigger(fn.jobs.batches.prefix, fn.alias.arn, fn.s3_permission)
        for fn in functions.values()
        if fn.jobs is not None and fn.jobs.batches is not None and fn.s3_permission is not None
    ]
    if job_store is not None and triggers:
        job_store.notify(triggers)
    return functions


def _define_jobs(
    config: StackConfig,
    model: ModelConfig,
    function: LambdaConfig,
    function_name: str,
    job_store: JobStore | None,
    opts: pulumi.ResourceOptions,
) -> Jobs | None:
    """The model's queue, and what its function needs to know of it and the data bucket."""
    if model.async_ is None:
        return None
    assert job_store is not None
    store = config.artifact_store
    queue = JobQueue(
        function_name,
        JobQueueArgs(
            function_name=function_name,
            config=model.async_,
            function_timeout_s=function.timeout_s,
            # Without a key of the stack's own, KMS means AWS's managed key for SQS (as
            # aws/s3 is for the buckets).
            kms_key_id=store.kms_key_arn
            or ("alias/aws/sqs" if store.encryption == "aws:kms" else None),
        ),
        opts,
    )
    batches = None
    if model.batch is not None and model.batch_prefix is not None:
        batches = Batches(prefix=model.batch_prefix, chunk_lines=model.batch.chunk_lines)
    return Jobs(
        config=model.async_,
        queue=queue,
        bucket_name=job_store.bucket.bucket,
        bucket_arn=job_store.bucket.arn,
        prefix=model.jobs_prefix,
        batches=batches,
        kms_key_arn=store.kms_key_arn,
    )


def _job_outputs(
    config: StackConfig,
    functions: dict[str, LambdaModel],
    job_store: JobStore,
    url: pulumi.Output[str],
) -> dict[str, dict[str, pulumi.Output[str]]]:
    """Per model with jobs: its queues, its jobs URL and where its batch files go."""
    outputs = {}
    for model in config.async_models:
        jobs = functions[model.name].jobs
        assert jobs is not None
        entry = {
            "queueUrl": jobs.queue.queue.url,
            "deadLetterQueueUrl": jobs.queue.dead_letter.url,
            "jobsUrl": pulumi.Output.concat(url, f"/v2/models/{model.name}/jobs"),
        }
        if model.batch_prefix is not None:
            entry["batchPrefix"] = pulumi.Output.concat(
                "s3://", job_store.bucket.bucket, f"/{model.batch_prefix}/in/"
            )
        outputs[model.name] = entry
    return outputs


def _define_monitoring(
    config: StackConfig,
    prefix: str,
    functions: dict[str, LambdaModel],
    opts: pulumi.ResourceOptions,
) -> Monitoring:
    """The alarms of every function, the topic they notify and the stack's dashboard."""
    monitored = []
    for model, function in config.lambda_functions:
        jobs = functions[model.name].jobs
        monitored.append(
            MonitoredFunction(
                model=model.name,
                function_name=f"{prefix}-{model.name}",
                p99_ms=function.p99_ms,
                dead_letter_queue=None if jobs is None else jobs.queue.dead_letter.name,
                provisioned=function.provisioned is not None,
            )
        )
    return Monitoring(
        f"{prefix}-monitoring",
        MonitoringArgs(
            prefix=prefix,
            config=config.monitoring,
            region=config.target.region,
            functions=monitored,
        ),
        opts,
    )


def _define_alias_deployments(
    config: StackConfig,
    prefix: str,
    functions: dict[str, LambdaModel],
    monitoring: Monitoring,
    opts: pulumi.ResourceOptions,
) -> dict[str, dict[str, pulumi.Output[str]]]:
    """CodeDeploy for the models whose promotions alarms roll back; what the CLI needs
    to start a deployment: {model: {application, deploymentGroup}}."""
    outputs = {}
    for model in config.lambda_models:
        if model.alarm_rollback is None:
            continue
        name = f"{prefix}-{model.name}"
        # The alarms that say a version is worse: errors and, when declared, latency.
        watching = [
            monitoring.alarms[key]
            for key in (f"{name}-5xx-rate", f"{name}-p99-latency")
            if key in monitoring.alarms
        ]
        assert watching, f"monitoring declares no 5xx alarm for {name}"
        deployments = AliasDeployments(
            name,
            AliasDeploymentsArgs(
                name=name,
                function_arn=functions[model.name].function.arn,
                alarm_names=[alarm.name for alarm in watching],
                alarm_arns=[alarm.arn for alarm in watching],
                config=model.alarm_rollback,
            ),
            opts,
        )
        outputs[model.name] = {
            "application": deployments.application.name,
            "deploymentGroup": deployments.group.deployment_group_name,
        }
    return outputs


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
                model_version=artifact.manifest.version,
            ),
            opts,
        )
        services[model.name] = endpoint.service_address
    return services
