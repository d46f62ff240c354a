"""Model delivery: a MODEL_URI becomes a local artifact directory.

A local directory (a layer under /opt included) is used in place. `s3://bucket/prefix`
is downloaded at cold start to /tmp, once per execution environment: `manifest.json`
first, then every file it lists, each checked against its sha256 while it streams.
A big file comes as parallel byte ranges (ranged GETs, sized from the manifest's
`size`, so no HEAD): the ranges are hashed and written in order as they arrive, with at
most `threads + 1` of them in memory. Only `s3:GetObject` is needed (no listing).
Transient failures are retried with exponential backoff, a range on its own. Objects
are read through an ObjectReader: for S3 that is `model_runtime.s3_reader`, the one
module that knows botocore.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import Protocol, TypeVar

from model_runtime.errors import (
    ArtifactError,
    ArtifactIntegrityError,
    ObjectReadError,
    TransientReadError,
)
from model_runtime.manifest import MANIFEST_FILE, Manifest
from model_runtime.s3_reader import S3Reader

logger = logging.getLogger("inferstack")

S3_SCHEME = "s3://"
# Present only in a fully downloaded and verified directory.
COMPLETE_MARKER = ".complete"

T = TypeVar("T")


class ObjectReader(Protocol):
    """Objects of a bucket, by key. Failures are ObjectNotFound, TransientReadError (worth
    another try) or another ObjectReadError."""

    def read(self, bucket: str, key: str) -> bytes:
        """The whole object."""
        ...

    def stream(self, bucket: str, key: str, write: Callable[[bytes], object]) -> None:
        """The object, chunk by chunk, into `write`."""
        ...

    def read_range(self, bucket: str, key: str, start: int, end: int) -> bytes:
        """Bytes `start` to `end` (exclusive) of the object; fewer where it ends sooner
        (none when it ends before `start`)."""
        ...


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

    def url(self, name: str) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key(name)}"

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


@dataclass(frozen=True)
class Ranges:
    """How a big file is fetched: `range_bytes` at a time on `threads` threads. A file
    under two ranges takes one GET (a range costs a request)."""

    range_bytes: int = 8 * 1024 * 1024
    threads: int = 8

    def spans(self, size: int) -> list[tuple[int, int]] | None:
        """The (start, end) byte ranges of a file of `size`, or None for one GET."""
        if size < 2 * self.range_bytes:
            return None
        return [
            (start, min(start + self.range_bytes, size))
            for start in range(0, size, self.range_bytes)
        ]


def materialize(
    uri: str,
    *,
    cache_dir: Path | None = None,
    reader: ObjectReader | None = None,
    retry: Retry | None = None,
    ranges: Ranges | None = None,
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
    return download(
        location, cache_dir=cache_dir, reader=reader, retry=retry, ranges=ranges, backend=backend
    )


def default_cache_dir() -> Path:
    # Lambda allows writes only under /tmp, which is what tempfile resolves to there.
    return Path(tempfile.gettempdir()) / "inferstack-models"


def download(
    location: S3Location,
    *,
    cache_dir: Path | None = None,
    reader: ObjectReader | None = None,
    retry: Retry | None = None,
    ranges: Ranges | None = None,
    backend: str = "onnxruntime",
) -> Path:
    """Download the artifact at `location` unless this environment already has it."""
    cache_dir = cache_dir or default_cache_dir()
    target = cache_dir / hashlib.sha256(f"{location}\n{backend}".encode()).hexdigest()[:32]
    if (target / COMPLETE_MARKER).is_file():
        return target
    retry = retry or Retry()
    ranges = ranges or Ranges()
    reader = reader or S3Reader(max_connections=ranges.threads)
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=cache_dir))
    try:
        started = time.perf_counter()
        read_manifest = partial(_read, reader, location, MANIFEST_FILE)
        manifest_bytes = _with_retry(retry, location, MANIFEST_FILE, read_manifest)
        manifest = Manifest.parse(manifest_bytes, f"{location}/{MANIFEST_FILE}")
        (staging / MANIFEST_FILE).write_bytes(manifest_bytes)
        names = sorted(manifest.files_for(backend))
        for name in names:
            destination = staging / _safe_name(name, location)
            destination.parent.mkdir(parents=True, exist_ok=True)
            entry = manifest.files[name]
            spans = ranges.spans(entry.size)
            if spans is None:
                save = partial(_save, reader, location, name, destination, entry.sha256)
            else:
                fetch = partial(_fetch_range, reader, location, name, retry)
                save = partial(
                    _save_ranges,
                    fetch,
                    location,
                    name,
                    destination,
                    entry.sha256,
                    spans,
                    ranges.threads,
                )
            _with_retry(retry, location, name, save)
        (staging / COMPLETE_MARKER).write_text(str(location), encoding="utf-8")
        try:
            staging.rename(target)
        except OSError:
            # Another process of this environment finished first; its copy is as good.
            if not (target / COMPLETE_MARKER).is_file():
                raise
        elapsed = time.perf_counter() - started
        size = sum(manifest.files[name].size for name in names) + len(manifest_bytes)
        logger.info(
            "downloaded %s (%d files, %.1f MB) in %.2fs (%.0f MB/s)",
            location,
            len(names) + 1,
            size / 1e6,
            elapsed,
            size / 1e6 / elapsed if elapsed > 0 else 0.0,
        )
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _read(reader: ObjectReader, location: S3Location, name: str) -> bytes:
    try:
        return reader.read(location.bucket, location.key(name))
    except TransientReadError:
        raise
    except ObjectReadError as exc:
        raise ArtifactError(f"cannot download model file {location.url(name)}: {exc}") from exc


def _save(reader: ObjectReader, location: S3Location, name: str, path: Path, sha256: str) -> None:
    """Stream one object into `path`, checking its sha256 on the way."""
    digest = hashlib.sha256()
    try:
        with open(path, "wb") as handle:

            def write(chunk: bytes) -> None:
                digest.update(chunk)
                handle.write(chunk)

            reader.stream(location.bucket, location.key(name), write)
    except TransientReadError:
        raise
    except (ObjectReadError, OSError) as exc:
        raise ArtifactError(f"cannot download model file {location.url(name)}: {exc}") from exc
    _check_digest(location, name, sha256, digest.hexdigest())


def _save_ranges(
    fetch: Callable[[tuple[int, int]], bytes],
    location: S3Location,
    name: str,
    path: Path,
    sha256: str,
    spans: list[tuple[int, int]],
    threads: int,
) -> None:
    """Fetch `spans` on `threads` threads; hash and write them in order as they arrive.

    sha256 is sequential, so ranges are consumed in file order: at most `threads + 1`
    are held (in flight, fetched and waiting, or being written), each written once, never
    read back. A slow range holds the ones after it until it comes."""
    digest = hashlib.sha256()
    waiting = iter(spans)
    with ThreadPoolExecutor(threads, thread_name_prefix="model-download") as pool:
        pending: deque[Future[bytes]] = deque(
            pool.submit(fetch, span) for span in islice(waiting, threads + 1)
        )
        try:
            with open(path, "wb") as handle:
                while pending:
                    data = pending.popleft().result()
                    digest.update(data)
                    handle.write(data)
                    del data  # before the next range can fill its place
                    span = next(waiting, None)
                    if span is not None:
                        pending.append(pool.submit(fetch, span))
        except OSError as exc:
            raise ArtifactError(f"cannot download model file {location.url(name)}: {exc}") from exc
        finally:
            for future in pending:
                future.cancel()
    # An object shorter than the manifest says answers its last ranges short or empty:
    # its hash then differs like any other corruption's.
    _check_digest(location, name, sha256, digest.hexdigest())


def _fetch_range(
    reader: ObjectReader, location: S3Location, name: str, retry: Retry, span: tuple[int, int]
) -> bytes:
    """One range, its transient failures retried on their own."""

    def read() -> bytes:
        try:
            return reader.read_range(location.bucket, location.key(name), *span)
        except TransientReadError:
            raise
        except ObjectReadError as exc:
            raise ArtifactError(f"cannot download model file {location.url(name)}: {exc}") from exc

    return _with_retry(retry, location, name, read)


def _check_digest(location: S3Location, name: str, expected: str, actual: str) -> None:
    if actual != expected:
        # A cut-off transfer looks like this too, so it is tried again before giving up.
        raise ArtifactIntegrityError(
            f"model file {location.url(name)} is corrupt or was modified:"
            f" sha256 expected {expected}, actual {actual}"
        )


def _with_retry(retry: Retry, location: S3Location, name: str, fetch: Callable[[], T]) -> T:
    """`fetch()`, tried again after a TransientReadError or a sha256 mismatch."""
    for attempt in range(1, retry.attempts + 1):
        try:
            return fetch()
        except ArtifactIntegrityError as exc:
            if attempt == retry.attempts:
                raise ArtifactIntegrityError(f"{exc} (after {attempt} attempts)") from exc
            _wait(retry, attempt, str(exc))
        except TransientReadError as exc:
            if attempt == retry.attempts:
                raise ArtifactError(
                    f"cannot download model file {location.key(name)} from {location}:"
                    f" {exc} (after {attempt} attempts)"
                ) from exc
            _wait(retry, attempt, f"{location.url(name)}: {exc}")
    raise AssertionError("unreachable")


def _wait(retry: Retry, attempt: int, reason: str) -> None:
    delay = retry.delay(attempt)
    logger.warning("retrying in %.2fs (attempt %d): %s", delay, attempt, reason)
    retry.sleep(delay)


def _safe_name(name: str, location: S3Location) -> str:
    """Manifest file names come from S3: never let one write outside the directory."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or name != path.as_posix():
        raise ArtifactError(f"model manifest {location}/{MANIFEST_FILE} lists a bad file {name!r}")
    return os.path.join(*path.parts)
