"""CloudWatch Logs: the functions' and the API's log groups (hand-written: a group that
already exists is an error, as on AWS; its retention is a call of its own, and it is found
by listing)."""

from __future__ import annotations

from localdev.deploy.realizers.base import Context, Inputs, Realized, Realizer, gone_ok, optional
from localdev.deploy.state import ResourceState
from localdev.errors import DeployError

# What CloudWatch Logs answers for a missing log group.
MISSING = frozenset({"ResourceNotFoundException"})


class LogGroup(Realizer):
    type = "aws:cloudwatch/logGroup:LogGroup"
    supported = frozenset(
        {"name", "namePrefix", "retentionInDays", "kmsKeyId", "logGroupClass", "skipDestroy"}
    )
    replace_on = frozenset({"name", "namePrefix", "logGroupClass"})
    taggable = True

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        name = ctx.autoname(inputs.opt_text("name"), prefix=inputs.opt_text("namePrefix"))
        logs = ctx.clients("logs")
        try:
            logs.create_log_group(
                logGroupName=name,
                tags=ctx.tags,
                **optional(
                    kmsKeyId=inputs.opt_text("kmsKeyId"),
                    logGroupClass=inputs.opt_text("logGroupClass"),
                ),
            )
        except logs.exceptions.ResourceAlreadyExistsException as exc:
            # As on AWS: a group the stack did not create is not silently adopted (its
            # retention, KMS key and tags would be someone else's).
            raise DeployError(
                f"log group {name} already exists (ResourceAlreadyExistsException); the "
                "stack does not own it: delete it (`aws logs delete-log-group "
                f"--log-group-name {name}`) or import it with the Pulumi CLI"
            ) from exc
        self._retention(ctx, name, inputs)
        return self._realized(ctx, name)

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        logs = ctx.clients("logs")
        if "retentionInDays" in changed:
            self._retention(ctx, old.id, inputs)
        if "kmsKeyId" in changed:
            if inputs.opt_text("kmsKeyId"):
                logs.associate_kms_key(logGroupName=old.id, kmsKeyId=inputs.text("kmsKeyId"))
            else:
                logs.disassociate_kms_key(logGroupName=old.id)
        if "tagsAll" in changed:
            arn = self._arn(ctx, old.id)
            stale = set(old.inputs.get("tagsAll", {})) - set(ctx.tags)
            if stale:
                logs.untag_resource(resourceArn=arn, tagKeys=sorted(stale))
            if ctx.tags:
                logs.tag_resource(resourceArn=arn, tags=ctx.tags)
        return self._realized(ctx, old.id)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        if old.inputs.get("skipDestroy"):
            return
        gone_ok(lambda: ctx.clients("logs").delete_log_group(logGroupName=old.id), MISSING)

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        groups = ctx.clients("logs").describe_log_groups(logGroupNamePrefix=old.id)["logGroups"]
        return any(group["logGroupName"] == old.id for group in groups)

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        name = ctx.autoname(inputs.opt_text("name"), prefix=inputs.opt_text("namePrefix"))
        groups = ctx.clients("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        return {name} if any(group["logGroupName"] == name for group in groups) else set()

    def _retention(self, ctx: Context, name: str, inputs: Inputs) -> None:
        logs = ctx.clients("logs")
        days = inputs.opt_integer("retentionInDays")
        if days:
            logs.put_retention_policy(logGroupName=name, retentionInDays=days)
        else:
            gone_ok(lambda: logs.delete_retention_policy(logGroupName=name), MISSING)

    def _arn(self, ctx: Context, name: str) -> str:
        return f"arn:aws:logs:{ctx.clients.region}:{ctx.clients.account}:log-group:{name}"

    def _realized(self, ctx: Context, name: str) -> Realized:
        # The provider reports the group's ARN without the ":*" that DescribeLogGroups adds.
        return Realized(name, {"name": name, "arn": self._arn(ctx, name), "tagsAll": ctx.tags})


REALIZERS: list[Realizer] = [LogGroup()]
