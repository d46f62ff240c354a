"""S3: the artifact bucket, its settings, and the model objects in it."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pulumi

from localdev.deploy.assets import asset_bytes
from localdev.deploy.aws import is_missing
from localdev.deploy.realizers.base import (
    Context,
    Inputs,
    Realized,
    Realizer,
    api_shape,
    found,
    gone_ok,
)
from localdev.deploy.state import ResourceState
from localdev.errors import DeployError


def _bucket_key(bucket: str) -> str:
    return f"s3:bucket:{bucket}"


class Bucket(Realizer):
    type = "aws:s3/bucket:Bucket"
    supported = frozenset({"bucket", "bucketPrefix", "forceDestroy", "objectLockEnabled"})
    replace_on = frozenset({"bucket", "bucketPrefix", "objectLockEnabled"})
    taggable = True

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        bucket = ctx.autoname(
            inputs.opt_text("bucket"),
            prefix=inputs.opt_text("bucketPrefix"),
            max_length=63,
            lowercase=True,
        )
        s3 = ctx.clients("s3")
        extra: dict[str, Any] = {}
        if ctx.clients.region != "us-east-1":
            extra["CreateBucketConfiguration"] = {"LocationConstraint": ctx.clients.region}
        if inputs.flag("objectLockEnabled"):
            extra["ObjectLockEnabledForBucket"] = True
        s3.create_bucket(Bucket=bucket, **extra)
        self._tag(ctx, bucket)
        return self._realized(ctx, bucket)

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        if "tagsAll" in changed:
            self._tag(ctx, old.id)
        return self._realized(ctx, old.id)  # forceDestroy only matters to delete

    def delete(self, ctx: Context, old: ResourceState) -> None:
        s3 = ctx.clients("s3")
        if old.inputs.get("forceDestroy"):
            try:
                empty_bucket(s3, old.id)
            except Exception as exc:
                if is_missing(exc):
                    return
                raise
        try:
            gone_ok(lambda: s3.delete_bucket(Bucket=old.id))
        except Exception as exc:
            if "BucketNotEmpty" in str(exc):
                raise DeployError(
                    f"bucket {old.id} is not empty and force_destroy is off: empty it first"
                ) from exc
            raise

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        return found(lambda: ctx.clients("s3").head_bucket(Bucket=old.id))

    def owns(self, old: ResourceState) -> str | None:
        # Only an emptied bucket takes its objects along.
        return _bucket_key(old.id) if old.inputs.get("forceDestroy") else None

    def _tag(self, ctx: Context, bucket: str) -> None:
        s3 = ctx.clients("s3")
        if ctx.tags:
            tag_set = [{"Key": k, "Value": v} for k, v in sorted(ctx.tags.items())]
            s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set})
        else:
            gone_ok(lambda: s3.delete_bucket_tagging(Bucket=bucket))

    def _realized(self, ctx: Context, bucket: str) -> Realized:
        region = ctx.clients.region
        return Realized(
            bucket,
            {
                "bucket": bucket,
                "arn": f"arn:aws:s3:::{bucket}",
                "region": region,
                "bucketDomainName": f"{bucket}.s3.amazonaws.com",
                "bucketRegionalDomainName": f"{bucket}.s3.{region}.amazonaws.com",
                "tagsAll": ctx.tags,
            },
        )


def empty_bucket(s3: Any, bucket: str) -> None:
    """Delete every object version and delete marker (a versioned bucket keeps both)."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        doomed = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for kind in ("Versions", "DeleteMarkers")
            for item in page.get(kind, [])
        ]
        for start in range(0, len(doomed), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed[start : start + 1000]})


class _BucketSetting(Realizer):
    """A setting that lives on a bucket: put to create or update, delete to remove."""

    replace_on = frozenset({"bucket", "expectedBucketOwner"})

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        bucket = inputs.text("bucket")
        self.put(ctx.clients("s3"), bucket, inputs)
        return Realized(bucket, {})

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        return self.create(ctx, inputs)

    def container(self, old: ResourceState) -> str | None:
        return _bucket_key(old.id)

    def put(self, s3: Any, bucket: str, inputs: Inputs) -> None:
        raise NotImplementedError

    def live(self, call: Any) -> dict[str, Any] | None:
        """The setting as S3 reports it; None if the bucket or the setting is missing."""
        try:
            result: dict[str, Any] = call()
        except Exception as exc:
            if is_missing(exc):
                return None
            raise
        return result


