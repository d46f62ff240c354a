"""MODEL_URI delivery: local dirs in place; s3:// downloaded once, verified, retried."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from model_runtime.delivery import Retry, S3Location, materialize
from model_runtime.engine import Engine
from model_runtime.errors import ArtifactError, ArtifactIntegrityError, ConfigError
from model_runtime.manifest import MANIFEST_FILE
from model_runtime.settings import RuntimeSettings

BUCKET, PREFIX = "artifacts", "models/digits/abc123"
URI = f"s3://{BUCKET}/{PREFIX}"


class Body:
    """A streaming body that can break after `fail_after` bytes, like a dropped socket."""

    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self._stream = io.BytesIO(data)
        self._fail_after = fail_after

    def read(self, size: int = -1) -> bytes:
        if self._fail_after is not None and self._stream.tell() >= self._fail_after:
            raise ReadTimeoutError(endpoint_url=f"https://{BUCKET}.s3.amazonaws.com")
        return self._stream.read(size if self._fail_after is None else min(size, 1024))


class FakeS3:
    """get_object over a dict of keys, with scripted failures per key (in order)."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.failures: dict[str, list[Any]] = {}
        self.calls: list[str] = []

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        self.calls.append(Key)
        assert Bucket == BUCKET
        pending = self.failures.get(Key, [])
        if pending:
            failure = pending.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return {"Body": failure}
        if Key not in self.objects:
            raise client_error("NoSuchKey", 404)
        return {"Body": Body(self.objects[Key])}


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


@pytest.fixture
def s3(digits_dir: Path) -> FakeS3:
    files = [MANIFEST_FILE, "model.onnx"]
    return FakeS3({f"{PREFIX}/{name}": (digits_dir / name).read_bytes() for name in files})


def no_sleep() -> tuple[Retry, list[float]]:
    delays: list[float] = []
    return Retry(attempts=4, base_delay_s=0.1, sleep=delays.append), delays


def test_local_directories_are_used_in_place(digits_dir: Path) -> None:
    assert materialize(str(digits_dir)) == digits_dir
    with pytest.raises(ArtifactError, match="does not exist"):
        materialize("/opt/models/nothing-here")


def test_s3_artifact_is_downloaded_once_and_loads(
    s3: FakeS3, tmp_path: Path, digits_engine: Engine
) -> None:
    retry, delays = no_sleep()
    directory = materialize(URI, cache_dir=tmp_path, client=s3, retry=retry)
    assert s3.calls == [f"{PREFIX}/manifest.json", f"{PREFIX}/model.onnx"]
    assert Engine.load(directory).manifest == digits_engine.manifest
    # A second cold start path in the same environment: no request at all.
    assert materialize(URI, cache_dir=tmp_path, client=s3, retry=retry) == directory
    assert len(s3.calls) == 2 and delays == []


def test_transient_errors_are_retried_with_backoff(s3: FakeS3, tmp_path: Path) -> None:
    data = s3.objects[f"{PREFIX}/model.onnx"]
    s3.failures[f"{PREFIX}/manifest.json"] = [client_error("SlowDown", 503)]
    s3.failures[f"{PREFIX}/model.onnx"] = [
        client_error("InternalError", 500),
        Body(data, fail_after=2048),  # the connection drops mid-body
    ]
    retry, delays = no_sleep()
    directory = materialize(URI, cache_dir=tmp_path, client=s3, retry=retry)
    assert (directory / "model.onnx").read_bytes() == data
    assert len(delays) == 3
    # Per file: exponential (0.1 s, then 0.2 s ceilings), jittered in the upper half.
    assert 0.05 <= delays[0] <= 0.1 and 0.05 <= delays[1] <= 0.1 and 0.1 <= delays[2] <= 0.2


def test_a_corrupt_object_fails_after_retries_and_leaves_nothing(
    s3: FakeS3, tmp_path: Path
) -> None:
    s3.objects[f"{PREFIX}/model.onnx"] += b"tampered"
    retry, delays = no_sleep()
    with pytest.raises(ArtifactIntegrityError, match=r"model\.onnx.*sha256 expected"):
        materialize(URI, cache_dir=tmp_path, client=s3, retry=retry)
    assert len(delays) == retry.attempts - 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("code", "status"), [("AccessDenied", 403), ("NoSuchKey", 404)])
def test_permanent_errors_fail_at_once(s3: FakeS3, tmp_path: Path, code: str, status: int) -> None:
    s3.failures[f"{PREFIX}/model.onnx"] = [client_error(code, status)]
    retry, delays = no_sleep()
    with pytest.raises(ArtifactError, match=rf"s3://{BUCKET}/{PREFIX}/model\.onnx.*{code}"):
        materialize(URI, cache_dir=tmp_path, client=s3, retry=retry)
    assert delays == []


def test_a_manifest_cannot_write_outside_the_download_dir(s3: FakeS3, tmp_path: Path) -> None:
    manifest = json.loads(s3.objects[f"{PREFIX}/manifest.json"])
    manifest["files"]["../../escape.onnx"] = manifest["files"]["model.onnx"]
    s3.objects[f"{PREFIX}/manifest.json"] = json.dumps(manifest).encode()
    with pytest.raises(ArtifactError, match="bad file"):
        materialize(URI, cache_dir=tmp_path / "cache", client=s3, retry=no_sleep()[0])
    assert not (tmp_path / "escape.onnx").exists()


def test_model_uri_in_settings(digits_dir: Path, tmp_path: Path) -> None:
    settings = RuntimeSettings.from_env({"MODEL_URI": f"{digits_dir}, {URI}"})
    assert settings.model_uris == (str(digits_dir), URI)
    assert RuntimeSettings.from_env({"MODEL_DIR": str(digits_dir)}).model_dirs == (digits_dir,)
    with pytest.raises(ConfigError, match="MODEL_URI has value 's3://bucket-only'"):
        RuntimeSettings.from_env({"MODEL_URI": "s3://bucket-only"})
    with pytest.raises(ConfigError, match="neither MODEL_URI nor MODEL_DIR"):
        RuntimeSettings.from_env({})
    opt = tmp_path / "opt" / "models" / "digits"
    shutil.copytree(digits_dir, opt)
    (engine,) = RuntimeSettings.from_env({"MODEL_URI": str(opt)}).load_engines()
    assert engine.name == "digits"


def test_s3_location_parsing() -> None:
    assert S3Location.parse("s3://b/p/q/") == S3Location("b", "p/q")
    assert S3Location.parse("s3://b") is None and S3Location.parse("/opt/x") is None
