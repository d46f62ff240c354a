"""The AWS side of the GPU-served models' route: `GpuNetwork` declares the internal Network
Load Balancer, its security group and rules, the VPC link, and per model a target group,
a listener and a TargetGroupBinding, with least privilege.

The components run under Pulumi's mock runtime (`pulumi.runtime.set_mocks`, through
`infra.evaluate`), beside the `GpuEndpoint`s whose Services they bind, as the program
declares them. The Kubernetes objects pass kubernetes-validate (strict); the
TargetGroupBinding, a custom resource it has no schema for, is validated against the
CRD's published schema, copied below.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from infra.errors import StackConfigError
from infra.evaluate import Evaluation, Registered, evaluate
from infra.gpu_endpoint import PORT, GpuEndpoint, GpuEndpointArgs
from infra.gpu_network import (
    LISTENER_PORTS,
    GpuNetwork,
    GpuNetworkArgs,
    GpuTarget,
    listener_port,
)
from stacks.schema import ClusterNetwork, GpuConfig
from tests.support.kubernetes import kubernetes_objects, manifest

KUBERNETES_VERSION = "1.31.0"
NETWORK = ClusterNetwork(
    vpc_id="vpc-0123456789abcdef0",
    subnet_ids=["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    cluster_security_group_id="sg-0fedcba9876543210",
)
GPU = GpuConfig(image="registry.example/inferstack-gpu:0.1.0", termination_grace_s=90)
MODELS = ("digits-gpu", "minilm-gpu")
COMPONENT = "inferstack-t-gpu"
LB = "aws:lb/loadBalancer:LoadBalancer"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
LISTENER = "aws:lb/listener:Listener"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
VPC_LINK = "aws:apigateway/vpcLink:VpcLink"
BINDING = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"

# The TargetGroupBinding's schema, as published by the AWS Load Balancer Controller:
# kubernetes-sigs/aws-load-balancer-controller, config/crd/bases/
# elbv2.k8s.aws_targetgroupbindings.yaml (version v1beta1, its openAPIV3Schema), the
# properties of `spec` that every release since v2.0 has: `serviceRef` {name: string,
# port: int-or-string} and `targetGroupARN` (string, minLength 1) required, `targetType`
# an enum of instance and ip. `networking`, `nodeSelector`, `ipAddressType` and the later
# ones are optional and not used here: left out, so that any field the program sets
# beyond these is reported (the API server would silently prune an unknown one).
BINDING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "elbv2.k8s.aws/v1beta1"},
        "kind": {"const": "TargetGroupBinding"},
        "metadata": {"type": "object", "required": ["name", "namespace"]},
        "spec": {
            "type": "object",
            "required": ["serviceRef", "targetGroupARN"],
            "additionalProperties": False,
            "properties": {
                "serviceRef": {
                    "type": "object",
                    "required": ["name", "port"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string"},
                        "port": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
                    },
                },
                "targetGroupARN": {"type": "string", "minLength": 1},
                "targetType": {"enum": ["instance", "ip"]},
            },
        },
    },
}
# What EC2 accepts in a security group's or rule's description.
EC2_DESCRIPTION = re.compile(r"^[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]{0,255}$")


def program(
    models: tuple[str, ...] = MODELS, component: str = COMPONENT
) -> Callable[[], dict[str, Any]]:
    def declare() -> dict[str, Any]:
        targets = []
        for model in models:
            endpoint = GpuEndpoint(
                f"inferstack-t-{model}",
                GpuEndpointArgs(
                    model=model,
                    config=GPU,
                    namespace=f"inferstack-t-{model}",
                    model_uri=f"s3://bucket/models/{model}/",
                    region="us-east-1",
                ),
            )
            targets.append(
                GpuTarget(
                    model=model,
                    namespace=endpoint.service.metadata.namespace,
                    service_name=endpoint.service.metadata.name,
                    termination_grace_s=GPU.termination_grace_s,
                )
            )
        network = GpuNetwork(component, GpuNetworkArgs(network=NETWORK, targets=targets))
        return {"baseUrls": network.base_urls, "vpcLinkId": network.vpc_link_id}

    return declare


@pytest.fixture(scope="module")
def declared() -> Evaluation:
    return evaluate(program(), "t")


def only(evaluation: Evaluation, type_: str) -> Registered:
    (resource,) = evaluation.of_type(type_)
    return resource


def of_model(evaluation: Evaluation, type_: str, model: str) -> Registered:
    (resource,) = [r for r in evaluation.of_type(type_) if model in r.name]
    return resource


# --- the load balancer and the VPC link ---------------------------------------------


def test_one_internal_network_load_balancer_in_the_clusters_subnets(declared: Evaluation) -> None:
    balancer = only(declared, LB).inputs
    group = only(declared, SECURITY_GROUP)
    assert balancer["loadBalancerType"] == "network"
    assert balancer["internal"] is True
    assert balancer["subnets"] == NETWORK.subnet_ids
    assert balancer["securityGroups"] == [group.id]
    # PrivateLink (the VPC link's) traffic passes the group without an inbound rule.
    assert balancer["enforceSecurityGroupInboundRulesOnPrivateLinkTraffic"] == "off"


def test_the_vpc_link_targets_the_load_balancer(declared: Evaluation) -> None:
    balancer = only(declared, LB)
    link = only(declared, VPC_LINK)
    assert link.inputs["targetArn"] == balancer.outputs["arn"]
    assert declared.outputs["vpcLinkId"] == link.id


def test_each_models_base_url_is_its_listener_on_the_load_balancer(declared: Evaluation) -> None:
    dns = only(declared, LB).outputs["dnsName"]
    assert declared.outputs["baseUrls"] == {
        model: f"http://{dns}:{listener_port(model)}" for model in MODELS
    }


# --- security groups: only the load balancer reaches the pods, only on their port ----


def test_the_load_balancers_group_lets_nothing_in_and_only_the_pods_port_out(
    declared: Evaluation,
) -> None:
    group = only(declared, SECURITY_GROUP)
    assert group.inputs["vpcId"] == NETWORK.vpc_id
    # No inline rules: the provider removes AWS's default allow-all egress, and the rule
    # resources are the group's only rules.
    assert not group.inputs.get("ingress") and not group.inputs.get("egress")
    assert not [r for r in declared.of_type(INGRESS) if r.inputs["securityGroupId"] == group.id]
    (egress,) = declared.of_type(EGRESS)
    assert egress.inputs == {
        "securityGroupId": group.id,
        "referencedSecurityGroupId": NETWORK.cluster_security_group_id,
        "ipProtocol": "tcp",
        "fromPort": PORT,
        "toPort": PORT,
        "description": egress.inputs["description"],
    }


def test_the_cluster_admits_the_load_balancer_on_the_server_port_only(
    declared: Evaluation,
) -> None:
    group = only(declared, SECURITY_GROUP)
    (ingress,) = declared.of_type(INGRESS)
    assert ingress.inputs == {
        "securityGroupId": NETWORK.cluster_security_group_id,
        "referencedSecurityGroupId": group.id,
        "ipProtocol": "tcp",
        "fromPort": PORT,
        "toPort": PORT,
        "description": ingress.inputs["description"],
    }


def test_no_address_range_is_opened_anywhere(declared: Evaluation) -> None:
    for rule in (*declared.of_type(INGRESS), *declared.of_type(EGRESS)):
        assert not {"cidrIpv4", "cidrIpv6", "prefixListId"} & set(rule.inputs)
    for resource in declared.resources:
        text = json.dumps(resource.inputs)
        assert "0.0.0.0/0" not in text and "::/0" not in text, resource.name


def test_descriptions_are_ones_ec2_accepts(declared: Evaluation) -> None:
    for type_ in (SECURITY_GROUP, INGRESS, EGRESS):
        for resource in declared.of_type(type_):
            assert EC2_DESCRIPTION.match(resource.inputs["description"]), resource.name


# --- per model: target group, listener -----------------------------------------------


def test_each_model_has_an_ip_target_group_health_checked_on_readiness(
    declared: Evaluation,
) -> None:
    groups = declared.of_type(TARGET_GROUP)
    assert len(groups) == len(MODELS)
    for group in groups:
        assert group.inputs["targetType"] == "ip"
        assert (group.inputs["protocol"], group.inputs["port"]) == ("TCP", PORT)
        assert group.inputs["vpcId"] == NETWORK.vpc_id
        assert group.inputs["preserveClientIp"] == "false"
        # A terminating pod is drained for as long as it is given to finish.
        assert group.inputs["deregistrationDelay"] == GPU.termination_grace_s
        assert group.inputs["healthCheck"] == {
            "protocol": "HTTP",
            "path": "/v2/health/ready",
            # The server's port, which the load balancer's one egress rule allows.
            "port": "traffic-port",
            "matcher": "200",
            "interval": 10,
            "timeout": 5,
            "healthyThreshold": 2,
            "unhealthyThreshold": 2,
        }


def test_each_listener_forwards_its_models_port_to_its_target_group(
    declared: Evaluation,
) -> None:
    balancer = only(declared, LB)
    ports = set()
    for model in MODELS:
        listener = of_model(declared, LISTENER, model).inputs
        group = of_model(declared, TARGET_GROUP, model)
        assert listener["loadBalancerArn"] == balancer.outputs["arn"]
        assert (listener["protocol"], listener["port"]) == ("TCP", listener_port(model))
        assert listener["defaultActions"] == [
            {"type": "forward", "targetGroupArn": group.outputs["arn"]}
        ]
        ports.add(listener["port"])
    assert len(ports) == len(MODELS)


def test_listener_ports_are_stable_and_in_range() -> None:
    for model in ("digits-gpu", "a", "x" * 24):
        port = listener_port(model)
        assert port in LISTENER_PORTS
        digest = hashlib.sha256(model.encode()).digest()
        assert port == 20000 + int.from_bytes(digest[:4], "big") % 10000


def test_two_models_on_one_port_are_refused_naming_both() -> None:
    seen: dict[int, str] = {}
    for index in itertools.count():
        name = f"m{index}"
        port = listener_port(name)
        if port in seen:
            first, second = seen[port], name
            break
        seen[port] = name
    with pytest.raises(StackConfigError) as caught:
        evaluate(program((first, second)), "t")
    message = str(caught.value)
    assert f"models {first!r} and {second!r} both get load balancer port {port}" in message
    assert "rename one of them" in message


def test_load_balancer_and_target_group_names_fit_aws_limits() -> None:
    """32 characters, with the 8 Pulumi's auto-naming appends."""
    long_model = "a-model-name-of-24-chars"
    evaluation = evaluate(program((long_model, "b"), "inferstack-stack-name-12-gpu"), "t")
    names = [r.name for r in (*evaluation.of_type(LB), *evaluation.of_type(TARGET_GROUP))]
    assert len(names) == 3 and len(set(names)) == 3
    for name in names:
        assert len(name) + 8 <= 32, name
        assert re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?", name), name


