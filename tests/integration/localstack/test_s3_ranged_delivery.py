"""Delivery's ranged download against LocalStack's real S3: a file of several ranges comes
as parallel ranged GETs (s3:GetObject with a Range header, nothing else), hashed in order;
a replaced or shortened object fails with the file's name and both hashes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localdev.localstack import manager
from model_runtime.delivery import Ranges, Retry, materialize
from model_runtime.errors import ArtifactIntegrityError
from model_runtime.manifest import MANIFEST_FILE, MODEL_FILE, Manifest, hash_files, sha256_file
from model_runtime.s3_reader import S3Reader
from tests.support.localstack import client
from tests.support.project import write_artifact

RANGE = 1 << 20
SIZE = 5 * RANGE + 12345  # five full ranges and a short one


@pytest.fixture(scope="module")
def s3(localstack: manager.Status) -> Any:
    return client("s3")


@pytest.fixture
def bucket(s3: Any) -> Iterator[str]:
    name = f"ranged-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=name, Key=item["Key"])
    s3.delete_bucket(Bucket=name)


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    directory = tmp_path / "big"
    manifest = write_artifact(directory, "big")
    (directory / MODEL_FILE).write_bytes(os.urandom(SIZE))
    manifest.model_copy(update={"files": hash_files(directory, [MODEL_FILE])}).write(directory)
    return directory


def upload(s3: Any, bucket: str, directory: Path, prefix: str) -> str:
    for name in (MANIFEST_FILE, MODEL_FILE):
        s3.upload_file(str(directory / name), bucket, f"{prefix}/{name}")
    return f"s3://{bucket}/{prefix}"


def recording_reader(s3: Any) -> tuple[S3Reader, list[tuple[str, str | None]]]:
    """An S3Reader whose client records every request's operation and Range header."""
    requests: list[tuple[str, str | None]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        requests.append((model.name, params.get("Range")))

    s3.meta.events.register("provide-client-params.s3.*", record)
    return S3Reader(s3, max_connections=4), requests


def test_a_big_file_downloads_in_parallel_ranges(
    artifact: Path, bucket: str, tmp_path: Path
) -> None:
    s3 = client("s3", max_pool_connections=4)
    uri = upload(s3, bucket, artifact, "models/big/v1")
    reader, requests = recording_reader(s3)
    directory = materialize(
        uri, cache_dir=tmp_path / "cache", reader=reader, ranges=Ranges(RANGE, threads=4)
    )
    assert sha256_file(directory / MODEL_FILE) == Manifest.load(artifact).files[MODEL_FILE].sha256
    assert {operation for operation, _ in requests} == {"GetObject"}
    ranges = sorted(header for _, header in requests if header is not None)
    expected = [f"bytes={start}-{min(start + RANGE, SIZE) - 1}" for start in range(0, SIZE, RANGE)]
    assert ranges == sorted(expected)
    assert len(requests) == len(expected) + 1  # and the manifest, whole


@pytest.mark.parametrize("change", ["replaced", "shortened"])
def test_a_changed_object_fails_with_both_hashes(
    artifact: Path, bucket: str, tmp_path: Path, change: str
) -> None:
    s3 = client("s3")
    prefix = "models/big/v1"
    uri = upload(s3, bucket, artifact, prefix)
    data = os.urandom(SIZE) if change == "replaced" else os.urandom(2 * RANGE + 7)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/{MODEL_FILE}", Body=data)
    retry = Retry(attempts=2, base_delay_s=0.01)
    with pytest.raises(ArtifactIntegrityError) as caught:
        materialize(
            uri,
            cache_dir=tmp_path / "cache",
            reader=S3Reader(s3),
            retry=retry,
            ranges=Ranges(RANGE, threads=4),
        )
    expected = Manifest.load(artifact).files[MODEL_FILE].sha256
    message = str(caught.value)
    assert message.startswith(f"model file {uri}/{MODEL_FILE} is corrupt or was modified:")
    assert f"sha256 expected {expected}, actual " in message
    assert message.endswith("(after 2 attempts)")
    assert list((tmp_path / "cache").iterdir()) == []
