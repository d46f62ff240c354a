"""How the stack's REST API reaches its GPU-served models on AWS.

One internal Network Load Balancer and one API Gateway VPC link (V1) per stack; per
model, a TCP listener on a port derived from the model's name and an IP target group
that the AWS Load Balancer Controller fills with the model's ready pods (a
TargetGroupBinding in the model's namespace, bound to its Service). Pulumi owns the load
balancer, target groups, listeners and VPC link, so their ARNs are known to the program
(for the API's integrations, and for `destroy`); the controller only registers pod IPs.

Security groups, least privilege: the load balancer's own group has no inbound rule and
does not apply inbound rules to PrivateLink traffic, so the VPC link is the only way in;
its one outbound rule reaches the cluster's security group on the server's port (the
health checks go out the same way), and the cluster's security group gets one inbound
rule, that port from the load balancer's group. The binding declares no `networking`
block: the controller manages no security-group rule.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.errors import StackConfigError
from infra.gpu_endpoint import PORT
from stacks.schema import ClusterNetwork

# Each GPU-served model's listener port: stable (derived from its name), so that adding or
# removing a model changes no other model's URL.
LISTENER_PORTS = range(20000, 30000)
HEALTH_CHECK_PATH = "/v2/health/ready"
# The AWS Load Balancer Controller's custom resource (its CRD, elbv2.k8s.aws_targetgroupbindings).
BINDING_API_VERSION = "elbv2.k8s.aws/v1beta1"
BINDING_KIND = "TargetGroupBinding"
# Load balancer and target group names: at most 32 characters, and Pulumi's auto-naming
# appends 8 ("-" and 7 random) to the logical name.
_AUTONAMED_MAX = 32 - 8


def listener_port(model: str) -> int:
    digest = hashlib.sha256(model.encode()).digest()
    return LISTENER_PORTS.start + int.from_bytes(digest[:4], "big") % len(LISTENER_PORTS)


@dataclass
class GpuTarget:
    """A GPU-served model: the Service (in its namespace) whose pods serve it."""

    model: str
    namespace: pulumi.Input[str]
    service_name: pulumi.Input[str]
    # The pods' terminationGracePeriodSeconds (gpu.termination_grace_s).
    termination_grace_s: int


@dataclass
class GpuNetworkArgs:
    network: ClusterNetwork
    targets: list[GpuTarget]


class GpuNetwork(pulumi.ComponentResource):
    load_balancer: aws.lb.LoadBalancer
    security_group: aws.ec2.SecurityGroup
    vpc_link: aws.apigateway.VpcLink
    target_groups: dict[str, aws.lb.TargetGroup]
    listeners: dict[str, aws.lb.Listener]
    bindings: dict[str, k8s.apiextensions.CustomResource]
    # Per model: "http://<load balancer DNS name>:<its listener port>", the base URL of its
    # routes through the VPC link (a ServerRoute's base_url).
    base_urls: dict[str, pulumi.Output[str]]
    vpc_link_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: GpuNetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("inferstack:index:GpuNetwork", name, None, opts)
        self._name = name
        self._args = args
        ports = _listener_ports([target.model for target in args.targets])
        self.security_group = self._create_security_groups()
        network = args.network
        self.load_balancer = aws.lb.LoadBalancer(
            _autonamed(f"{name}-nlb", readable=name),
            load_balancer_type="network",
            internal=True,
            subnets=network.subnet_ids,
            # Security groups can only be given to a Network Load Balancer when it is created.
            security_groups=[self.security_group.id],
            # The VPC link's traffic arrives through PrivateLink: with inbound rules not
            # applied to it, it needs none, and nothing else gets in.
            enforce_security_group_inbound_rules_on_private_link_traffic="off",
            # Few GPU pods, maybe all in one zone: every zone's node may send to any of them.
            enable_cross_zone_load_balancing=True,
            opts=self._child(),
        )
        self.vpc_link = aws.apigateway.VpcLink(
            f"{name}-vpc-link",
            description="inferstack: the REST API to its GPU-served models",
            target_arn=self.load_balancer.arn,
            opts=self._child(),
        )
        self.vpc_link_id = self.vpc_link.id
        self.target_groups = {}
        self.listeners = {}
        self.bindings = {}
        self.base_urls = {}
        for target in args.targets:
            self._create_route(target, ports[target.model])
        self.register_outputs(
            {"loadBalancer": self.load_balancer.dns_name, "vpcLinkId": self.vpc_link_id}
        )

    def _child(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self)

    def _create_security_groups(self) -> aws.ec2.SecurityGroup:
        network = self._args.network
        # Declared without inline rules, so the provider removes the allow-all egress rule
        # AWS adds to a new group, and the rule resources below are its only rules.
        group = aws.ec2.SecurityGroup(
            f"{self._name}-nlb-sg",
            vpc_id=network.vpc_id,
            description="inferstack GPU load balancer: in only by the API VPC link, out to pods",
            opts=self._child(),
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-nlb-to-pods",
            security_group_id=group.id,
            referenced_security_group_id=network.cluster_security_group_id,
            ip_protocol="tcp",
            from_port=PORT,
            to_port=PORT,
            description="Requests and health checks to the model server port",
            opts=self._child(),
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{self._name}-pods-from-nlb",
            security_group_id=network.cluster_security_group_id,
            referenced_security_group_id=group.id,
            ip_protocol="tcp",
            from_port=PORT,
            to_port=PORT,
            description="inferstack GPU load balancer to the model server port",
            opts=self._child(),
        )
        return group

    def _create_route(self, target: GpuTarget, port: int) -> None:
        model = target.model
        target_group = aws.lb.TargetGroup(
            _autonamed(f"{self._name}-{model}", readable=model),
            target_type="ip",
            protocol="TCP",
            port=PORT,
            vpc_id=self._args.network.vpc_id,
            # The pods' IPs are registered, so the source the pods see is the load
            # balancer's (the default for IP targets over TCP, stated: the cluster's rule
            # admits the load balancer's group).
            preserve_client_ip="false",
            # A terminating pod serves its in-flight requests for up to its grace period.
            deregistration_delay=target.termination_grace_s,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                protocol="HTTP",
                path=HEALTH_CHECK_PATH,
                port="traffic-port",
                # The server answers 503 until the model is loaded and warm.
                matcher="200",
                interval=10,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=2,
            ),
            opts=self._child(),
        )
        listener = aws.lb.Listener(
            f"{self._name}-{model}-listener",
            load_balancer_arn=self.load_balancer.arn,
            protocol="TCP",
            port=port,
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)
            ],
            opts=self._child(),
        )
        # A custom resource's spec reaches the cluster as written: its keys are camelCase.
        binding = k8s.apiextensions.CustomResource(
            f"{self._name}-{model}-binding",
            api_version=BINDING_API_VERSION,
            kind=BINDING_KIND,
            metadata={
                "name": model,
                "namespace": target.namespace,
                "labels": {
                    "app.kubernetes.io/instance": model,
                    "app.kubernetes.io/part-of": "inferstack",
                },
            },
            spec={
                "serviceRef": {"name": target.service_name, "port": PORT},
                "targetGroupARN": target_group.arn,
                "targetType": "ip",
            },
            opts=self._child(),
        )
        self.target_groups[model] = target_group
        self.listeners[model] = listener
        self.bindings[model] = binding
        self.base_urls[model] = pulumi.Output.concat(
            "http://", self.load_balancer.dns_name, f":{port}"
        )


def _listener_ports(models: list[str]) -> dict[str, int]:
    ports: dict[str, int] = {}
    for model in models:
        port = listener_port(model)
        for other, taken in ports.items():
            if taken == port:
                raise StackConfigError(
                    f"models {other!r} and {model!r} both get load balancer port {port} (derived"
                    " from the model name, so that it stays stable); rename one of them"
                )
        ports[model] = port
    return ports


def _autonamed(name: str, readable: str) -> str:
    """A logical name whose auto-name fits a 32-character AWS name: `name` when short
    enough, else the start of `readable` and a hash of `name` (still unique and stable)."""
    if len(name) <= _AUTONAMED_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{readable[: _AUTONAMED_MAX - 9].strip('-')}-{digest}"
