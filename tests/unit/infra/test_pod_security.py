"""The GPU Deployment's pods meet the Pod Security Standards' "restricted" profile.

A namespace labelled `pod-security.kubernetes.io/enforce: restricted` (as the endpoint's
own is) admits only such pods. Each check below is one control of the profile as
https://kubernetes.io/docs/concepts/security/pod-security-standards/ lists it for
Kubernetes 1.31 (the baseline controls, which "restricted" includes, then its own), named
as the Pod Security admission controller names it, so a failure names the rule broken.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from infra.evaluate import Evaluation
from tests.support.kubernetes import one

Pod = dict[str, Any]
Check = Callable[[Pod, dict[str, str]], Iterator[str]]

BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
SELINUX_TYPES = {"container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SECCOMP_TYPES = {"RuntimeDefault", "Localhost"}


def containers(pod: Pod) -> Iterator[tuple[str, dict[str, Any]]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in pod.get(field, []):
            yield f"{field}[{container['name']}]", container


def pod_context(pod: Pod) -> dict[str, Any]:
    context: dict[str, Any] = pod.get("securityContext", {})
    return context


def contexts(pod: Pod) -> Iterator[tuple[str, dict[str, Any]]]:
    """The pod's security context, then each container's."""
    yield "spec.securityContext", pod_context(pod)
    for where, container in containers(pod):
        yield f"{where}.securityContext", container.get("securityContext", {})


def host_process(pod: Pod, annotations: dict[str, str]) -> Iterator[str]:
    for where, context in contexts(pod):
        if context.get("windowsOptions", {}).get("hostProcess"):
            yield f"{where}.windowsOptions.hostProcess is true"


def host_namespaces(pod: Pod, annotations: dict[str, str]) -> Iterator[str]:
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            yield f"spec.{field} is true"


def privileged(pod: Pod, annotations: dict[str, str]) -> Iterator[str]:
    for where, context in contexts(pod):
        if context.get("privileged"):
            yield f"{where}.privileged is true"


def capabilities_baseline(pod: Pod, annotations: dict[str, str]) -> Iterator[str]:
    for where, container in containers(pod):
        added = container.get("securityContext", {}).get("capabilities", {}).get("add", [])
        if extra := set(added) - BASELINE_CAPABILITIES:
            yield f"{where} adds {sorted(extra)}"


def host_path_volumes(pod: Pod, annotations: dict[str, str]) -> Iterator[str]:
    for volume in pod.get("volumes", []):
        if "hostPath" in volume:
            yield f"volume {volume['name']} is a hostPath"


def host_ports(pod: Pod, annotations: dict[str, str]) -> Iterator[str]:
    for where, container in containers(pod):
        for port in container.get("ports", []):
            if port.get("hostPort", 0) != 0:
                yield f"{where} binds host port {port['hostPort']}"


def app_armor_profile(pod: Pod, annotations: dict[str, str]) -> Iterator[str]:
    for where, context in contexts(pod):
        profile = context.get("appArmorProfile", {}).get("type")
        if profile is not None and profile not in SECCOMP_TYPES:
            yield f"{where}.appArmorProfile.type is {profile}"
    prefix = "container.apparmor.security.beta.kubernetes.io/"
    for key, value in annotations.items():
        if key.startswith(prefix) and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            yield f"annotation {key} is {value}"


def se_linux_options(pod: Pod, annotations: dict[str, str]) -> Iterator[str]:
    for where, context in contexts(pod):
        options = context.get("seLinuxOptions", {})
        if options.get("type", "") not in {"", *SELINUX_TYPES}:
            yield f"{where}.seLinuxOptions.type is {options['type']}"
        for field in ("user", "role"):
            if options.get(field):
                yield f"{where}.seLinuxOptions.{field} is set"


def proc_mount(pod: Pod, annotations: dict[str, str]) -> Iterator[str]:
    for where, container in containers(pod):
        mount = container.get("securityContext", {}).get("procMount", "Default")
        if mount != "Default":
            yield f"{where}.securityContext.procMount is {mount}"


def seccomp_profile_baseline(pod: Pod, annotations: dict[str, str]) -> Iterator[str]:
    for where, context in contexts(pod):
        if context.get("seccompProfile", {}).get("type") == "Unconfined":
            yield f"{where}.seccompProfile.type is Unconfined"


def sysctls(pod: Pod, annotations: dict[str, str]) -> Iterator[str]:
    for sysctl in pod_context(pod).get("sysctls", []):
        if sysctl["name"] not in SAFE_SYSCTLS:
            yield f"sysctl {sysctl['name']} is not in the safe set"


def restricted_volumes(pod: Pod, annotations: dict[str, str]) -> Iterator[str]:
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            yield f"volume {volume['name']} is of type {sorted(kinds)}"


def allow_privilege_escalation(pod: Pod, annotations: dict[str, str]) -> Iterator[str]:
    for where, container in containers(pod):
        # Must be set to false: unset allows escalation (no_new_privs is not applied).
        if container.get("securityContext", {}).get("allowPrivilegeEscalation") is not False:
            yield f"{where}.securityContext.allowPrivilegeEscalation is not false"


def run_as_non_root(pod: Pod, annotations: dict[str, str]) -> Iterator[str]:
    pod_level = pod_context(pod).get("runAsNonRoot")
    if pod_level is False:
        yield "spec.securityContext.runAsNonRoot is false"
    for where, container in containers(pod):
        container_level = container.get("securityContext", {}).get("runAsNonRoot")
        if container_level is False:
            yield f"{where}.securityContext.runAsNonRoot is false"
        elif container_level is None and pod_level is not True:
            yield f"{where}: runAsNonRoot is set neither on it nor on the pod"


def run_as_user(pod: Pod, annotations: dict[str, str]) -> Iterator[str]:
    for where, context in contexts(pod):
        if context.get("runAsUser") == 0:
            yield f"{where}.runAsUser is 0"


def seccomp_profile_restricted(pod: Pod, annotations: dict[str, str]) -> Iterator[str]:
    pod_level = pod_context(pod).get("seccompProfile", {}).get("type")
    for where, container in containers(pod):
        profile = container.get("securityContext", {}).get("seccompProfile", {}).get("type")
        effective = profile or pod_level
        if effective not in SECCOMP_TYPES:
            yield f"{where}: seccompProfile.type is {effective}, not RuntimeDefault or Localhost"


def capabilities_restricted(pod: Pod, annotations: dict[str, str]) -> Iterator[str]:
    for where, container in containers(pod):
        capabilities = container.get("securityContext", {}).get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            yield f"{where} does not drop ALL capabilities"
        if extra := set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            yield f"{where} adds {sorted(extra)}"


RESTRICTED: dict[str, Check] = {
    # Baseline.
    "hostProcess": host_process,
    "hostNamespaces": host_namespaces,
    "privileged": privileged,
    "capabilities_baseline": capabilities_baseline,
    "hostPathVolumes": host_path_volumes,
    "hostPorts": host_ports,
    "appArmorProfile": app_armor_profile,
    "seLinuxOptions": se_linux_options,
    "procMount": proc_mount,
    "seccompProfile_baseline": seccomp_profile_baseline,
    "sysctls": sysctls,
    # Restricted.
    "restrictedVolumes": restricted_volumes,
    "allowPrivilegeEscalation": allow_privilege_escalation,
    "runAsNonRoot": run_as_non_root,
    "runAsUser": run_as_user,
    "seccompProfile_restricted": seccomp_profile_restricted,
    "capabilities_restricted": capabilities_restricted,
}


def violations(template: dict[str, Any]) -> dict[str, list[str]]:
    """Each broken rule of the profile, with what breaks it, for one pod template."""
    annotations = template.get("metadata", {}).get("annotations", {})
    found = {rule: list(check(template["spec"], annotations)) for rule, check in RESTRICTED.items()}
    return {rule: details for rule, details in found.items() if details}


@pytest.fixture(scope="module")
def template(evaluations: dict[str, Evaluation]) -> dict[str, Any]:
    deployment = one(evaluations["prod"], "kubernetes:apps/v1:Deployment")
    pod_template: dict[str, Any] = deployment["spec"]["template"]
    return pod_template


def test_the_gpu_pods_meet_pod_security_restricted(template: dict[str, Any]) -> None:
    assert violations(template) == {}


def _container(template: dict[str, Any]) -> dict[str, Any]:
    (container,) = template["spec"]["containers"]
    context: dict[str, Any] = container["securityContext"]
    return context


# Each rule, broken once: the check catches it, and names only that rule.
BREACHES: list[tuple[set[str], Callable[[dict[str, Any]], None]]] = [
    (
        {"hostProcess"},
        lambda t: _container(t).update(windowsOptions={"hostProcess": True}),
    ),
    ({"hostNamespaces"}, lambda t: t["spec"].update(hostNetwork=True)),
    ({"hostNamespaces"}, lambda t: t["spec"].update(hostPID=True)),
    ({"hostNamespaces"}, lambda t: t["spec"].update(hostIPC=True)),
    ({"privileged"}, lambda t: _container(t).update(privileged=True)),
    (
        {"capabilities_baseline", "capabilities_restricted"},
        lambda t: _container(t)["capabilities"].update(add=["SYS_ADMIN"]),
    ),
    ({"capabilities_restricted"}, lambda t: _container(t)["capabilities"].update(add=["CHOWN"])),
    ({"capabilities_restricted"}, lambda t: _container(t)["capabilities"].update(drop=["NET_RAW"])),
    (
        {"hostPathVolumes", "restrictedVolumes"},
        lambda t: t["spec"].update(volumes=[{"name": "host", "hostPath": {"path": "/"}}]),
    ),
    (
        {"restrictedVolumes"},
        lambda t: t["spec"].update(volumes=[{"name": "nfs", "nfs": {"server": "a", "path": "/"}}]),
    ),
    ({"hostPorts"}, lambda t: t["spec"]["containers"][0]["ports"][0].update(hostPort=8080)),
    (
        {"appArmorProfile"},
        lambda t: _container(t).update(appArmorProfile={"type": "Unconfined"}),
    ),
    (
        {"appArmorProfile"},
        lambda t: t["metadata"]["annotations"].update(
            {"container.apparmor.security.beta.kubernetes.io/server": "unconfined"}
        ),
    ),
    ({"seLinuxOptions"}, lambda t: _container(t).update(seLinuxOptions={"type": "spc_t"})),
    ({"seLinuxOptions"}, lambda t: _container(t).update(seLinuxOptions={"user": "root"})),
    ({"procMount"}, lambda t: _container(t).update(procMount="Unmasked")),
    (
        {"seccompProfile_baseline", "seccompProfile_restricted"},
        lambda t: t["spec"]["securityContext"].update(seccompProfile={"type": "Unconfined"}),
    ),
    ({"seccompProfile_restricted"}, lambda t: t["spec"]["securityContext"].pop("seccompProfile")),
    (
        {"sysctls"},
        lambda t: t["spec"]["securityContext"].update(
            sysctls=[{"name": "kernel.msgmax", "value": "65536"}]
        ),
    ),
    ({"allowPrivilegeEscalation"}, lambda t: _container(t).pop("allowPrivilegeEscalation")),
    ({"runAsNonRoot"}, lambda t: t["spec"]["securityContext"].pop("runAsNonRoot")),
    ({"runAsNonRoot"}, lambda t: _container(t).update(runAsNonRoot=False)),
    ({"runAsUser"}, lambda t: _container(t).update(runAsUser=0)),
]


@pytest.mark.parametrize(("rules", "breach"), BREACHES)
def test_each_rule_catches_its_breach(
    template: dict[str, Any], rules: set[str], breach: Callable[[dict[str, Any]], None]
) -> None:
    broken = copy.deepcopy(template)
    breach(broken)
    assert set(violations(broken)) == rules


def test_every_rule_is_shown_to_catch_a_breach() -> None:
    assert set().union(*(rules for rules, _ in BREACHES)) == set(RESTRICTED)
