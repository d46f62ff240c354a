"""Each role's exact permissions, per stack, as files reviewed with the code:
tests/unit/infra/golden/<stack>/<role>.json holds the role's trust policy and the
statements of every policy it has (inline, or attached), so any IAM change shows as a
diff in review.

Statements are sorted, and so is every list in them (IAM reads them as sets); content
hashes in object keys and values Pulumi does not know before `up` are normalised, so a
file changes only when a permission does. After an intended IAM change, regenerate the
files and review their diff:

    INFERSTACK_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/infra/test_iam_golden.py

It writes them and then fails, so that no run (in CI above all) updates them unseen.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import rpc

from infra.evaluate import Evaluation

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("INFERSTACK_UPDATE_GOLDEN") == "1"
DIGEST = re.compile(r"\b[0-9a-f]{64}\b")


def normalised(value: Any) -> Any:
    if isinstance(value, str):
        return DIGEST.sub("<sha256>", value.replace(rpc.UNKNOWN, "<unknown>"))
    if isinstance(value, dict):
        return {key: normalised(item) for key, item in value.items()}
    if isinstance(value, list):
        return sorted((normalised(item) for item in value), key=json.dumps)
    return value


def statements(document: str) -> Any:
    listed = json.loads(document)["Statement"]
    return normalised(listed if isinstance(listed, list) else [listed])


def permissions(stack: Evaluation) -> dict[str, dict[str, Any]]:
    """Role name -> its trust policy, its policies' statements and its managed policies."""
    roles = stack.of_type("aws:iam/role:Role")
    role_names = {role.id: role.name for role in roles}
    managed_documents = {
        policy.outputs["arn"]: (policy.name, policy.inputs["policy"])
        for policy in stack.of_type("aws:iam/policy:Policy")
    }
    found: dict[str, dict[str, Any]] = {}
    for role in roles:
        found[role.name] = {
            "trust": statements(role.inputs["assumeRolePolicy"]),
            "policies": {
                f"inline:{inline['name']}": statements(inline["policy"])
                for inline in role.inputs.get("inlinePolicies", [])
            },
            "managed": [],
        }

    def attach(role_id: str, arn: str) -> None:
        role = found[role_names[role_id]]
        if arn in managed_documents:
            name, document = managed_documents[arn]
            role["policies"][name] = statements(document)
        else:
            role["managed"].append(normalised(arn))

    for role in roles:
        for arn in role.inputs.get("managedPolicyArns", []):
            attach(role.id, arn)
    for attachment in stack.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        attach(attachment.inputs["role"], attachment.inputs["policyArn"])
    for inline in stack.of_type("aws:iam/rolePolicy:RolePolicy"):
        found[role_names[inline.inputs["role"]]]["policies"][inline.name] = statements(
            inline.inputs["policy"]
        )
    for role in found.values():
        role["managed"].sort()
    return found


def rendered(stack: Evaluation) -> dict[str, str]:
    return {
        f"{role}.json": json.dumps(granted, indent=2, sort_keys=True) + "\n"
        for role, granted in permissions(stack).items()
    }


def test_each_roles_permissions_match_its_golden_file(stack: Evaluation) -> None:
    directory = GOLDEN / stack.stack
    files = rendered(stack)
    assert files, "the stack declares no role"
    if UPDATE:
        directory.mkdir(parents=True, exist_ok=True)
        for stale in set(p.name for p in directory.glob("*.json")) - set(files):
            (directory / stale).unlink()
        for name, text in files.items():
            (directory / name).write_text(text)
        pytest.fail(
            f"wrote {directory}: review the diff, then run without INFERSTACK_UPDATE_GOLDEN",
            pytrace=False,
        )
    on_disk = {path.name: path.read_text() for path in directory.glob("*.json")}
    regenerate = "regenerate as this module's docstring says, and review the diff"
    assert sorted(files) == sorted(on_disk), f"roles added or removed: {regenerate}"
    for name, text in files.items():
        assert text == on_disk[name], f"{stack.stack}/{name}: permissions changed: {regenerate}"
