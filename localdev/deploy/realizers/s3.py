"""S3: the artifact and data buckets, their settings (notifications among them), and the
model objects in them.

Each bucket setting is a put, a get and a delete call: a `Description`. Hand-written are
the bucket (an auto-name, a region constraint, tags by their own call, emptied before
delete when force_destroy says so) and its objects (bytes from an asset, every version
deleted)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

import pulumi
from botocore.exceptions import ClientError

from localdev.deploy.assets import asset_bytes
from localdev.deploy.aws import error_code
from localdev.deploy.realizers.base import (
    Context,
    Described,
    Description,
    Inputs,
    Realized,
    Realizer,
    api_shape,
    fetch,
    found,
    gone_ok,
    optional,
)
from localdev.deploy.state import ResourceState
from localdev.errors import DeployError

# HEAD requests have no error body: their code is the HTTP status.
_NO_BUCKET = frozenset({"NoSuchBucket", "404"})
_NO_OBJECT = frozenset({"NoSuchBucket", "NoSuchKey", "404"})


def _bucket_key(bucket: str) -> str:
    return f"s3:bucket:{bucket}"


class Bucket(Realizer):
    type = "aws:s3/bucket:Bucket"
    supported = frozenset({"bucket", "bucketPrefix", "forceDestroy", "objectLockEnabled"})
    replace_on = frozenset({"bucket", "bucketPrefix", "objectLockEnabled"})
    taggable = True

    def create(self, ctx: Context, inputs: Inputs) -> Realized:
        bucket = self._name(ctx, inputs)
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
        try:
            if old.inputs.get("forceDestroy"):
                empty_bucket(s3, old.id)
            s3.delete_bucket(Bucket=old.id)
        except ClientError as exc:
            if error_code(exc) == "NoSuchBucket":
                return
            if error_code(exc) == "BucketNotEmpty":
                raise DeployError(
                    f"bucket {old.id} is not empty and force_destroy is off: empty it first"
                ) from exc
            raise

    def exists(self, ctx: Context, old: ResourceState) -> bool:
        return found(lambda: ctx.clients("s3").head_bucket(Bucket=old.id), _NO_BUCKET)

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        bucket = self._name(ctx, inputs)
        s3 = ctx.clients("s3")
        return {bucket} if found(lambda: s3.head_bucket(Bucket=bucket), _NO_BUCKET) else set()

    def _name(self, ctx: Context, inputs: Inputs) -> str:
        return ctx.autoname(
            inputs.opt_text("bucket"),
            prefix=inputs.opt_text("bucketPrefix"),
            max_length=63,
            lowercase=True,
        )

    def owns(self, old: ResourceState) -> str | None:
        # Only an emptied bucket takes its objects along.
        return _bucket_key(old.id) if old.inputs.get("forceDestroy") else None

    def _tag(self, ctx: Context, bucket: str) -> None:
        s3 = ctx.clients("s3")
        if ctx.tags:
            tag_set = [{"Key": k, "Value": v} for k, v in sorted(ctx.tags.items())]
            s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set})
        else:
            gone_ok(lambda: s3.delete_bucket_tagging(Bucket=bucket), frozenset({"NoSuchTagSet"}))

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


def _bucket_setting(
    type_: str,
    *,
    supported: frozenset[str],
    put: str,
    put_args: Callable[[Inputs], dict[str, Any]],
    get: str,
    delete: str,
    missing: frozenset[str],
    delete_args: Callable[[ResourceState], dict[str, Any]] | None = None,
    is_present: Callable[[dict[str, Any], ResourceState], bool] | None = None,
) -> Description:
    """A setting that lives on a bucket: put to create or update, delete to remove; its
    physical id is the bucket's name."""
    return Description(
        type=type_,
        service="s3",
        supported=supported,
        create=put,
        create_args=lambda _ctx, inputs: {"Bucket": inputs.text("bucket"), **put_args(inputs)},
        get=get,
        delete=delete,
        address=lambda old: {"Bucket": old.id},
        physical_id=lambda inputs, _response: inputs.text("bucket"),
        missing=missing,
        replace_on=frozenset({"bucket", "expectedBucketOwner"}),
        update=put,
        delete_args=delete_args,
        is_present=is_present,
        container=lambda old: _bucket_key(old.id),
    )


_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)


def _access_block(values: dict[str, Any]) -> dict[str, bool]:
    return {flag[:1].upper() + flag[1:]: bool(values.get(flag)) for flag in _ACCESS_FLAGS}


