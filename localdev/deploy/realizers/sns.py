"""SNS: the stack's alarm topic, its policy and its subscriptions.

The topic and a subscription are hand-written: each is created with one call and changed
attribute by attribute (the provider replaces them only for a new name, or a new topic,
protocol or endpoint); the topic's id is its ARN, a subscription's is its own ARN. The
topic policy is the topic's Policy attribute: a `Description` whose delete puts SNS's
default policy back, as the provider does (a topic cannot be left without one)."""

from __future__ import annotations

import json
from typing import Any

from localdev.deploy.realizers.base import (
    Context,
    Described,
    Description,
    Inputs,
    Realized,
    Realizer,
    fetch,
    found,
    gone_ok,
)
from localdev.deploy.realizers.sqs import attribute_value
from localdev.deploy.state import ResourceState

# What SNS answers for a missing topic or subscription.
MISSING = frozenset({"NotFound"})

# Pulumi input -> topic attribute.
TOPIC_ATTRIBUTES = {
    "deliveryPolicy": "DeliveryPolicy",
    "displayName": "DisplayName",
    "kmsMasterKeyId": "KmsMasterKeyId",
    "policy": "Policy",
    "signatureVersion": "SignatureVersion",
    "tracingConfig": "TracingConfig",
}
# Removed, these are cleared; the provider's Optional + Computed ones (policy,
# signature_version, tracing_config) see no change when removed: SNS keeps its value.
_CLEARED_WHEN_REMOVED = frozenset({"deliveryPolicy", "displayName", "kmsMasterKeyId"})

# Pulumi input -> subscription attribute (topic, protocol and endpoint are Subscribe's own).
SUBSCRIPTION_ATTRIBUTES = {
    "deliveryPolicy": "DeliveryPolicy",
    "filterPolicy": "FilterPolicy",
    "filterPolicyScope": "FilterPolicyScope",
    "rawMessageDelivery": "RawMessageDelivery",
    "redrivePolicy": "RedrivePolicy",
    "replayPolicy": "ReplayPolicy",
    "subscriptionRoleArn": "SubscriptionRoleArn",
}


def _topic_key(topic_arn: str) -> str:
    return f"sns:topic:{topic_arn}"


def _account(arn: str) -> str:
    return arn.split(":")[4]


class Topic(Realizer):
    type = "aws:sns/topic:Topic"
    supported = frozenset({"name", "namePrefix", *TOPIC_ATTRIBUTES})
    # topic.go: name, name_prefix (and fifo_topic, not realized).
    replace_on = frozenset({"name", "namePrefix"})
    taggable = True

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        attributes = {
            attribute: attribute_value(inputs.raw(key))
            for key, attribute in TOPIC_ATTRIBUTES.items()
            if inputs.raw(key) is not None
        }
        tags = [{"Key": k, "Value": v} for k, v in sorted(ctx.tags.items())]
        arn = ctx.clients("sns").create_topic(
            Name=self._name(ctx, inputs), Attributes=attributes, Tags=tags
        )["TopicArn"]
        return self._realized(ctx, str(arn))

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        sns = ctx.clients("sns")
        for key in sorted(changed & set(TOPIC_ATTRIBUTES)):
            value = inputs.raw(key)
            if value is None and key not in _CLEARED_WHEN_REMOVED:
                continue
            sns.set_topic_attributes(
                TopicArn=old.id,
                AttributeName=TOPIC_ATTRIBUTES[key],
                AttributeValue="" if value is None else attribute_value(value),
            )
        if "tagsAll" in changed:
            stale = set(old.inputs.get("tagsAll", {})) - set(ctx.tags)
            if stale:
                sns.untag_resource(ResourceArn=old.id, TagKeys=sorted(stale))
            if ctx.tags:
                tags = [{"Key": k, "Value": v} for k, v in sorted(ctx.tags.items())]
                sns.tag_resource(ResourceArn=old.id, Tags=tags)
        return self._realized(ctx, old.id)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gone_ok(lambda: ctx.clients("sns").delete_topic(TopicArn=old.id), MISSING)

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        return found(lambda: ctx.clients("sns").get_topic_attributes(TopicArn=old.id), MISSING)

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        clients = ctx.clients
        arn = f"arn:aws:sns:{clients.region}:{clients.account}:{self._name(ctx, inputs)}"
        return (
            {arn}
            if found(lambda: clients("sns").get_topic_attributes(TopicArn=arn), MISSING)
            else set()
        )

    def owns(self, old: ResourceState) -> str | None:
        # Its policy is one of its attributes. Not its subscriptions: AWS deletes them with
        # the topic, LocalStack keeps them (each is unsubscribed on its own).
        return _topic_key(old.id)

    def _name(self, ctx: Context, inputs: Inputs) -> str:
        return ctx.autoname(
            inputs.opt_text("name"), prefix=inputs.opt_text("namePrefix"), max_length=256
        )

    def _realized(self, ctx: Context, arn: str) -> Realized:
        return Realized(
            arn,
            {
                "arn": arn,
                "name": arn.rsplit(":", 1)[1],
                "owner": _account(arn),
                "tagsAll": ctx.tags,
            },
        )


