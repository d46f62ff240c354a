"""SQS: the job queues and their dead-letter queues.

Hand-written: a queue is created with its attributes and tags and changed in place with
SetQueueAttributes (the provider replaces it only for a new name); its id is its URL, and
an attribute whose input is removed goes back to what the provider's schema says."""

from __future__ import annotations

from typing import Any

from localdev.deploy.realizers.base import (
    Context,
    Inputs,
    Realized,
    Realizer,
    fetch,
    found,
    gone_ok,
)
from localdev.deploy.state import ResourceState

# What SQS answers for a missing queue: the query-compatible code botocore reads from the
# x-amzn-query-error header, and the JSON protocol's own.
MISSING = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})

# Pulumi input -> SQS attribute.
ATTRIBUTES = {
    "delaySeconds": "DelaySeconds",
    "kmsDataKeyReusePeriodSeconds": "KmsDataKeyReusePeriodSeconds",
    "kmsMasterKeyId": "KmsMasterKeyId",
    "maxMessageSize": "MaximumMessageSize",
    "messageRetentionSeconds": "MessageRetentionPeriod",
    "policy": "Policy",
    "receiveWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    "redriveAllowPolicy": "RedriveAllowPolicy",
    "redrivePolicy": "RedrivePolicy",
    "sqsManagedSseEnabled": "SqsManagedSseEnabled",
    "visibilityTimeoutSeconds": "VisibilityTimeout",
}

# What an attribute is set to when its input is removed (internal/service/sqs/queue.go and
# consts.go): the schema default, or "" for kms_master_key_id. The provider's Optional +
# Computed ones (policy, redrive_policy, redrive_allow_policy, sqs_managed_sse_enabled,
# kms_data_key_reuse_period_seconds) see no change when removed: SQS keeps its value.
_WHEN_REMOVED = {
    "delaySeconds": "0",
    "maxMessageSize": "262144",
    "messageRetentionSeconds": "345600",
    "receiveWaitTimeSeconds": "0",
    "visibilityTimeoutSeconds": "30",
    "kmsMasterKeyId": "",
}


def attribute_value(value: Any) -> str:
    """An input as SQS takes an attribute: every value is a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Queue(Realizer):
    type = "aws:sqs/queue:Queue"
    supported = frozenset({"name", "namePrefix", *ATTRIBUTES})
    # queue.go: name, name_prefix (and fifo_queue, not realized).
    replace_on = frozenset({"name", "namePrefix"})
    taggable = True

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        attributes = {
            attribute: attribute_value(inputs.raw(key))
            for key, attribute in ATTRIBUTES.items()
            if inputs.raw(key) is not None
        }
        url = ctx.clients("sqs").create_queue(
            QueueName=self._name(ctx, inputs), Attributes=attributes, tags=ctx.tags
        )["QueueUrl"]
        return self._realized(ctx, str(url))

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        sqs = ctx.clients("sqs")
        attributes: dict[str, str] = {}
        for key in sorted(changed & set(ATTRIBUTES)):
            value = inputs.raw(key)
            if value is not None:
                attributes[ATTRIBUTES[key]] = attribute_value(value)
            elif key in _WHEN_REMOVED:
                attributes[ATTRIBUTES[key]] = _WHEN_REMOVED[key]
        if attributes:
            sqs.set_queue_attributes(QueueUrl=old.id, Attributes=attributes)
        if "tagsAll" in changed:
            stale = set(old.inputs.get("tagsAll", {})) - set(ctx.tags)
            if stale:
                sqs.untag_queue(QueueUrl=old.id, TagKeys=sorted(stale))
            if ctx.tags:
                sqs.tag_queue(QueueUrl=old.id, Tags=ctx.tags)
        return self._realized(ctx, old.id)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gone_ok(lambda: ctx.clients("sqs").delete_queue(QueueUrl=old.id), MISSING)

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        sqs = ctx.clients("sqs")
        return found(lambda: sqs.get_queue_attributes(QueueUrl=old.id), MISSING)

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        sqs = ctx.clients("sqs")
        name = self._name(ctx, inputs)
        queue = fetch(lambda: sqs.get_queue_url(QueueName=name), MISSING)
        return set() if queue is None else {str(queue["QueueUrl"])}

    def _name(self, ctx: Context, inputs: Inputs) -> str:
        return ctx.autoname(
            inputs.opt_text("name"), prefix=inputs.opt_text("namePrefix"), max_length=80
        )

    def _realized(self, ctx: Context, url: str) -> Realized:
        arn = ctx.clients("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        return Realized(
            url,
            {"arn": arn, "url": url, "name": url.rsplit("/", 1)[1], "tagsAll": ctx.tags},
        )


REALIZERS: list[Realizer] = [Queue()]