PUBLIC_ACCESS_BLOCK = _bucket_setting(
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    supported=frozenset({"bucket", *_ACCESS_FLAGS}),
    put="put_public_access_block",
    put_args=lambda inputs: {"PublicAccessBlockConfiguration": _access_block(inputs.values)},
    get="get_public_access_block",
    delete="delete_public_access_block",
    missing=frozenset({"NoSuchBucket", "NoSuchPublicAccessBlockConfiguration"}),
    # New buckets block public access by default: compare, not just look.
    is_present=lambda live, old: (
        live["PublicAccessBlockConfiguration"] == _access_block(old.inputs)
    ),
)


def _ownership_is_present(live: dict[str, Any], old: ResourceState) -> bool:
    # New buckets are BucketOwnerEnforced by default: compare, not just look.
    rules = live["OwnershipControls"]["Rules"]
    return bool(rules) and rules[0]["ObjectOwnership"] == old.inputs["rule"]["objectOwnership"]


OWNERSHIP_CONTROLS = _bucket_setting(
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    supported=frozenset({"bucket", "rule"}),
    put="put_bucket_ownership_controls",
    put_args=lambda inputs: {
        "OwnershipControls": {
            "Rules": [{"ObjectOwnership": inputs.mapping("rule")["objectOwnership"]}]
        }
    },
    get="get_bucket_ownership_controls",
    delete="delete_bucket_ownership_controls",
    missing=frozenset({"NoSuchBucket", "OwnershipControlsNotFoundError"}),
    is_present=_ownership_is_present,
)


def _versioning(inputs: Inputs) -> dict[str, Any]:
    config = api_shape(inputs.mapping("versioningConfiguration"))
    if "MfaDelete" in config:
        config["MFADelete"] = config.pop("MfaDelete")
    return {"VersioningConfiguration": config}


def _versioning_is_present(live: dict[str, Any], old: ResourceState) -> bool:
    # A fresh bucket has no status at all: the setting is gone.
    status = live.get("Status")
    return bool(status) and status == old.inputs.get("versioningConfiguration", {}).get("status")


VERSIONING = _bucket_setting(
    "aws:s3/bucketVersioning:BucketVersioning",
    supported=frozenset({"bucket", "versioningConfiguration"}),
    put="put_bucket_versioning",
    put_args=_versioning,
    get="get_bucket_versioning",
    # Versioning cannot be switched off, only suspended (what the provider does too).
    delete="put_bucket_versioning",
    delete_args=lambda old: {
        "Bucket": old.id,
        "VersioningConfiguration": {"Status": "Suspended"},
    },
    missing=frozenset({"NoSuchBucket"}),
    is_present=_versioning_is_present,
)


def _encryption(inputs: Inputs) -> dict[str, Any]:
    rules = api_shape(inputs.items("rules"))
    for rule in rules:
        default = rule.get("ApplyServerSideEncryptionByDefault", {})
        if "SseAlgorithm" in default:
            default["SSEAlgorithm"] = default.pop("SseAlgorithm")
        if "KmsMasterKeyId" in default:
            default["KMSMasterKeyID"] = default.pop("KmsMasterKeyId")
    return {"ServerSideEncryptionConfiguration": {"Rules": rules}}


def _encryption_is_present(live: dict[str, Any], old: ResourceState) -> bool:
    # Every new bucket has default encryption (SSE-S3): compare, not just look.
    rules = live["ServerSideEncryptionConfiguration"]["Rules"]
    have = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
    want = (old.inputs.get("rules") or [{}])[0].get("applyServerSideEncryptionByDefault", {})
    return bool(
        have.get("SSEAlgorithm") == want.get("sseAlgorithm")
        and have.get("KMSMasterKeyID") == want.get("kmsMasterKeyId")
    )


ENCRYPTION = _bucket_setting(
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    supported=frozenset({"bucket", "rules"}),
    put="put_bucket_encryption",
    put_args=_encryption,
    get="get_bucket_encryption",
    delete="delete_bucket_encryption",
    missing=frozenset({"NoSuchBucket", "ServerSideEncryptionConfigurationNotFoundError"}),
    is_present=_encryption_is_present,
)