class BucketPublicAccessBlock(_BucketSetting):
    type = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
    _FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    supported = frozenset({"bucket", *_FLAGS})

    def put(self, s3: Any, bucket: str, inputs: Inputs) -> None:
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=self._config(inputs.values)
        )

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gone_ok(lambda: ctx.clients("s3").delete_public_access_block(Bucket=old.id))

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        # New buckets block public access by default: compare, not just look.
        live = self.live(lambda: ctx.clients("s3").get_public_access_block(Bucket=old.id))
        wanted = self._config(old.inputs)
        return live is not None and live["PublicAccessBlockConfiguration"] == wanted

    def _config(self, values: dict[str, Any]) -> dict[str, bool]:
        return {flag[:1].upper() + flag[1:]: bool(values.get(flag)) for flag in self._FLAGS}


class BucketOwnershipControls(_BucketSetting):
    type = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
    supported = frozenset({"bucket", "rule"})

    def put(self, s3: Any, bucket: str, inputs: Inputs) -> None:
        ownership = inputs.mapping("rule")["objectOwnership"]
        s3.put_bucket_ownership_controls(
            Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": ownership}]}
        )

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gone_ok(lambda: ctx.clients("s3").delete_bucket_ownership_controls(Bucket=old.id))

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        # New buckets are BucketOwnerEnforced by default: compare, not just look.
        s3 = ctx.clients("s3")
        live = self.live(lambda: s3.get_bucket_ownership_controls(Bucket=old.id))
        if live is None:
            return False
        rules = live["OwnershipControls"]["Rules"]
        return bool(rules) and rules[0]["ObjectOwnership"] == old.inputs["rule"]["objectOwnership"]


class BucketVersioning(_BucketSetting):
    type = "aws:s3/bucketVersioning:BucketVersioning"
    supported = frozenset({"bucket", "versioningConfiguration"})

    def put(self, s3: Any, bucket: str, inputs: Inputs) -> None:
        config = api_shape(inputs.mapping("versioningConfiguration"))
        if "MfaDelete" in config:
            config["MFADelete"] = config.pop("MfaDelete")
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=config)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        # Versioning cannot be switched off, only suspended (what the provider does too).
        s3 = ctx.clients("s3")
        gone_ok(
            lambda: s3.put_bucket_versioning(
                Bucket=old.id, VersioningConfiguration={"Status": "Suspended"}
            )
        )

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        wanted = old.inputs.get("versioningConfiguration", {}).get("status")
        try:
            status = ctx.clients("s3").get_bucket_versioning(Bucket=old.id).get("Status")
        except Exception as exc:
            if is_missing(exc):
                return False
            raise
        # A fresh bucket has no status at all: the setting is gone.
        return bool(status) and status == wanted


class BucketServerSideEncryptionConfiguration(_BucketSetting):
    type = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    supported = frozenset({"bucket", "rules"})

    def put(self, s3: Any, bucket: str, inputs: Inputs) -> None:
        rules = api_shape(inputs.items("rules"))
        for rule in rules:
            default = rule.get("ApplyServerSideEncryptionByDefault", {})
            if "SseAlgorithm" in default:
                default["SSEAlgorithm"] = default.pop("SseAlgorithm")
            if "KmsMasterKeyId" in default:
                default["KMSMasterKeyID"] = default.pop("KmsMasterKeyId")
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gone_ok(lambda: ctx.clients("s3").delete_bucket_encryption(Bucket=old.id))

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        # Every new bucket has default encryption (SSE-S3): compare, not just look.
        live = self.live(lambda: ctx.clients("s3").get_bucket_encryption(Bucket=old.id))
        if live is None:
            return False
        rules = live["ServerSideEncryptionConfiguration"]["Rules"]
        have = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
        want = (old.inputs.get("rules") or [{}])[0].get("applyServerSideEncryptionByDefault", {})
        return bool(
            have.get("SSEAlgorithm") == want.get("sseAlgorithm")
            and have.get("KMSMasterKeyID") == want.get("kmsMasterKeyId")
        )


