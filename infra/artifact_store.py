"""The S3 bucket that holds model artifacts under content-addressed keys, and the guards
every bucket of a stack gets (`secure_bucket`)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.artifacts import Artifact
from stacks.schema import ArtifactStoreConfig


@dataclass
class ArtifactStoreArgs:
    config: ArtifactStoreConfig
    artifacts: list[Artifact]


class ArtifactStore(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    # s3://bucket/models/<name>/<content hash>, resolved once every file is uploaded.
    model_uris: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: ArtifactStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("inferstack:index:ArtifactStore", name, None, opts)
        self._name = name
        config = args.config
        self.bucket = aws.s3.Bucket(name, force_destroy=config.force_destroy, opts=self._child())
        encryption = secure_bucket(name, self.bucket, config, parent=self)
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=self.bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=self._child(),
        )
        self._create_lifecycle(config, depends_on=[versioning])
        self.model_uris = {
            artifact.name: self._upload(artifact, depends_on=[encryption, versioning])
            for artifact in args.artifacts
        }
        self.register_outputs(
            {"bucket": self.bucket.bucket, "arn": self.bucket.arn, "model_uris": self.model_uris}
        )

    def _child(self, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=depends_on)

    def _create_lifecycle(
        self, config: ArtifactStoreConfig, depends_on: list[pulumi.Resource]
    ) -> aws.s3.BucketLifecycleConfiguration:
        # Overwritten or deleted objects become noncurrent versions (kept for a while,
        # then expired). Old model prefixes are retained whole (see _upload).
        rule = aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="expire-old-versions",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=config.noncurrent_version_expiry_days
            ),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                expired_object_delete_marker=True
            ),
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=7
            ),
        )
        return aws.s3.BucketLifecycleConfiguration(
            f"{self._name}-lifecycle",
            bucket=self.bucket.id,
            rules=[rule],
            opts=self._child(depends_on),
        )

    def _upload(self, artifact: Artifact, depends_on: list[pulumi.Resource]) -> pulumi.Output[str]:
        # Keys are content-addressed: a new model version is new keys, and the old objects
        # would be deleted with their resources. Retained instead, they stay (as current
        # versions, which the noncurrent-version rule never expires) for what still points
        # at them: an older published Lambda version's MODEL_URI, an older GPU rollout.
        # Nothing removes a retained prefix automatically: `down` takes it with the bucket
        # (force_destroy), or delete it by hand once no version uses it
        # (`aws s3 rm --recursive s3://<bucket>/models/<name>/<old hash>`).
        retained = pulumi.ResourceOptions.merge(
            self._child(depends_on), pulumi.ResourceOptions(retain_on_delete=True)
        )
        objects = [
            aws.s3.BucketObjectv2(
                f"{self._name}-{artifact.name}-{file}",
                bucket=self.bucket.id,
                key=f"{artifact.key_prefix}/{file}",
                source=pulumi.FileAsset(str(artifact.directory / file)),
                content_type=(
                    "application/json" if file.endswith(".json") else "application/octet-stream"
                ),
                opts=retained,
            )
            for file in artifact.files
        ]
        # The URI is only handed out once every object exists, so a function reading it
        # is created after its model is in place.
        return pulumi.Output.all(self.bucket.bucket, *[obj.key for obj in objects]).apply(
            lambda values: f"s3://{values[0]}/{artifact.key_prefix}"
        )


def secure_bucket(
    name: str, bucket: aws.s3.Bucket, config: ArtifactStoreConfig, parent: pulumi.Resource
) -> aws.s3.BucketServerSideEncryptionConfiguration:
    """Make `bucket` private (public access blocked, ACLs off), encrypted as `config` says,
    and reachable over TLS only; returns its encryption configuration, which objects
    uploaded by the program wait for. Every bucket of a stack gets the same."""
    child = pulumi.ResourceOptions(parent=parent)
    public_access = aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    ownership = aws.s3.BucketOwnershipControls(
        f"{name}-ownership",
        bucket=bucket.id,
        rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        opts=child,
    )
    default = (
        aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
            sse_algorithm=config.encryption, kms_master_key_id=config.kms_key_arn
        )
    )
    encryption = aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=default,
                # S3 Bucket Keys cut KMS requests (and their cost) by orders of magnitude.
                bucket_key_enabled=config.encryption == "aws:kms",
            )
        ],
        opts=child,
    )
    _tls_only_policy(
        name,
        bucket,
        pulumi.ResourceOptions(parent=parent, depends_on=[public_access, ownership]),
    )
    return encryption


def _tls_only_policy(
    name: str, bucket: aws.s3.Bucket, opts: pulumi.ResourceOptions
) -> aws.s3.BucketPolicy:
    policy = pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )
    return aws.s3.BucketPolicy(f"{name}-tls-only", bucket=bucket.id, policy=policy, opts=opts)
