"""Every IAM document every stack declares, linted by parliament (Duo Labs' IAM linter).

Role policies, trust policies, the bucket policy, and any other input that holds a policy
document (a KMS key policy, a REST API policy, should a stack declare one) are found by
content, so none goes unlinted. parliament checks each action exists, that its resources
are of a type the action applies to, conditions and their operators, and (with its
community auditors) privilege escalation and credential exposure, from the IAM definitions
its wheel ships: offline, like every unit test.

Each finding fails the test unless ALLOWED (or, for trust policies, IN_EVERY_TRUST_POLICY)
explains it.
"""

from __future__ import annotations

import importlib.resources
import json
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from infra.evaluate import Evaluation, Registered


def _import_parliament() -> types.ModuleType:
    # parliament 1.6 locates its bundled data files through pkg_resources, which
    # setuptools 82 dropped, and whose import puts setuptools' vendored distributions on
    # sys.path (so the environment's pins, and every runtime layer's key, would change
    # mid-session). It needs one function of it, for its import only.
    shim = types.ModuleType("pkg_resources")
    shim.resource_filename = lambda package, name: str(  # type: ignore[attr-defined]
        importlib.resources.files(package) / name
    )
    saved = sys.modules.get("pkg_resources")
    sys.modules["pkg_resources"] = shim
    try:
        import parliament
    finally:
        if saved is None:
            del sys.modules["pkg_resources"]
        else:
            sys.modules["pkg_resources"] = saved
    return parliament


parliament = _import_parliament()

# (stack, resource, parliament's issue) -> why the finding is not a defect.
ALLOWED: dict[tuple[str, str, str], str] = {
    ("prod", "inferstack-prod-digits-gpu-podrole", "UNKNOWN_FEDERATION_SOURCE"): (
        "parliament 1.6 knows SAML providers and four public web identity providers as "
        "federated principals, not IAM OIDC providers: an EKS cluster's "
        "arn:aws:iam::<account>:oidc-provider/<issuer> is the principal AWS documents "
        "for IRSA"
    ),
    ("prod", "inferstack-prod-digits-gpu-podrole", "UNKNOWN_CONDITION_FOR_ACTION"): (
        "`<issuer>:sub` and `<issuer>:aud` are the condition keys IAM gives each OIDC "
        "provider, named after its issuer (here the EKS cluster's): parliament's IAM "
        "definitions list only the fixed keys of sts:AssumeRoleWithWebIdentity"
    ),
}
# parliament's issue -> why every trust policy, linted as `as_linted` gives it, has it.
IN_EVERY_TRUST_POLICY: dict[str, str] = {
    "CREDENTIALS_EXPOSURE": (
        "the community auditor flags every grant of an action that returns credentials; "
        "sts:AssumeRole* to the role's one service or federated principal is what a "
        "trust policy is for"
    ),
}


def policy_documents(stack: Evaluation) -> Iterator[tuple[Registered, str, dict[str, Any]]]:
    """(resource, input name, document) for every IAM policy document among the inputs."""
    for resource in stack.resources:
        for key, value in resource.inputs.items():
            if not (isinstance(value, str) and value.lstrip().startswith("{")):
                continue
            try:
                document = json.loads(value)
            except ValueError:
                continue
            if isinstance(document, dict) and "Statement" in document:
                yield resource, key, document


def as_linted(resource: Registered, key: str, document: dict[str, Any]) -> dict[str, Any]:
    """The document as parliament reads it. A trust policy is the role's own resource
    policy: IAM forbids it a Resource element (the role is implied), and parliament, made
    for identity policies, checks a statement's actions only against its resources. So
    the role's ARN is written in as the Resource, and `sts:AssumeRole...` are checked
    against the role."""
    if key != "assumeRolePolicy":
        return document
    statements = document["Statement"]
    statements = statements if isinstance(statements, list) else [statements]
    return {
        **document,
        "Statement": [{**s, "Resource": resource.outputs["arn"]} for s in statements],
    }


def lint(document: dict[str, Any]) -> list[Any]:
    policy = parliament.analyze_policy_string(
        json.dumps(document), ignore_private_auditors=True, include_community_auditors=True
    )
    return list(policy.findings)


def test_every_iam_document_lints_clean_or_is_explained(stack: Evaluation) -> None:
    documents = list(policy_documents(stack))
    kinds = {(resource.type, key) for resource, key, _ in documents}
    assert {
        ("aws:iam/role:Role", "assumeRolePolicy"),
        ("aws:iam/rolePolicy:RolePolicy", "policy"),
        ("aws:s3/bucketPolicy:BucketPolicy", "policy"),
    } <= kinds
    found: dict[tuple[str, str, str], str] = {}
    for resource, key, document in documents:
        for finding in lint(as_linted(resource, key, document)):
            if key == "assumeRolePolicy" and finding.issue in IN_EVERY_TRUST_POLICY:
                continue
            found[(stack.stack, resource.name, finding.issue)] = (
                f"{resource.type} {key}: {finding.detail}"
            )
    unexplained = {where: detail for where, detail in found.items() if where not in ALLOWED}
    assert unexplained == {}
    stale = {where for where in ALLOWED if where[0] == stack.stack and where not in found}
    assert stale == set(), "ALLOWED explains findings parliament no longer reports"


@pytest.mark.parametrize(
    ("breach", "issue"),
    [
        # An object action on the bucket itself: no resource of a type it applies to.
        (
            {"Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::inferstack-prod-x"]},
            "RESOURCE_MISMATCH",
        ),
        ({"Action": ["s3:GetObjects"]}, "UNKNOWN_ACTION"),
        ({"Condition": {"IpAddress": {"aws:SourceIp": "inside"}}}, "MISMATCHED_TYPE"),
        ({"Condition": {"StringEquals": {"s3:prefixes": "x"}}}, "UNKNOWN_CONDITION_FOR_ACTION"),
    ],
)
def test_the_linter_catches_a_broken_statement(
    evaluations: dict[str, Evaluation], breach: dict[str, Any], issue: str
) -> None:
    prod = evaluations["prod"]
    document = json.loads(prod.named("inferstack-prod-digits-gpu-podrole-policy").inputs["policy"])
    assert lint(document) == []
    (statement,) = document["Statement"]
    statement.update(breach)
    assert issue in {finding.issue for finding in lint(document)}


def test_trust_policies_are_linted_against_their_role(evaluations: dict[str, Evaluation]) -> None:
    role = evaluations["prod"].named("inferstack-prod-digits-role")
    document = as_linted(role, "assumeRolePolicy", json.loads(role.inputs["assumeRolePolicy"]))
    assert {finding.issue for finding in lint(document)} == set(IN_EVERY_TRUST_POLICY)
    document["Statement"][0]["Action"] = "sts:AssumeRoles"
    assert {finding.issue for finding in lint(document)} == {"UNKNOWN_ACTION"}
