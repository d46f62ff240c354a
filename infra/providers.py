"""Explicit providers: every resource names one, so nothing falls back to ambient config."""

from __future__ import annotations

import os

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from stacks.schema import AwsTarget, KubernetesConfig, LocalStackTarget, StackConfig

# LocalStack accepts any credentials; these are its documented defaults.
LOCALSTACK_CREDENTIALS = ("test", "test")


def services_used(config: StackConfig) -> list[str]:
    """The AWS services this stack's resources call, as provider endpoint keys.

    Only these get a LocalStack endpoint: every custom endpoint slows the real provider
    down (pulumi/pulumi-aws#2880). `sts` is listed because it is where the provider
    itself would ask who it is; pointed at LocalStack, such a call can never reach AWS
    with the fake credentials.
    """
    services = {"s3", "iam", "sts"}
    if config.lambda_models:
        # cloudwatch and sns: the functions' alarms, their topic and the dashboard.
        services |= {"lambda", "logs", "apigateway", "cloudwatch", "sns"}
    if config.async_models:
        services.add("sqs")
    if any(
        function.provisioned is not None and function.provisioned.autoscaled
        for _model, function in config.lambda_functions
    ):
        services.add("appautoscaling")
    return sorted(services)


def aws_provider(
    stack: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None
) -> aws.Provider:
    name = f"inferstack-{stack}"
    tags = {"inferstack:stack": stack, **config.tags}
    default_tags = aws.ProviderDefaultTagsArgs(tags=tags)
    target = config.target
    if isinstance(target, LocalStackTarget):
        return _localstack(name, target, services_used(config), default_tags, opts)
    return _aws(name, target, default_tags, opts)


def _localstack(
    name: str,
    target: LocalStackTarget,
    services: list[str],
    default_tags: aws.ProviderDefaultTagsArgs,
    opts: pulumi.ResourceOptions | None,
) -> aws.Provider:
    endpoint = target.endpoint.rstrip("/")
    # `lambda` is a keyword: the endpoint argument is spelled `lambda_`.
    endpoints = aws.ProviderEndpointArgs(
        **{("lambda_" if service == "lambda" else service): endpoint for service in services}
    )
    access_key, secret_key = LOCALSTACK_CREDENTIALS
    return aws.Provider(
        f"{name}-localstack",
        region=target.region,
        access_key=access_key,
        secret_key=secret_key,
        endpoints=[endpoints],
        skip_credentials_validation=True,
        skip_requesting_account_id=True,
        skip_metadata_api_check=True,
        s3_use_path_style=True,
        default_tags=default_tags,
        opts=opts,
    )


def _aws(
    name: str,
    target: AwsTarget,
    default_tags: aws.ProviderDefaultTagsArgs,
    opts: pulumi.ResourceOptions | None,
) -> aws.Provider:
    return aws.Provider(
        f"{name}-aws",
        region=target.region,
        profile=target.profile,
        allowed_account_ids=target.allowed_account_ids,
        default_tags=default_tags,
        opts=opts,
    )


def kubernetes_provider(
    stack: str, config: KubernetesConfig, opts: pulumi.ResourceOptions | None = None
) -> k8s.Provider:
    return k8s.Provider(
        f"inferstack-{stack}-kubernetes",
        kubeconfig=os.path.expanduser(config.kubeconfig),
        context=config.context,
        opts=opts,
    )