def test_every_resource_is_a_child_of_the_component(declared: Evaluation) -> None:
    (component,) = declared.of_type("inferstack:index:GpuNetwork")
    children = declared.children(component)
    assert {r.type for r in children} == {
        LB,
        TARGET_GROUP,
        LISTENER,
        SECURITY_GROUP,
        INGRESS,
        EGRESS,
        VPC_LINK,
        BINDING,
    }
    assert len(children) == 5 + 3 * len(MODELS)


# --- the TargetGroupBinding and the other Kubernetes objects --------------------------


def test_each_binding_matches_the_crds_schema_and_binds_its_models_service(
    declared: Evaluation,
) -> None:
    for model in MODELS:
        binding = manifest(of_model(declared, BINDING, model))
        jsonschema.validate(binding, BINDING_SCHEMA)
        service = manifest(
            next(
                r
                for r in declared.of_type("kubernetes:core/v1:Service")
                if r.inputs["metadata"]["name"] == model
            )
        )
        group = of_model(declared, TARGET_GROUP, model)
        # In the Service's namespace (a binding refers to a Service of its own namespace).
        assert binding["metadata"]["namespace"] == service["metadata"]["namespace"]
        assert binding["spec"]["serviceRef"] == {
            "name": service["metadata"]["name"],
            "port": service["spec"]["ports"][0]["port"],
        }
        assert binding["spec"]["targetGroupARN"] == group.outputs["arn"]
        assert binding["spec"]["targetType"] == group.inputs["targetType"] == "ip"
        # No `networking`: the security-group rules are Pulumi's, not the controller's.
        assert "networking" not in binding["spec"]


@pytest.mark.parametrize(
    "breach",
    [
        {"targetType": "pod"},
        {"serviceRef": {"name": "digits-gpu"}},
        {"targetGroupARN": ""},
        {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/x/y"},
    ],
    ids=["target-type", "no-port", "empty-arn", "misspelt-field"],
)
def test_the_schema_check_would_catch_a_malformed_binding(
    declared: Evaluation, breach: dict[str, Any]
) -> None:
    binding = manifest(of_model(declared, BINDING, MODELS[0]))
    binding["spec"].update(breach)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(binding, BINDING_SCHEMA)


def test_the_other_kubernetes_objects_validate_against_the_pinned_schema(
    declared: Evaluation,
) -> None:
    objects = [o for o in kubernetes_objects(declared) if o.type != BINDING]
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
