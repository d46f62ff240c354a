"""The whole stack: which components a `StackConfig` becomes, and what it exports."""

from __future__ import annotations

import sys
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
from infra.gpu_network import GpuNetwork, GpuNetworkArgs, GpuTarget
from infra.inference_api import InferenceApi, InferenceApiArgs, ModelRoute, ServerRoute
from infra.job_queue import JobQueue, JobQueueArgs
from infra.job_store import BatchTrigger, JobStore, JobStoreArgs
from infra.lambda_model import Batches, Jobs, LambdaModel, LambdaModelArgs, S3Model
from infra.local_server import SHUTDOWN_TIMEOUT_S, LocalModelServer, log_path, preferred_port
from infra.monitoring import MonitoredFunction, Monitoring, MonitoringArgs
from infra.server_env import server_environment
from model_runtime.versions.label import VersionLabel
from stacks.schema import LambdaConfig, LocalStackTarget, ModelConfig, StackConfig


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
    routes: list[ModelRoute | ServerRoute] = [
        ModelRoute(model, function.function.name, function.alias.name, function.alias.invoke_arn)
        for model, function in functions.items()
    ]
    if config.gpu_models:
        assert config.kubernetes is not None
        kubernetes = providers.kubernetes_provider(stack, config.kubernetes)
        on_cluster = pulumi.ResourceOptions(providers=[aws_provider, kubernetes])
        endpoints = _define_gpu_endpoints(config, stack, artifacts, store, on_cluster)
        outputs["gpuServices"] = {model: e.service_address for model, e in endpoints.items()}
        if isinstance(config.target, LocalStackTarget):
            servers = _define_local_servers(config, stack, root, artifacts, endpoints)
            outputs["localServers"] = {
                model: {"url": server.url, "pid": server.pid, "log": server.log}
                for model, server in servers.items()
            }
            routes += [ServerRoute(model, base_url=server.url) for model, server in servers.items()]
        else:
            network = _define_gpu_network(config, prefix, endpoints, on_cluster)
            outputs["gpuLoadBalancer"] = network.load_balancer.dns_name
            routes += [
                ServerRoute(model, base_url=url, vpc_link_id=network.vpc_link_id)
                for model, url in network.base_urls.items()
            ]
    if routes:
        # Server-level routes (/v2, health) go to a Lambda model, else to a model server.
        default_model = config.default_model or routes[0].model
        api = InferenceApi(
            f"{prefix}-api",
            InferenceApiArgs(
                config=config.api,
                routes=routes,
                default_model=default_model,
                log_retention_days=config.log_retention_days,
            ),
            on_aws,
        )
        outputs["url"] = api.url
    if functions:
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
    opts: pulumi.ResourceOptions,
) -> dict[str, GpuEndpoint]:
    assert config.kubernetes is not None
    prefix = f"inferstack-{stack}"
    endpoints = {}
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
                manifest_name=artifact.manifest.name,
            ),
            opts,
        )
        endpoints[model.name] = endpoint
    return endpoints


def _define_gpu_network(
    config: StackConfig,
    prefix: str,
    endpoints: dict[str, GpuEndpoint],
    opts: pulumi.ResourceOptions,
) -> GpuNetwork:
    """On AWS: the API reaches each GPU endpoint's pods through a VPC link to an internal
    load balancer, whose target groups the AWS Load Balancer Controller fills."""
    assert config.kubernetes is not None and config.kubernetes.network is not None
    targets = []
    for model in config.gpu_models:
        assert model.gpu is not None
        service = endpoints[model.name].service
        targets.append(
            GpuTarget(
                model=model.name,
                namespace=service.metadata.namespace,
                service_name=service.metadata.name,
                termination_grace_s=model.gpu.termination_grace_s,
            )
        )
    return GpuNetwork(
        f"{prefix}-gpu", GpuNetworkArgs(network=config.kubernetes.network, targets=targets), opts
    )


def _define_local_servers(
    config: StackConfig,
    stack: str,
    root: Path,
    artifacts: dict[str, Artifact],
    endpoints: dict[str, GpuEndpoint],
) -> dict[str, LocalModelServer]:
    """On LocalStack, what stands in for each GPU endpoint (declared, not emulated): its
    model server as a process on this machine, on the CPU, reached by the API over HTTP."""
    prefix = f"inferstack-{stack}"
    servers = {}
    for model in config.gpu_models:
        assert model.gpu is not None
        artifact = artifacts[model.name]
        environment = server_environment(
            model.name,
            model.gpu,
            manifest_name=artifact.manifest.name,
            port=preferred_port(stack, model.name),
            shutdown_timeout_s=SHUTDOWN_TIMEOUT_S,
        )
        servers[model.name] = LocalModelServer(
            f"{prefix}-{model.name}-server",
            python=sys.executable,
            cwd=root,
            model_dir=artifact.directory,
            model_hash=artifact.manifest.content_hash(),
            log=log_path(root, stack, model.name),
            environment={
                **environment,
                "INFERSTACK_HOST": "127.0.0.1",
                "INFERSTACK_DEVICE": "cpu",
            },
            stands_in=f"{prefix}-{model.name}",
            # Beside the objects it stands in for, in their component.
            opts=pulumi.ResourceOptions(parent=endpoints[model.name]),
        )
    return servers
