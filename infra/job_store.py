"""The stack's data bucket: jobs' requests and results, and batches' inputs and outputs."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.artifact_store import secure_bucket
from stacks.schema import ArtifactStoreConfig, ModelConfig

# A batch's work files (its plan and finished chunks) are only needed while it runs.
WORK_RETENTION_DAYS = 1


@dataclass
class JobStoreArgs:
    # Encryption and force_destroy are the artifact bucket's.
    config: ArtifactStoreConfig
    # The models with jobs (an `async` section).
    models: list[ModelConfig]


@dataclass
class BatchTrigger:
    """A function invoked for each JSONL file put under `batch_prefix/in/`."""

    batch_prefix: str
    alias_arn: pulumi.Input[str]
    # The Lambda permission that lets S3 invoke it: S3 checks it when the configuration
    # is written.
    permission: aws.lambda_.Permission


class JobStore(pulumi.ComponentResource):
    bucket: aws.s3.Bucket

    def __init__(
        self, name: str, args: JobStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("inferstack:index:JobStore", name, None, opts)
        self._name = name
        # Not versioned: a job's status object is rewritten as the job runs, and results
        # expire whole (below); nothing here is restored from an older version.
        self.bucket = aws.s3.Bucket(
            name, force_destroy=args.config.force_destroy, opts=pulumi.ResourceOptions(parent=self)
        )
        secure_bucket(name, self.bucket, args.config, parent=self)
        self._create_lifecycle(args.models)
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.bucket.arn})

    def _create_lifecycle(self, models: list[ModelConfig]) -> aws.s3.BucketLifecycleConfiguration:
        rules = [
            # Uploads of large inputs (jobs' input_uri objects, batch files) that never
            # completed.
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="abort-incomplete-uploads",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=1
                ),
            )
        ]
        for model in models:
            assert model.async_ is not None
            retention = model.async_.result_retention_days
            expiring = [(f"{model.name}-jobs", f"{model.jobs_prefix}/", retention)]
            if model.batch_prefix is not None:
                expiring += [
                    (f"{model.name}-batch-out", f"{model.batch_prefix}/out/", retention),
                    (
                        f"{model.name}-batch-work",
                        f"{model.batch_prefix}/work/",
                        WORK_RETENTION_DAYS,
                    ),
                ]
            rules += [_expire(rule_id, prefix, days) for rule_id, prefix, days in expiring]
        return aws.s3.BucketLifecycleConfiguration(
            f"{self._name}-lifecycle",
            bucket=self.bucket.id,
            rules=rules,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def notify(self, triggers: list[BatchTrigger]) -> aws.s3.BucketNotification:
        """The bucket's notification configuration, once every function it invokes exists.

        S3 keeps one notification configuration per bucket (a second resource for the same
        bucket would overwrite the first), so every batch model is one entry of it.
        """
        return aws.s3.BucketNotification(
            f"{self._name}-notifications",
            bucket=self.bucket.id,
            lambda_functions=[
                aws.s3.BucketNotificationLambdaFunctionArgs(
                    id=f"{trigger.batch_prefix.replace('/', '-')}-in",
                    events=["s3:ObjectCreated:*"],
                    # Only in/: the function writes out/ and work/, which must not invoke it.
                    filter_prefix=f"{trigger.batch_prefix}/in/",
                    filter_suffix=".jsonl",
                    lambda_function_arn=trigger.alias_arn,
                )
                for trigger in triggers
            ],
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[trigger.permission for trigger in triggers]
            ),
        )


def _expire(rule_id: str, prefix: str, days: int) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id=rule_id,
        status="Enabled",
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=prefix),
        expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
    )