class TopicSubscription(Realizer):
    type = "aws:sns/topicSubscription:TopicSubscription"
    supported = frozenset(
        {
            "topic",
            "protocol",
            "endpoint",
            "endpointAutoConfirms",
            "confirmationTimeoutInMinutes",
            *SUBSCRIPTION_ATTRIBUTES,
        }
    )
    # topic_subscription.go: topic_arn (Pulumi's `topic`), protocol, endpoint.
    replace_on = frozenset({"topic", "protocol", "endpoint"})

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        attributes = {
            attribute: attribute_value(inputs.raw(key))
            for key, attribute in SUBSCRIPTION_ATTRIBUTES.items()
            if inputs.raw(key) is not None
        }
        arn = ctx.clients("sns").subscribe(
            TopicArn=inputs.text("topic"),
            Protocol=inputs.text("protocol"),
            Endpoint=inputs.text("endpoint"),
            Attributes=attributes,
            # The ARN even of a subscription still pending confirmation (email, https).
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        return self._realized(ctx, str(arn))

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        sns = ctx.clients("sns")
        for key in sorted(changed & set(SUBSCRIPTION_ATTRIBUTES)):
            value = inputs.raw(key)
            if value is None and key == "filterPolicy":
                value = "{}"  # SNS: an empty filter policy is how one is removed
            sns.set_subscription_attributes(
                SubscriptionArn=old.id,
                AttributeName=SUBSCRIPTION_ATTRIBUTES[key],
                AttributeValue="" if value is None else attribute_value(value),
            )
        return self._realized(ctx, old.id)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gone_ok(lambda: ctx.clients("sns").unsubscribe(SubscriptionArn=old.id), MISSING)

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        sns = ctx.clients("sns")
        return found(lambda: sns.get_subscription_attributes(SubscriptionArn=old.id), MISSING)

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        """The topic's subscriptions of this protocol and endpoint (SNS lists one that is
        pending confirmation without its ARN: only a confirmed one can be found)."""
        sns = ctx.clients("sns")
        topic = inputs.text("topic")
        listed = fetch(lambda: sns.list_subscriptions_by_topic(TopicArn=topic), MISSING)
        return {
            str(item["SubscriptionArn"])
            for item in (listed or {}).get("Subscriptions", [])
            if item["Protocol"] == inputs.text("protocol")
            and item["Endpoint"] == inputs.text("endpoint")
            and str(item["SubscriptionArn"]).startswith("arn:")
        }

    def _realized(self, ctx: Context, arn: str) -> Realized:
        attributes = ctx.clients("sns").get_subscription_attributes(SubscriptionArn=arn)[
            "Attributes"
        ]
        return Realized(
            arn,
            {
                "arn": arn,
                "ownerId": attributes.get("Owner", _account(arn)),
                "pendingConfirmation": attributes.get("PendingConfirmation") == "true",
                "confirmationWasAuthenticated": (
                    attributes.get("ConfirmationWasAuthenticated") == "true"
                ),
            },
        )


def default_topic_policy(topic_arn: str) -> str:
    """The policy SNS gives a new topic, which the provider puts back when a topic policy
    is deleted (topic_policy.go): the account's principals, by AWS:SourceOwner."""
    return json.dumps(
        {
            "Version": "2008-10-17",
            "Id": "__default_policy_ID",
            "Statement": [
                {
                    "Sid": "__default_statement_ID",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": [
                        "SNS:GetTopicAttributes",
                        "SNS:SetTopicAttributes",
                        "SNS:AddPermission",
                        "SNS:RemovePermission",
                        "SNS:DeleteTopic",
                        "SNS:Subscribe",
                        "SNS:ListSubscriptionsByTopic",
                        "SNS:Publish",
                        "SNS:Receive",
                    ],
                    "Resource": topic_arn,
                    "Condition": {"StringEquals": {"AWS:SourceOwner": _account(topic_arn)}},
                }
            ],
        }
    )


def _policy_args(topic_arn: str, policy: str) -> dict[str, Any]:
    return {"TopicArn": topic_arn, "AttributeName": "Policy", "AttributeValue": policy}


def _policy_is_present(live: dict[str, Any], old: ResourceState) -> bool:
    # Every topic has a policy: compare it with the one declared.
    policy = live["Attributes"].get("Policy")
    return policy is not None and json.loads(policy) == json.loads(old.inputs["policy"])


TOPIC_POLICY = Description(
    type="aws:sns/topicPolicy:TopicPolicy",
    service="sns",
    supported=frozenset({"arn", "policy"}),
    create="set_topic_attributes",
    create_args=lambda _ctx, inputs: _policy_args(inputs.text("arn"), inputs.text("policy")),
    get="get_topic_attributes",
    delete="set_topic_attributes",
    address=lambda old: {"TopicArn": old.id},
    delete_args=lambda old: _policy_args(old.id, default_topic_policy(old.id)),
    physical_id=lambda inputs, _response: inputs.text("arn"),
    missing=MISSING,
    outputs=lambda ctx, _response: {"owner": ctx.clients.account},
    # topic_policy.go: arn; a new policy is put in place.
    replace_on=frozenset({"arn"}),
    update="set_topic_attributes",
    is_present=_policy_is_present,
    container=lambda old: _topic_key(old.id),
)

REALIZERS: list[Realizer] = [Topic(), TopicSubscription(), Described(TOPIC_POLICY)]
