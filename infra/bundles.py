"""What goes into each Lambda function and its layers: the zips the layers/ builders made.

The program only looks the zips up (deterministic, content-addressed, under
build/package/); it never builds them, so a `pulumi up` needs no pip and no network.
`inferstack up` (or `inferstack package`) builds them first. A zip that is not built
for the current sources, or a function whose code and layers exceed Lambda's limits,
stops the program before it declares anything.

A zip over Lambda's direct-upload limit (50 MB zipped, functions and layers alike) is
uploaded to the artifact bucket first and handed to Lambda as `s3_bucket`/`s3_key`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from infra.artifacts import Artifact
from infra.errors import ArtifactMissingError, PackageBudgetError
from layers.archive import Built
from layers.budget import (
    DEFAULT_TMP_BYTES,
    MAX_DIRECT_ZIP_BYTES,
    Budget,
    check_ephemeral_storage,
)
from layers.errors import BudgetError, NotBuiltError
from layers.model import MOUNT
from stacks.schema import LambdaConfig, ModelConfig

# Zips bigger than this go through the artifact bucket. Read at each call, so a test can
# lower it to send a small zip the S3 way.
DIRECT_UPLOAD_LIMIT = MAX_DIRECT_ZIP_BYTES


@dataclass(frozen=True)
class Zip:
    """One built zip the program deploys."""

    name: str
    path: Path
    sha256: str
    zipped_bytes: int

    @classmethod
    def of(cls, built: Built) -> Zip:
        return cls(built.name, built.path, built.sha256, built.zipped_bytes)

    @property
    def via_s3(self) -> bool:
        return self.zipped_bytes > DIRECT_UPLOAD_LIMIT

    @property
    def key(self) -> str:
        """Its key in the artifact bucket: content-addressed, so changed code is a new key
        (and a code update of the function or a new layer version)."""
        return f"code/{self.name}/{self.sha256}.zip"


@dataclass(frozen=True)
class FunctionBundle:
    code: Zip
    runtime_layer: Zip
    # None when the model is delivered from S3.
    model_layer: Zip | None
    budget: Budget
    # The function's /tmp (MB): the stack's value, or sized from the artifact (layers.budget).
    ephemeral_storage_mb: int = DEFAULT_TMP_BYTES // 1_048_576


@dataclass(frozen=True)
class CodeSource:
    """A Function's or LayerVersion's code: `code`, or `s3_bucket` with `s3_key`."""

    code: pulumi.Archive | None = None
    s3_bucket: pulumi.Input[str] | None = None
    s3_key: pulumi.Input[str] | None = None


class CodeBucket:
    """The artifact bucket as where zips over the direct-upload limit go first.

    One object per distinct zip, however many functions or layers use it (every function
    of a runtime shares one code zip): a key has one owner, and removing one model never
    deletes code another one names. Named after the zip, not the function, for that reason.
    """

    def __init__(
        self,
        prefix: str,
        bucket: pulumi.Input[str],
        ready: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions,
    ) -> None:
        self._prefix = prefix
        self._bucket = bucket
        # Uploads wait for these (the bucket's encryption and versioning settings).
        self._opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=ready))
        self._uploads: dict[str, aws.s3.BucketObjectv2] = {}

    def source(self, zip_: Zip) -> CodeSource:
        """`zip_` in the API call itself, or, over the limit, uploaded here first."""
        if not zip_.via_s3:
            return CodeSource(code=pulumi.FileArchive(str(zip_.path)))
        upload = self._uploads.get(zip_.key)
        if upload is None:
            upload = aws.s3.BucketObjectv2(
                f"{self._prefix}-code-{zip_.name}",
                bucket=self._bucket,
                key=zip_.key,
                source=pulumi.FileAsset(str(zip_.path)),
                content_type="application/zip",
                opts=self._opts,
            )
            self._uploads[zip_.key] = upload
        return CodeSource(s3_bucket=upload.bucket, s3_key=upload.key)


def function_bundle(
    root: Path, model: ModelConfig, function: LambdaConfig, artifact: Artifact, stack: str
) -> FunctionBundle:
    """The built zips of `model`'s function, checked against Lambda's size limits."""
    from layers.package import package

    try:
        result = package(
            artifact.directory,
            function.runtime,
            function.architecture,
            model.delivery,
            root=root,
            build=False,
        )
        ephemeral_storage_mb = check_ephemeral_storage(
            function.ephemeral_storage_mb,
            result.ephemeral_storage_mb,
            f"models[{model.name}].lambda.ephemeral_storage_mb",
        )
    except NotBuiltError as exc:
        raise ArtifactMissingError(
            f"model {model.name!r}: {exc}. `inferstack up --stack {stack}` builds what is "
            "missing before it deploys"
        ) from exc
    except BudgetError as exc:
        raise PackageBudgetError(f"model {model.name!r}: {exc}") from exc
    return FunctionBundle(
        code=Zip.of(result.function),
        runtime_layer=Zip.of(result.runtime_layer),
        model_layer=Zip.of(result.model_layer) if result.model_layer else None,
        budget=result.budget,
        ephemeral_storage_mb=ephemeral_storage_mb,
    )


def model_dir(name: str) -> str:
    return f"{MOUNT}/{name}"