class BucketPolicy(_BucketSetting):
    type = "aws:s3/bucketPolicy:BucketPolicy"
    supported = frozenset({"bucket", "policy"})

    def put(self, s3: Any, bucket: str, inputs: Inputs) -> None:
        s3.put_bucket_policy(Bucket=bucket, Policy=inputs.text("policy"))

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gone_ok(lambda: ctx.clients("s3").delete_bucket_policy(Bucket=old.id))

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        return found(lambda: ctx.clients("s3").get_bucket_policy(Bucket=old.id))


class BucketLifecycleConfiguration(_BucketSetting):
    type = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    supported = frozenset({"bucket", "rules", "transitionDefaultMinimumObjectSize"})

    def put(self, s3: Any, bucket: str, inputs: Inputs) -> None:
        extra = {}
        minimum = inputs.opt_text("transitionDefaultMinimumObjectSize")
        if minimum:
            extra["TransitionDefaultMinimumObjectSize"] = minimum
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={"Rules": api_shape(inputs.items("rules"))},
            **extra,
        )

    def delete(self, ctx: Context, old: ResourceState) -> None:
        gone_ok(lambda: ctx.clients("s3").delete_bucket_lifecycle(Bucket=old.id))

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        s3 = ctx.clients("s3")
        return found(lambda: s3.get_bucket_lifecycle_configuration(Bucket=old.id))


class BucketObjectv2(Realizer):
    type = "aws:s3/bucketObjectv2:BucketObjectv2"
    supported = frozenset(
        {"bucket", "key", "source", "content", "contentType", "cacheControl", "forceDestroy"}
    )
    replace_on = frozenset({"bucket", "key"})
    taggable = True

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        bucket, key = inputs.text("bucket"), inputs.text("key")
        source = inputs.raw("source")
        if isinstance(source, pulumi.Asset):
            body = asset_bytes(source)
        elif inputs.opt_text("content") is not None:
            body = inputs.text("content").encode()
        else:
            raise DeployError("needs `source` (a file or string asset) or `content`")
        extra: dict[str, Any] = {}
        if inputs.opt_text("contentType"):
            extra["ContentType"] = inputs.text("contentType")
        if inputs.opt_text("cacheControl"):
            extra["CacheControl"] = inputs.text("cacheControl")
        if ctx.tags:
            extra["Tagging"] = urllib.parse.urlencode(sorted(ctx.tags.items()))
        response = ctx.clients("s3").put_object(Bucket=bucket, Key=key, Body=body, **extra)
        return Realized(
            key,
            {
                "etag": str(response.get("ETag", "")).strip('"'),
                "versionId": response.get("VersionId") or "",
                "tagsAll": ctx.tags,
            },
        )

    def update(
        self, ctx: Context, inputs: Inputs, old: ResourceState, changed: set[str]
    ) -> Realized:
        return self.create(ctx, inputs)

    def delete(self, ctx: Context, old: ResourceState) -> None:
        # Every version of the key, as the provider does: deleting only the current one
        # would leave the old bytes behind as a noncurrent version.
        s3 = ctx.clients("s3")
        bucket, key = old.inputs["bucket"], old.id
        try:
            paginator = s3.get_paginator("list_object_versions")
            pages = list(paginator.paginate(Bucket=bucket, Prefix=key))
        except Exception as exc:
            if is_missing(exc):
                return
            raise
        doomed = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for page in pages
            for kind in ("Versions", "DeleteMarkers")
            for item in page.get(kind, [])
            if item["Key"] == key
        ]
        if doomed:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed})

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        s3 = ctx.clients("s3")
        return found(lambda: s3.head_object(Bucket=old.inputs["bucket"], Key=old.id))

    def container(self, old: ResourceState) -> str | None:
        return _bucket_key(str(old.inputs["bucket"]))


REALIZERS: list[Realizer] = [
    Bucket(),
    BucketPublicAccessBlock(),
    BucketOwnershipControls(),
    BucketVersioning(),
    BucketServerSideEncryptionConfiguration(),
    BucketPolicy(),
    BucketLifecycleConfiguration(),
    BucketObjectv2(),
]
