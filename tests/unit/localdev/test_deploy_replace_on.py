"""Which input changes replace a resource (the rest update it in place), per realizer, as
the AWS provider decides: pulumi-aws is terraform-provider-aws underneath, and a change of
an attribute with `ForceNew: true` in its schema replaces the resource. The table cites the
schema of each type (hashicorp/terraform-provider-aws, internal/service/<svc>/<file>.go),
in Pulumi's camelCase input names (`function_name` of a Function is Pulumi's `name`).
API Gateway's realizers are checked with their own module."""

from __future__ import annotations

import pytest

from localdev.deploy.realizers import REALIZERS

# type -> the ForceNew inputs (None: the type has no update at all, every change replaces).
FORCE_NEW: dict[str, frozenset[str] | None] = {
    # s3/bucket.go: bucket, bucket_prefix, object_lock_enabled.
    "aws:s3/bucket:Bucket": frozenset({"bucket", "bucketPrefix", "objectLockEnabled"}),
    # s3/object.go: bucket, key.
    "aws:s3/bucketObjectv2:BucketObjectv2": frozenset({"bucket", "key"}),
    # s3/bucket_versioning.go, bucket_lifecycle_configuration.go,
    # bucket_server_side_encryption_configuration.go: bucket, expected_bucket_owner.
    "aws:s3/bucketVersioning:BucketVersioning": frozenset({"bucket", "expectedBucketOwner"}),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": frozenset(
        {"bucket", "expectedBucketOwner"}
    ),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        frozenset({"bucket", "expectedBucketOwner"})
    ),
    # s3/bucket_policy.go, bucket_public_access_block.go, bucket_ownership_controls.go:
    # bucket (they have no expected_bucket_owner).
    "aws:s3/bucketPolicy:BucketPolicy": frozenset({"bucket"}),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": frozenset({"bucket"}),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": frozenset({"bucket"}),
    # iam/role.go: name, name_prefix, path.
    "aws:iam/role:Role": frozenset({"name", "namePrefix", "path"}),
    # iam/role_policy.go: name, name_prefix, role.
    "aws:iam/rolePolicy:RolePolicy": frozenset({"name", "namePrefix", "role"}),
    # logs/group.go: name, name_prefix, log_group_class.
    "aws:cloudwatch/logGroup:LogGroup": frozenset({"name", "namePrefix", "logGroupClass"}),
    # lambda/function.go: function_name, package_type (and tenancy_config, not realized).
    "aws:lambda/function:Function": frozenset({"name", "packageType"}),
    # lambda/layer_version.go: no Update; every argument is ForceNew.
    "aws:lambda/layerVersion:LayerVersion": None,
    # lambda/alias.go: function_name, name.
    "aws:lambda/alias:Alias": frozenset({"functionName", "name"}),
    # lambda/permission.go: no Update; every argument is ForceNew.
    "aws:lambda/permission:Permission": None,
    # lambda/provisioned_concurrency_config.go: function_name, qualifier.
    "aws:lambda/provisionedConcurrencyConfig:ProvisionedConcurrencyConfig": frozenset(
        {"functionName", "qualifier"}
    ),
    # lambda/event_source_mapping.go: event_source_arn (function_name, batch_size,
    # scaling_config, ... are updated; queues, topics, starting_position(_timestamp),
    # self_managed_event_source and the Kafka configs are not realized).
    "aws:lambda/eventSourceMapping:EventSourceMapping": frozenset({"eventSourceArn"}),
    # sqs/queue.go: name, name_prefix (and fifo_queue, not realized); every attribute is
    # set in place.
    "aws:sqs/queue:Queue": frozenset({"name", "namePrefix"}),
    # s3/bucket_notification.go: bucket.
    "aws:s3/bucketNotification:BucketNotification": frozenset({"bucket"}),
    # cloudwatch/metric_alarm.go: alarm_name (Pulumi's `name`).
    "aws:cloudwatch/metricAlarm:MetricAlarm": frozenset({"name"}),
    # cloudwatch/dashboard.go: dashboard_name (a new body is put in place).
    "aws:cloudwatch/dashboard:Dashboard": frozenset({"dashboardName"}),
    # sns/topic.go: name, name_prefix (and fifo_topic, not realized).
    "aws:sns/topic:Topic": frozenset({"name", "namePrefix"}),
    # sns/topic_subscription.go: topic_arn (Pulumi's `topic`), protocol, endpoint.
    "aws:sns/topicSubscription:TopicSubscription": frozenset({"topic", "protocol", "endpoint"}),
    # sns/topic_policy.go: arn.
    "aws:sns/topicPolicy:TopicPolicy": frozenset({"arn"}),
}


def test_the_table_covers_every_realizer_but_api_gateway() -> None:
    assert set(FORCE_NEW) == {t for t in REALIZERS if not t.startswith("aws:apigateway/")}


@pytest.mark.parametrize("type_", sorted(FORCE_NEW), ids=lambda t: t.rsplit(":", 1)[1])
def test_a_realizer_replaces_on_exactly_the_providers_force_new_inputs(type_: str) -> None:
    realizer = REALIZERS[type_]
    expected = FORCE_NEW[type_]
    if expected is None:
        assert realizer.replace_on is None
        return
    assert realizer.replace_on is not None
    # What matters is what the realizer accepts: an input it refuses never changes.
    assert realizer.replace_on & realizer.supported == expected & realizer.supported
    assert expected <= realizer.supported | {"expectedBucketOwner"}
