"""Kubernetes objects rendered by `GpuEndpoint`, validated against Kubernetes' own schemas.

The prod program runs under Pulumi's mock runtime (`pulumi.runtime.set_mocks`); each
registered Kubernetes resource's inputs are the manifest pulumi-kubernetes would apply.
`kubernetes-validate` checks them offline against the upstream OpenAPI schemas of a
pinned Kubernetes version, in strict mode (unknown fields are errors). It ships no schema
for custom resources: the PodMonitor is checked field by field against the pods and
Service it must match.
"""

from __future__ import annotations

from collections.abc import Callable

import kubernetes_validate
import kubernetes_validate.utils
import pytest

from infra.evaluate import Evaluation
from infra.gpu_endpoint import MODEL_VERSION_LABEL
from infra.stack_loader import load_stack
from stacks.schema import GpuConfig, KubernetesConfig, StackConfig
from tests.support.kubernetes import kubernetes_objects, manifest, one

KUBERNETES_VERSION = "1.31.0"
# Custom resources: kubernetes-validate ships no schema for them (checked field by field).
CUSTOM_KINDS = {"PodMonitor", "TargetGroupBinding"}


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
        *CUSTOM_KINDS,
    }
    for resource in objects:
        if resource.inputs["kind"] not in CUSTOM_KINDS:
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
    # No node selector by default: the GPU request alone places the pods on nodes whose
    # device plugin advertises GPUs (a label such as GFD's is not on a plain EKS node).
    assert "nodeSelector" not in pod
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["ports"] == [{"name": "http", "containerPort": 8080}]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["MODEL_URI"] == prod.outputs["modelUris"]["digits-gpu"]
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
        "name": "digits-gpu",
    }
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 8)
    pods, cpu = spec["metrics"]
    assert pods["type"] == "Pods"
    assert pods["pods"]["metric"]["name"] == "inferstack_inflight_requests"
    assert pods["pods"]["target"] == {"type": "AverageValue", "averageValue": "32"}
    assert cpu["resource"]["name"] == "cpu"


def test_service_and_pdb_select_the_deployments_pods(prod: Evaluation) -> None:
    deployment = one(prod, "kubernetes:apps/v1:Deployment")
    labels = deployment["spec"]["selector"]["matchLabels"]
    # The pods also carry the model version, outside the (immutable) selector.
    assert deployment["spec"]["template"]["metadata"]["labels"] == {
        **labels,
        MODEL_VERSION_LABEL: "1",
    }
    assert deployment["metadata"]["labels"][MODEL_VERSION_LABEL] == "1"
    service = one(prod, "kubernetes:core/v1:Service")
    assert service["spec"]["selector"] == labels
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    pdb = one(prod, "kubernetes:policy/v1:PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == labels
    namespaces = {manifest(o)["metadata"].get("namespace") for o in kubernetes_objects(prod)}
    assert namespaces == {None, "inferstack-prod-digits-gpu"}  # None: the Namespace itself


def test_pods_assume_their_own_role_through_the_service_account(prod: Evaluation) -> None:
    account = one(prod, "kubernetes:core/v1:ServiceAccount")
    role = prod.named("inferstack-prod-digits-gpu-podrole")
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": role.outputs["arn"]}
    assert account["automountServiceAccountToken"] is False
    deployment = one(prod, "kubernetes:apps/v1:Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "digits-gpu"


@pytest.fixture(scope="module")
def variant(run_program: Callable[[StackConfig, str], Evaluation]) -> Evaluation:
    """prod with a node selector on its GPU model and no PodMonitor."""
    config = load_stack("prod")
    assert config.kubernetes is not None

    def with_selector(gpu: GpuConfig | None) -> GpuConfig | None:
        if gpu is None:
            return None
        return gpu.model_copy(update={"node_selector": {"eks.amazonaws.com/nodegroup": "gpu"}})

    models = [m.model_copy(update={"gpu": with_selector(m.gpu)}) for m in config.models]
    kubernetes = config.kubernetes.model_copy(update={"pod_monitor": None})
    return run_program(
        config.model_copy(update={"models": models, "kubernetes": kubernetes}), "prod"
    )


def test_a_configured_node_selector_reaches_the_pods(variant: Evaluation) -> None:
    deployment = one(variant, "kubernetes:apps/v1:Deployment")
    assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {
        "eks.amazonaws.com/nodegroup": "gpu"
    }


def test_no_pod_monitor_unless_asked(variant: Evaluation) -> None:
    assert KubernetesConfig(context="c").pod_monitor is None
    assert not [o for o in kubernetes_objects(variant) if o.inputs["kind"] == "PodMonitor"]


def test_pod_monitor_scrapes_the_pods_metrics_port_and_path(prod: Evaluation) -> None:
    monitor = one(prod, "kubernetes:monitoring.coreos.com/v1:PodMonitor")
    deployment = one(prod, "kubernetes:apps/v1:Deployment")
    template = deployment["spec"]["template"]
    (container,) = template["spec"]["containers"]
    service = one(prod, "kubernetes:core/v1:Service")
    config = load_stack("prod").kubernetes
    assert config is not None and config.pod_monitor is not None

    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "PodMonitor")
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
    # In the pods' namespace: a PodMonitor without namespaceSelector selects only there.
    assert monitor["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert set(monitor["spec"]) == {"selector", "podMetricsEndpoints"}
    # What the Prometheus resource's podMonitorSelector matches (kube-prometheus-stack:
    # its Helm release).
    assert config.pod_monitor.labels == {"release": "kube-prometheus-stack"}
    assert monitor["metadata"]["labels"].items() >= config.pod_monitor.labels.items()
    # The Deployment's pods, as the Service selects them.
    selected = deployment["spec"]["selector"]["matchLabels"]
    assert template["metadata"]["labels"].items() >= selected.items()
    assert monitor["spec"]["selector"] == {"matchLabels": selected}
    assert service["spec"]["selector"] == selected
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert set(endpoint) == {"port", "path", "interval"}
    # `port` names a container port: the one the Service targets and the server listens on.
    assert (
        endpoint["port"]
        == container["ports"][0]["name"]
        == service["spec"]["ports"][0]["targetPort"]
    )
    env = {item["name"]: item["value"] for item in container["env"]}
    assert container["ports"][0]["containerPort"] == int(env["INFERSTACK_PORT"])
    # The model server's metrics route (model_runtime/server.py), as the annotations say.
    assert endpoint["path"] == template["metadata"]["annotations"]["prometheus.io/path"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "15s"


def test_the_namespace_enforces_pod_security_restricted(prod: Evaluation) -> None:
    namespace = one(prod, "kubernetes:core/v1:Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_namespace_asks_the_load_balancer_controller_for_readiness_gates(
    prod: Evaluation,
) -> None:
    """The controller injects a target-health readiness gate into pods of namespaces with
    this label (its docs: deploy/pod_readiness_gate; IP targets only, as ours are)."""
    labels = one(prod, "kubernetes:core/v1:Namespace")["metadata"]["labels"]
    assert labels["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"