POLICY = _bucket_setting(
    "aws:s3/bucketPolicy:BucketPolicy",
    supported=frozenset({"bucket", "policy"}),
    put="put_bucket_policy",
    put_args=lambda inputs: {"Policy": inputs.text("policy")},
    get="get_bucket_policy",
    delete="delete_bucket_policy",
    missing=frozenset({"NoSuchBucket", "NoSuchBucketPolicy"}),
)


def _lifecycle(inputs: Inputs) -> dict[str, Any]:
    return {
        "LifecycleConfiguration": {"Rules": api_shape(inputs.items("rules"))},
        **optional(
            TransitionDefaultMinimumObjectSize=inputs.opt_text("transitionDefaultMinimumObjectSize")
        ),
    }


LIFECYCLE = _bucket_setting(
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    supported=frozenset({"bucket", "rules", "transitionDefaultMinimumObjectSize"}),
    put="put_bucket_lifecycle_configuration",
    put_args=_lifecycle,
    get="get_bucket_lifecycle_configuration",
    delete="delete_bucket_lifecycle",
    missing=frozenset({"NoSuchBucket", "NoSuchLifecycleConfiguration"}),
)


def _lambda_configurations(inputs: Inputs) -> list[dict[str, Any]]:
    """The `lambdaFunctions` entries as S3 takes them; an entry without an `id` gets one
    from S3 (the provider makes one up)."""
    configurations = []
    for entry in inputs.items("lambdaFunctions"):
        rules = [
            {"Name": name, "Value": entry[key]}
            for name, key in (("Prefix", "filterPrefix"), ("Suffix", "filterSuffix"))
            if entry.get(key)
        ]
        configuration: dict[str, Any] = {
            "LambdaFunctionArn": entry["lambdaFunctionArn"],
            "Events": list(entry["events"]),
            **optional(Id=entry.get("id") or None),
        }
        if rules:
            configuration["Filter"] = {"Key": {"FilterRules": rules}}
        configurations.append(configuration)
    return configurations


def _comparable(configuration: dict[str, Any]) -> tuple[Any, ...]:
    rules = configuration.get("Filter", {}).get("Key", {}).get("FilterRules", [])
    return (
        configuration["LambdaFunctionArn"],
        tuple(sorted(configuration["Events"])),
        # S3 may answer the rule names in lower case ("prefix").
        tuple(sorted((rule["Name"].lower(), rule["Value"]) for rule in rules)),
    )


def _notification_is_present(live: dict[str, Any], old: ResourceState) -> bool:
    # Every bucket answers a notification configuration (an empty one when none is set):
    # compare, not just look; ids aside (S3 chooses those the program does not).
    declared = [_comparable(item) for item in _lambda_configurations(Inputs(old.inputs))]
    have = [_comparable(item) for item in live.get("LambdaFunctionConfigurations", [])]
    return sorted(have) == sorted(declared)


NOTIFICATION = _bucket_setting(
    "aws:s3/bucketNotification:BucketNotification",
    supported=frozenset({"bucket", "lambdaFunctions"}),
    put="put_bucket_notification_configuration",
    put_args=lambda inputs: {
        "NotificationConfiguration": optional(
            LambdaFunctionConfigurations=_lambda_configurations(inputs) or None
        )
    },
    get="get_bucket_notification_configuration",
    # A bucket has one notification configuration: deleting it is putting an empty one.
    delete="put_bucket_notification_configuration",
    delete_args=lambda old: {"Bucket": old.id, "NotificationConfiguration": {}},
    missing=frozenset({"NoSuchBucket"}),
    is_present=_notification_is_present,
)


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
        paginator = s3.get_paginator("list_object_versions")
        pages = fetch(lambda: list(paginator.paginate(Bucket=bucket, Prefix=key)), _NO_BUCKET)
        if pages is None:
            return
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
        return found(lambda: s3.head_object(Bucket=old.inputs["bucket"], Key=old.id), _NO_OBJECT)

    def find(self, ctx: Context, inputs: Inputs) -> set[str]:
        return set()  # a put: a second one overwrites the first (and it goes with its bucket)

    def container(self, old: ResourceState) -> str | None:
        return _bucket_key(str(old.inputs["bucket"]))


REALIZERS: list[Realizer] = [
    Bucket(),
    Described(PUBLIC_ACCESS_BLOCK),
    Described(OWNERSHIP_CONTROLS),
    Described(VERSIONING),
    Described(ENCRYPTION),
    Described(POLICY),
    Described(LIFECYCLE),
    Described(NOTIFICATION),
    BucketObjectv2(),
]
