"""Model delivery: a MODEL_URI becomes a local artifact directory.

A local directory (a layer under /opt included) is used in place. `s3://bucket/prefix`
is downloaded at cold start to /tmp, once per execution environment: `manifest.json`
first, then every file it lists, each checked against its sha256 while it streams.
Only `s3:GetObject` is needed (no listing). Transient S3 failures are retried with
exponential backoff. boto3 is imported only here and only for s3:// URIs: Lambda
provides it, so it is not in the runtime layer.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from model_runtime.errors import ArtifactError, ArtifactIntegrityError
from model_runtime.manifest import MANIFEST_FILE, Manifest

logger = logging.getLogger("inferstack")

S3_SCHEME = "s3://"
# Present only in a fully downloaded and verified directory.
COMPLETE_MARKER = ".complete"
# S3 error codes worth another try; anything else (403, 404, ...) fails at once.
TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "500",
        "502",
        "503",
        "504",
    }
)


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str) -> S3Location | None:
        if not uri.startswith(S3_SCHEME):
            return None
        bucket, _, prefix = uri[len(S3_SCHEME) :].partition("/")
        prefix = prefix.strip("/")
        if not bucket or not prefix:
            return None
        return cls(bucket, prefix)

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def __str__(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.prefix}"


@dataclass(frozen=True)
class Retry:
    attempts: int = 5
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter (attempt counts from 1)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)


class TransientDownloadError(ArtifactError):
    """A download failed in a way that another try may fix."""


def materialize(
    uri: str,
    *,
    cache_dir: Path | None = None,
    client: Any = None,
    retry: Retry | None = None,
    backend: str = "onnxruntime",
) -> Path:
    """The local artifact directory for `uri` (downloading s3:// URIs once, only the
    files `backend` serves with)."""
    if not uri.startswith("s3:"):
        path = Path(uri)
        if not path.is_dir():
            raise ArtifactError(f"model directory {path} (MODEL_URI) does not exist")
        return path
    location = S3Location.parse(uri)
    if location is None:
        raise ArtifactError(f"model URI {uri!r} is not s3://<bucket>/<prefix>")
    return download(location, cache_dir=cache_dir, client=client, retry=retry, backend=backend)


def default_cache_dir() -> Path:
    # Lambda allows writes only under /tmp, which is what tempfile resolves to there.
    return Path(tempfile.gettempdir()) / "inferstack-models"


def download(
    location: S3Location,
    *,
    cache_dir: Path | None = None,
    client: Any = None,
    retry: Retry | None = None,
    backend: str = "onnxruntime",
) -> Path:
    """Download the artifact at `location` unless this environment already has it."""
    cache_dir = cache_dir or default_cache_dir()
    target = cache_dir / hashlib.sha256(f"{location}\n{backend}".encode()).hexdigest()[:32]
    if (target / COMPLETE_MARKER).is_file():
        return target
    retry = retry or Retry()
    client = client or _s3_client()
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=cache_dir))
    try:
        started = time.perf_counter()
        fetch_manifest = partial(_fetch, client, location, MANIFEST_FILE, None)
        manifest_bytes = _with_retry(retry, location, MANIFEST_FILE, fetch_manifest)
        manifest = Manifest.parse(manifest_bytes, f"{location}/{MANIFEST_FILE}")
        (staging / MANIFEST_FILE).write_bytes(manifest_bytes)
        names = sorted(manifest.files_for(backend))
        for name in names:
            destination = staging / _safe_name(name, location)
            destination.parent.mkdir(parents=True, exist_ok=True)
            sha256 = manifest.files[name].sha256
            fetch = partial(_fetch, client, location, name, (destination, sha256))
            _with_retry(retry, location, name, fetch)
        (staging / COMPLETE_MARKER).write_text(str(location), encoding="utf-8")
        try:
            staging.rename(target)
        except OSError:
            # Another process of this environment finished first; its copy is as good.
            if not (target / COMPLETE_MARKER).is_file():
                raise
        logger.info(
            "downloaded %s (%d files) in %.2fs",
            location,
            len(names) + 1,
            time.perf_counter() - started,
        )
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fetch(client: Any, location: S3Location, name: str, verify: tuple[Path, str] | None) -> bytes:
    """GET one object; stream it to `verify[0]` checking sha256 `verify[1]`, or return it."""
    key = location.key(name)
    try:
        body = client.get_object(Bucket=location.bucket, Key=key)["Body"]
        if verify is None:
            data: bytes = body.read()
            return data
        path, expected = verify
        digest = hashlib.sha256()
        with open(path, "wb") as handle:
            for chunk in iter(lambda: body.read(1 << 20), b""):
                digest.update(chunk)
                handle.write(chunk)
    except Exception as exc:
        if _is_transient(exc):
            raise TransientDownloadError(f"{S3_SCHEME}{location.bucket}/{key}: {exc}") from exc
        raise ArtifactError(
            f"cannot download model file {S3_SCHEME}{location.bucket}/{key}: {exc}"
        ) from exc
    actual = digest.hexdigest()
    if actual != expected:
        # A cut-off transfer looks like this too, so it is retried before giving up.
        raise TransientDownloadError(
            f"model file {S3_SCHEME}{location.bucket}/{key} is corrupt or was modified:"
            f" sha256 expected {expected}, actual {actual}"
        )
    return b""


def _with_retry(retry: Retry, location: S3Location, name: str, fetch: Callable[[], bytes]) -> bytes:
    for attempt in range(1, retry.attempts + 1):
        try:
            return fetch()
        except TransientDownloadError as exc:
            if attempt == retry.attempts:
                if "sha256 expected" in str(exc):
                    raise ArtifactIntegrityError(f"{exc} (after {attempt} attempts)") from exc
                raise ArtifactError(
                    f"cannot download model file {location.key(name)} from {location}:"
                    f" {exc.__cause__ or exc} (after {attempt} attempts)"
                ) from exc
            delay = retry.delay(attempt)
            logger.warning("retrying in %.2fs (attempt %d): %s", delay, attempt, exc)
            retry.sleep(delay)
    raise AssertionError("unreachable")


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    try:
        from botocore import exceptions as boto
    except ImportError:  # not on Lambda and no boto3: nothing botocore-specific to classify
        return False
    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return str(error.get("Code", "")) in TRANSIENT_CODES or int(status or 0) >= 500
    return isinstance(
        exc,
        (boto.HTTPClientError, boto.ConnectionError, boto.IncompleteReadError),
    )


def _safe_name(name: str, location: S3Location) -> str:
    """Manifest file names come from S3: never let one write outside the directory."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or name != path.as_posix():
        raise ArtifactError(f"model manifest {location}/{MANIFEST_FILE} lists a bad file {name!r}")
    return os.path.join(*path.parts)


def _s3_client() -> Any:
    import boto3
    from botocore.config import Config

    # botocore retries requests itself; reads of a body that breaks mid-stream are ours.
    config = Config(
        retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30
    )
    return boto3.client("s3", config=config)
