"""A model served by the GPU model server on Kubernetes, scaled on a per-pod metric.

The HPA scales on the server's per-pod gauge (`inferstack_inflight_requests` or
`inferstack_queue_depth`, served on /metrics). The cluster must expose it through the
custom metrics API (e.g. prometheus-adapter); CPU utilization is the second metric, and
the HPA takes the larger of the two proposals, so scaling keeps working (up) on CPU when
the custom metric is missing. Prometheus finds the pods through their `prometheus.io/*`
annotations (annotation-based scrape configs) or, where the cluster runs the Prometheus
Operator (kube-prometheus-stack), through a PodMonitor declared when the stack asks.

The pods meet the Pod Security Standards' "restricted" profile, and their namespace
enforces it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra import policies
from infra.errors import InfraError
from infra.server_env import server_environment
from stacks.schema import GpuConfig, PodMonitorConfig

PORT = 8080
# The container port's name: Services, probes and the PodMonitor refer to it.
PORT_NAME = "http"
METRICS_PATH = "/metrics"
# How often Prometheus scrapes the pods through the PodMonitor: the HPA can see a change
# in load no sooner.
SCRAPE_INTERVAL = "15s"
SERVER_COMMAND = ["python", "-m", "model_runtime.server"]
METRICS = {
    "inflight_requests": "inferstack_inflight_requests",
    "queue_depth": "inferstack_queue_depth",
}
# The image's non-root user (the GPU Dockerfile creates it with this uid).
RUN_AS_USER = 10001
# Pause before SIGTERM, so that Services stop routing to a terminating pod first.
PRE_STOP_S = 5
MODEL_VERSION_LABEL = "inferstack.dev/model-version"
# Kubernetes label values: at most 63 characters, alphanumerics and -_. inside.
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
# Time to pull a CUDA image, download the model and warm up on a fresh GPU node.
STARTUP_BUDGET_S = 600


@dataclass
class PodRole:
    """IRSA: an IAM role the pods' service account assumes to read the model's prefix."""

    oidc_provider_arn: str
    bucket_arn: pulumi.Input[str]
    key_prefix: str
    kms_key_arn: str | None = None


@dataclass
class GpuEndpointArgs:
    model: str
    config: GpuConfig
    namespace: str
    model_uri: pulumi.Input[str]
    region: str
    pod_role: PodRole | None = None
    pod_monitor: PodMonitorConfig | None = None
    # The manifest's model version, a label on the Deployment and its pods (not in the
    # selector, which a Deployment cannot change: a new version rolls the same pods).
    model_version: str | None = None
    # The artifact's manifest name, when the model is served under another (None: the same).
    manifest_name: str | None = None


class GpuEndpoint(pulumi.ComponentResource):
    deployment: k8s.apps.v1.Deployment
    service: k8s.core.v1.Service
    hpa: k8s.autoscaling.v2.HorizontalPodAutoscaler
    pod_monitor: k8s.apiextensions.CustomResource | None
    service_address: pulumi.Output[str]

    def __init__(
        self, name: str, args: GpuEndpointArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("inferstack:index:GpuEndpoint", name, None, opts)
        self._name = name
        self._args = args
        self._labels = {
            "app.kubernetes.io/name": "inferstack-model-server",
            "app.kubernetes.io/instance": args.model,
            "app.kubernetes.io/part-of": "inferstack",
        }
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": args.namespace,
                "labels": {
                    **self._labels,
                    # The API server rejects any pod here that is not "restricted".
                    "pod-security.kubernetes.io/enforce": "restricted",
                    # The AWS Load Balancer Controller gives each pod a readiness gate that
                    # holds until the pod's target is healthy in the target group, so a
                    # rollout never ends old pods before the load balancer has new ones
                    # (registration outlasts a pod's start). Inert without the controller.
                    "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled",
                },
            },
            opts=self._child(),
        )
        self._namespace = namespace.metadata.name
        service_account = self._create_service_account()
        self.deployment = self._create_deployment(service_account)
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=self._metadata(),
            spec={
                "type": "ClusterIP",
                "selector": self._labels,
                "ports": [{"name": PORT_NAME, "port": PORT, "target_port": PORT_NAME}],
            },
            opts=self._child(),
        )
        self.hpa = self._create_hpa()
        self.pod_monitor = None
        if args.pod_monitor is not None:
            self.pod_monitor = self._create_pod_monitor(args.pod_monitor)
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=self._metadata(),
            # One pod at a time during drains; never blocks a drain at min_replicas == 1.
            spec={"max_unavailable": 1, "selector": {"match_labels": self._labels}},
            opts=self._child(),
        )
        # In-cluster address; exposing it outside the cluster (Ingress, LB) is left to users.
        self.service_address = pulumi.Output.concat(
            self.service.metadata.name, ".", self._namespace, f".svc.cluster.local:{PORT}"
        )
        self.register_outputs({"namespace": self._namespace, "service": self.service_address})

    def _child(self, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=depends_on)

    def _metadata(
        self, annotations: dict[str, pulumi.Input[str]] | None = None
    ) -> k8s.meta.v1.ObjectMetaArgsDict:
        metadata: k8s.meta.v1.ObjectMetaArgsDict = {
            "name": self._args.model,
            "namespace": self._namespace,
            "labels": self._labels,
        }
        if annotations:
            metadata["annotations"] = annotations
        return metadata

    def _create_service_account(self) -> k8s.core.v1.ServiceAccount:
        annotations: dict[str, pulumi.Input[str]] = {}
        if self._args.pod_role is not None:
            role = self._create_pod_role(self._args.pod_role)
            annotations["eks.amazonaws.com/role-arn"] = role.arn
        return k8s.core.v1.ServiceAccount(
            f"{self._name}-service-account",
            metadata=self._metadata(annotations),
            # The pods talk to no Kubernetes API: no token in them.
            automount_service_account_token=False,
            opts=self._child(),
        )

    def _create_pod_role(self, pod_role: PodRole) -> aws.iam.Role:
        issuer = pod_role.oidc_provider_arn.split(":oidc-provider/", 1)[1]
        subject = f"system:serviceaccount:{self._args.namespace}:{self._args.model}"
        trust = policies.document(
            {
                "Effect": "Allow",
                "Principal": {"Federated": pod_role.oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {f"{issuer}:sub": subject, f"{issuer}:aud": "sts.amazonaws.com"}
                },
            }
        )
        role = aws.iam.Role(f"{self._name}-podrole", assume_role_policy=trust, opts=self._child())
        statements = [policies.read_prefix(pod_role.bucket_arn, pod_role.key_prefix)]
        if pod_role.kms_key_arn is not None:
            statements.append(policies.allow(["kms:Decrypt"], [pod_role.kms_key_arn]))
        aws.iam.RolePolicy(
            f"{self._name}-podrole-policy",
            role=role.id,
            policy=policies.document(*statements),
            opts=self._child(),
        )
        return role

    def _create_deployment(
        self, service_account: k8s.core.v1.ServiceAccount
    ) -> k8s.apps.v1.Deployment:
        config = self._args.config
        gpus = str(config.gpus_per_replica)
        # Drain within the grace period: minus the pre-stop pause, minus a margin.
        shutdown_s = max(1, config.termination_grace_s - PRE_STOP_S - 5)
        environment = server_environment(
            self._args.model,
            config,
            manifest_name=self._args.manifest_name or self._args.model,
            port=PORT,
            shutdown_timeout_s=shutdown_s,
        )
        container: k8s.core.v1.ContainerArgsDict = {
            "name": "server",
            "image": config.image,
            "command": SERVER_COMMAND,
            "ports": [{"name": PORT_NAME, "container_port": PORT}],
            # The model server's environment contract (model_runtime/server.py).
            "env": [
                {"name": "MODEL_URI", "value": self._args.model_uri},
                {"name": "AWS_REGION", "value": self._args.region},
                *[
                    k8s.core.v1.EnvVarArgsDict(name=name, value=value)
                    for name, value in environment.items()
                ],
            ],
            "resources": {
                "requests": {"cpu": config.cpu, "memory": config.memory, "nvidia.com/gpu": gpus},
                "limits": {"memory": config.memory, "nvidia.com/gpu": gpus},
            },
            "startup_probe": _probe("/v2/health/live", period_s=5, failures=STARTUP_BUDGET_S // 5),
            "readiness_probe": _probe("/v2/health/ready", period_s=5, failures=3),
            "liveness_probe": _probe("/v2/health/live", period_s=10, failures=3),
            # Let endpoints drop the pod before SIGTERM; the server then drains in-flight work.
            "lifecycle": {"pre_stop": {"exec_": {"command": ["sleep", str(PRE_STOP_S)]}}},
            "security_context": {
                "allow_privilege_escalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        }
        pod_spec: k8s.core.v1.PodSpecArgsDict = {
            "service_account_name": service_account.metadata.name,
            "containers": [container],
            "tolerations": [
                {"key": t.key, "operator": t.operator, "value": t.value, "effect": t.effect}
                for t in config.tolerations
            ],
            "termination_grace_period_seconds": config.termination_grace_s,
            "security_context": {
                "run_as_non_root": True,
                "run_as_user": RUN_AS_USER,
                "run_as_group": RUN_AS_USER,
                # "restricted" requires a seccomp profile; the runtime's default suffices.
                "seccomp_profile": {"type": "RuntimeDefault"},
            },
        }
        if config.node_selector:
            pod_spec["node_selector"] = config.node_selector
        labels = dict(self._labels)
        if self._args.model_version is not None:
            labels[MODEL_VERSION_LABEL] = _label_value(self._args.model_version)
        metadata = self._metadata()
        metadata["labels"] = labels
        return k8s.apps.v1.Deployment(
            f"{self._name}-deployment",
            metadata=metadata,
            spec={
                # No `replicas`: the HPA owns the count (a declared one would be reset on
                # every deploy); it raises a new Deployment to min_replicas at once.
                "selector": {"match_labels": self._labels},
                # GPUs are scarce: add one new pod before an old one goes, never fewer.
                "strategy": {
                    "type": "RollingUpdate",
                    "rolling_update": {"max_surge": 1, "max_unavailable": 0},
                },
                "progress_deadline_seconds": STARTUP_BUDGET_S * 2,
                "template": {
                    "metadata": {
                        "labels": labels,
                        "annotations": {
                            "prometheus.io/scrape": "true",
                            "prometheus.io/port": str(PORT),
                            "prometheus.io/path": METRICS_PATH,
                        },
                    },
                    "spec": pod_spec,
                },
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                custom_timeouts=pulumi.CustomTimeouts(create="20m", update="20m"),
            ),
        )

    def _create_hpa(self) -> k8s.autoscaling.v2.HorizontalPodAutoscaler:
        config = self._args.config
        return k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{self._name}-hpa",
            metadata=self._metadata(),
            spec={
                "scale_target_ref": {
                    "api_version": "apps/v1",
                    "kind": "Deployment",
                    "name": self.deployment.metadata.name,
                },
                "min_replicas": config.min_replicas,
                "max_replicas": config.max_replicas,
                "metrics": [
                    {
                        "type": "Pods",
                        "pods": {
                            "metric": {"name": METRICS[config.scale_on]},
                            "target": {
                                "type": "AverageValue",
                                "average_value": str(config.target_per_replica),
                            },
                        },
                    },
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {
                                "type": "Utilization",
                                "average_utilization": config.cpu_target_percent,
                            },
                        },
                    },
                ],
                # GPU pods are slow to start and dear to keep: scale up at once, scale down
                # one pod at a time after five quiet minutes.
                "behavior": {
                    "scale_up": {
                        "stabilization_window_seconds": 0,
                        "policies": [{"type": "Percent", "value": 100, "period_seconds": 60}],
                    },
                    "scale_down": {
                        "stabilization_window_seconds": 300,
                        "policies": [{"type": "Pods", "value": 1, "period_seconds": 120}],
                    },
                },
            },
            opts=self._child(),
        )

    def _create_pod_monitor(self, config: PodMonitorConfig) -> k8s.apiextensions.CustomResource:
        # A custom resource's spec reaches the cluster as written: its keys are camelCase.
        return k8s.apiextensions.CustomResource(
            f"{self._name}-pod-monitor",
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata={
                "name": self._args.model,
                "namespace": self._namespace,
                "labels": {**self._labels, **config.labels},
            },
            spec={
                # Pods in the PodMonitor's own namespace, selected as the Service selects them.
                "selector": {"matchLabels": self._labels},
                "podMetricsEndpoints": [
                    {"port": PORT_NAME, "path": METRICS_PATH, "interval": SCRAPE_INTERVAL}
                ],
            },
            opts=self._child(),
        )


def _probe(path: str, period_s: int, failures: int) -> k8s.core.v1.ProbeArgsDict:
    return {
        "http_get": {"path": path, "port": PORT_NAME},
        "period_seconds": period_s,
        "timeout_seconds": 3,
        "failure_threshold": failures,
    }


def _label_value(version: str) -> str:
    if not _LABEL_VALUE.match(version):
        raise InfraError(
            f"model version {version!r} cannot be a Kubernetes label value (at most 63"
            " characters: letters, digits, '-', '_' and '.', starting and ending with a"
            " letter or digit); rename the version to serve it on a GPU endpoint"
        )
    return version
