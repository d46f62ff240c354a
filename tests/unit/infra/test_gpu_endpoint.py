"""Kubernetes objects rendered by `GpuEndpoint`, validated against Kubernetes' own schemas.

The prod program runs under Pulumi's mock runtime (`pulumi.runtime.set_mocks`); each
registered Kubernetes resource's inputs are the manifest pulumi-kubernetes would apply.
`kubernetes-validate` checks them offline against the upstream OpenAPI schemas of a
pinned Kubernetes version, in strict mode (unknown fields are errors).
"""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import pytest

from infra.evaluate import Evaluation, Registered

KUBERNETES_VERSION = "1.31.0"


def manifest(resource: Registered) -> dict[str, Any]:
    """The object as YAML would hold it: the mock wire format carries every number as a
    float (protobuf Struct), which a schema's `integer` rejects."""

    def ints(value: Any) -> Any:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dict):
            return {key: ints(item) for key, item in value.items()}
        if isinstance(value, list):
            return [ints(item) for item in value]
        return value

    rendered: dict[str, Any] = ints(copy.deepcopy(resource.inputs))
    return rendered


def kubernetes_objects(evaluation: Evaluation) -> list[Registered]:
    return [r for r in evaluation.resources if r.type.startswith("kubernetes:")]


def one(evaluation: Evaluation, type_: str) -> dict[str, Any]:
    (resource,) = evaluation.of_type(type_)
    return manifest(resource)


@pytest.fixture(scope="module")
def prod(evaluations: dict[str, Evaluation]) -> Evaluation:
    return evaluations["prod"]


def test_pinned_version_is_shipped_with_kubernetes_validate() -> None:
    assert KUBERNETES_VERSION in kubernetes_validate.utils.all_versions()


def test_every_object_validates_against_the_pinned_schema(prod: Evaluation) -> None:
    objects = kubernetes_objects(prod)
    assert {o.inputs["kind"] for o in objects} == {
        "Namespace",
        "ServiceAccount",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    for resource in objects:
        kubernetes_validate.validate(manifest(resource), KUBERNETES_VERSION, strict=True)


def test_validation_would_catch_a_malformed_object(prod: Evaluation) -> None:
    deployment = one(prod, "kubernetes:apps/v1:Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["gpus"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_deployment_runs_the_model_server_on_gpu_nodes(prod: Evaluation) -> None:
    deployment = one(prod, "kubernetes:apps/v1:Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", "model_runtime.server"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["ports"] == [{"name": "http", "containerPort": 8080}]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["MODEL_URI"] == prod.outputs["modelUris"]["digits"]
    assert (env["INFERSTACK_MAX_BATCH_SIZE"], env["INFERSTACK_MAX_DELAY_MS"]) == ("64", "5")
    assert env["INFERSTACK_PORT"] == "8080"
    assert env["INFERSTACK_SHUTDOWN_TIMEOUT_S"] == "50"  # 60 s grace - 5 s pre-stop - 5 s
    # Graceful termination: time to drain, and a pause before SIGTERM.
    assert pod["terminationGracePeriodSeconds"] == 60
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    # The HPA owns the replica count.
    assert "replicas" not in deployment["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_hpa_scales_on_the_servers_per_pod_metric_with_cpu_as_fallback(prod: Evaluation) -> None:
    hpa = one(prod, "kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    spec = hpa["spec"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "digits",
    }
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 8)
    pods, cpu = spec["metrics"]
    assert pods["type"] == "Pods"
    assert pods["pods"]["metric"]["name"] == "inferstack_inflight_requests"
    assert pods["pods"]["target"] == {"type": "AverageValue", "averageValue": "32"}
    assert cpu["resource"]["name"] == "cpu"


def test_service_and_pdb_select_the_deployments_pods(prod: Evaluation) -> None:
    deployment = one(prod, "kubernetes:apps/v1:Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    service = one(prod, "kubernetes:core/v1:Service")
    assert service["spec"]["selector"] == labels
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    pdb = one(prod, "kubernetes:policy/v1:PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == labels
    namespaces = {manifest(o)["metadata"].get("namespace") for o in kubernetes_objects(prod)}
    assert namespaces == {None, "inferstack-prod-digits"}  # None: the Namespace itself


def test_pods_assume_their_own_role_through_the_service_account(prod: Evaluation) -> None:
    account = one(prod, "kubernetes:core/v1:ServiceAccount")
    role = prod.named("inferstack-prod-digits-podrole")
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": role.outputs["arn"]}
    assert account["automountServiceAccountToken"] is False
    deployment = one(prod, "kubernetes:apps/v1:Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "digits"
