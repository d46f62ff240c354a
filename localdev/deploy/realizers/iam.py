"""IAM: the functions' roles and their inline policies.

Both are hand-written: a role updates its trust policy, settings and tags by three calls
and must be stripped of its policies before it can go; an inline policy's name is
auto-generated once and kept by every later put (a `Description` would name it anew)."""

from __future__ import annotations

from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from localdev.deploy.realizers.base import (
    Context,
    Inputs,
    Realized,
    Realizer,
    found,
    gone_ok,
    is_missing,
    optional,
)
from localdev.deploy.state import ResourceState

# What IAM answers for a missing role or policy.
MISSING = frozenset({"NoSuchEntity"})


def _role_key(role: str) -> str:
    return f"iam:role:{role}"


class Role(Realizer):
    type = "aws:iam/role:Role"
    supported = frozenset(
        {
            "name",
            "namePrefix",
            "path",
            "assumeRolePolicy",
            "description",
            "maxSessionDuration",
            "forceDetachPolicies",
        }
    )
    replace_on = frozenset({"name", "namePrefix", "path"})
    taggable = True

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        name = ctx.autoname(inputs.opt_text("name"), prefix=inputs.opt_text("namePrefix"))
        role = ctx.clients("iam").create_role(
            RoleName=name,
            AssumeRolePolicyDocument=inputs.text("assumeRolePolicy"),
            Tags=[{"Key": k, "Value": v} for k, v in sorted(ctx.tags.items())],
            **optional(
                Path=inputs.opt_text("path"),
                Description=inputs.opt_text("description"),
                MaxSessionDuration=inputs.opt_integer("maxSessionDuration"),
            ),
        )["Role"]
        return self._realized(ctx, role)

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        iam = ctx.clients("iam")
        if "assumeRolePolicy" in changed:
            iam.update_assume_role_policy(
                RoleName=old.id, PolicyDocument=inputs.text("assumeRolePolicy")
            )
        if changed & {"description", "maxSessionDuration"}:
            iam.update_role(
                RoleName=old.id,
                **optional(
                    Description=inputs.opt_text("description") or "",
                    MaxSessionDuration=inputs.opt_integer("maxSessionDuration"),
                ),
            )
        if "tagsAll" in changed:
            stale = set(old.inputs.get("tagsAll", {})) - set(ctx.tags)
            if stale:
                iam.untag_role(RoleName=old.id, TagKeys=sorted(stale))
            if ctx.tags:
                tags = [{"Key": k, "Value": v} for k, v in sorted(ctx.tags.items())]
                iam.tag_role(RoleName=old.id, Tags=tags)
        return self._realized(ctx, iam.get_role(RoleName=old.id)["Role"])

    def delete(self, ctx: Context, old: ResourceState) -> None:
        iam = ctx.clients("iam")
        # A role with policies cannot be deleted; inline ones go with it (as their own
        # resources would have gone first anyway), managed ones are detached.
        try:
            for policy in iam.list_role_policies(RoleName=old.id)["PolicyNames"]:
                gone_ok(
                    partial(iam.delete_role_policy, RoleName=old.id, PolicyName=policy), MISSING
                )
            attached = iam.list_attached_role_policies(RoleName=old.id)["AttachedPolicies"]
            for policy in attached:
                arn = policy["PolicyArn"]
                gone_ok(partial(iam.detach_role_policy, RoleName=old.id, PolicyArn=arn), MISSING)
        except ClientError as exc:
            if is_missing(exc, MISSING):
                return
            raise
        gone_ok(lambda: iam.delete_role(RoleName=old.id), MISSING)

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        return found(lambda: ctx.clients("iam").get_role(RoleName=old.id), MISSING)

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        name = ctx.autoname(inputs.opt_text("name"), prefix=inputs.opt_text("namePrefix"))
        return (
            {name} if found(lambda: ctx.clients("iam").get_role(RoleName=name), MISSING) else set()
        )

    def owns(self, old: ResourceState) -> str | None:
        return _role_key(old.id)

    def _realized(self, ctx: Context, role: dict[str, Any]) -> Realized:
        return Realized(
            role["RoleName"],
            {
                "name": role["RoleName"],
                "arn": role["Arn"],
                "uniqueId": role.get("RoleId", ""),
                "createDate": str(role.get("CreateDate", "")),
                "tagsAll": ctx.tags,
            },
        )


class RolePolicy(Realizer):
    type = "aws:iam/rolePolicy:RolePolicy"
    supported = frozenset({"name", "namePrefix", "role", "policy"})
    replace_on = frozenset({"name", "namePrefix", "role"})

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        role = inputs.text("role")
        name = ctx.autoname(inputs.opt_text("name"), prefix=inputs.opt_text("namePrefix"))
        ctx.clients("iam").put_role_policy(
            RoleName=role, PolicyName=name, PolicyDocument=inputs.text("policy")
        )
        return Realized(f"{role}:{name}", {"name": name})

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        role, name = old.id.split(":", 1)
        ctx.clients("iam").put_role_policy(
            RoleName=role, PolicyName=name, PolicyDocument=inputs.text("policy")
        )
        return Realized(old.id, {"name": name})

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        return set()  # a put: a second one overwrites the first (and it goes with its role)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        role, name = old.id.split(":", 1)
        iam = ctx.clients("iam")
        gone_ok(lambda: iam.delete_role_policy(RoleName=role, PolicyName=name), MISSING)

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        role, name = old.id.split(":", 1)
        iam = ctx.clients("iam")
        return found(lambda: iam.get_role_policy(RoleName=role, PolicyName=name), MISSING)

    def container(self, old: ResourceState) -> str | None:
        return _role_key(old.id.split(":", 1)[0])


REALIZERS: list[Realizer] = [Role(), RolePolicy()]
