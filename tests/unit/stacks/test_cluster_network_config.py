"""The kubernetes.network section: where the stack's API reaches its GPU-served models on
AWS (the VPC, the load balancer's subnets, the cluster's security group)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from infra.stack_loader import describe_validation_error, load_stack
from stacks.schema import (
    AwsTarget,
    ClusterNetwork,
    GpuConfig,
    KubernetesConfig,
    LambdaConfig,
    LocalStackTarget,
    ModelConfig,
    StackConfig,
)

VPC = "vpc-0123456789abcdef0"
SUBNETS = ["subnet-0123456789abcdef0", "subnet-0a1b2c3d"]
GROUP = "sg-0123456789abcdef0"
GPU_SERVED = ModelConfig(name="digits-gpu", gpu=GpuConfig(image="r/server:1.0"))
FUNCTION = ModelConfig(name="digits", lambda_=LambdaConfig())


def error_of(build: Callable[[], Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        build()
    return describe_validation_error(caught.value)


def network(**fields: Any) -> ClusterNetwork:
    values = {"vpc_id": VPC, "subnet_ids": SUBNETS, "cluster_security_group_id": GROUP}
    return ClusterNetwork(**{**values, **fields})


def test_a_valid_network_keeps_its_values() -> None:
    declared = network()
    assert (declared.vpc_id, declared.subnet_ids, declared.cluster_security_group_id) == (
        VPC,
        SUBNETS,
        GROUP,
    )
    assert KubernetesConfig(network=declared).network == declared
    assert KubernetesConfig().network is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"vpc_id": "vpc-xyz"},
            "kubernetes.network.vpc_id: 'vpc-xyz' is not a valid VPC id (must match"
            " ^vpc-([0-9a-f]{8}|[0-9a-f]{17})$)",
        ),
        (
            {"vpc_id": "subnet-0123456789abcdef0"},
            "kubernetes.network.vpc_id: 'subnet-0123456789abcdef0' is not a valid VPC id"
            " (must match ^vpc-([0-9a-f]{8}|[0-9a-f]{17})$)",
        ),
        (
            {"subnet_ids": ["subnet-0123456789abcdef0", "sg-0123456789abcdef0"]},
            "kubernetes.network.subnet_ids[1]: 'sg-0123456789abcdef0' is not a valid subnet id"
            " (must match ^subnet-([0-9a-f]{8}|[0-9a-f]{17})$)",
        ),
        (
            {"subnet_ids": []},
            "kubernetes.network.subnet_ids: List should have at least 1 item after validation,"
            " not 0",
        ),
        (
            {"subnet_ids": [SUBNETS[0], SUBNETS[1], SUBNETS[0]]},
            "kubernetes.network.subnet_ids: subnet-0123456789abcdef0 listed more than once;"
            " allowed: each subnet once",
        ),
        (
            {"cluster_security_group_id": "sg-ABCDEF12"},
            "kubernetes.network.cluster_security_group_id: 'sg-ABCDEF12' is not a valid security"
            " group id (must match ^sg-([0-9a-f]{8}|[0-9a-f]{17})$)",
        ),
    ],
    ids=["vpc-format", "vpc-kind", "subnet-kind", "no-subnets", "repeated-subnet", "sg-format"],
)
def test_bad_values_name_the_field_and_the_allowed_form(
    fields: dict[str, Any], message: str
) -> None:
    assert error_of(lambda: network(**fields)) == message


def test_missing_values_name_the_field() -> None:
    assert error_of(lambda: ClusterNetwork(vpc_id=VPC, subnet_ids=SUBNETS)) == (
        "kubernetes.network.cluster_security_group_id: Field required"
    )


def test_a_bad_value_in_a_stack_file_names_the_whole_path() -> None:
    """Written inline, as a stack file does: the path starts at `kubernetes`."""
    message = error_of(lambda: KubernetesConfig(network={**network().model_dump(), "vpc_id": "x"}))
    assert message.startswith("kubernetes.network.vpc_id: 'x' is not a valid VPC id")


def test_an_aws_stack_with_a_gpu_served_model_needs_it() -> None:
    def stack(kubernetes: KubernetesConfig) -> StackConfig:
        return StackConfig(
            target=AwsTarget(region="us-east-1"),
            models=[FUNCTION, GPU_SERVED],
            kubernetes=kubernetes,
        )

    assert error_of(lambda: stack(KubernetesConfig())) == (
        "kubernetes.network is required: the stack's API routes models[digits-gpu] to its GPU"
        " endpoint through an internal load balancer in the cluster's VPC; set"
        " kubernetes.network=ClusterNetwork(vpc_id='vpc-...', subnet_ids=['subnet-...'],"
        " cluster_security_group_id='sg-...')"
    )
    assert stack(KubernetesConfig(network=network())).kubernetes is not None


def test_it_is_not_needed_without_a_gpu_served_model_or_on_localstack() -> None:
    aws = StackConfig(target=AwsTarget(region="us-east-1"), models=[FUNCTION])
    assert aws.kubernetes is None
    local = StackConfig(
        target=LocalStackTarget(), models=[FUNCTION, GPU_SERVED], kubernetes=KubernetesConfig()
    )
    assert local.kubernetes is not None and local.kubernetes.network is None


def test_prod_declares_it_for_its_gpu_served_model() -> None:
    prod = load_stack("prod")
    assert prod.kubernetes is not None and prod.kubernetes.network is not None
    assert prod.kubernetes.network.subnet_ids
    (gpu,) = [m for m in prod.models if m.gpu is not None]
    assert (gpu.name, gpu.lambda_, gpu.artifact_dir) == ("digits-gpu", None, "build/models/digits")
    (digits,) = [m for m in prod.models if m.name == "digits"]
    assert digits.lambda_ is not None and digits.gpu is None
