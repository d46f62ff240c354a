"""MODEL_URI delivery: local dirs in place; s3:// downloaded once, verified, retried; big
files as parallel ranged GETs (hashed in order as they arrive, a range retried on its own,
at most `threads + 1` ranges held), small ones as one GET.

Delivery runs over a fake ObjectReader here; the botocore adapter (S3Reader) is tested
against real botocore clients whose requests botocore's Stubber answers (no network).
"""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import (
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.response import StreamingBody
from botocore.stub import Stubber

import model_runtime.engine
import model_runtime.settings
from model_runtime.delivery import Ranges, Retry, S3Location, materialize
from model_runtime.engine import Engine
from model_runtime.errors import (
    ArtifactError,
    ArtifactIntegrityError,
    ConfigError,
    ObjectNotFound,
    ObjectReadError,
    TransientReadError,
)
from model_runtime.manifest import MANIFEST_FILE
from model_runtime.s3_reader import S3Reader
from model_runtime.settings import RuntimeSettings

BUCKET, PREFIX = "artifacts", "models/tiny/abc123"
URI = f"s3://{BUCKET}/{PREFIX}"
MANIFEST_KEY, MODEL_KEY = f"{PREFIX}/{MANIFEST_FILE}", f"{PREFIX}/model.onnx"


class CutOff:
    """A transfer that breaks after `after` bytes, as a dropped connection does."""

    def __init__(self, after: int) -> None:
        self.after = after


class FakeReader:
    """An ObjectReader over a dict of keys, with scripted failures per key (in order)."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.failures: dict[str, list[ObjectReadError | CutOff]] = {}
        self.calls: list[str] = []

    def read(self, bucket: str, key: str) -> bytes:
        data, cut = self._get(bucket, key)
        if cut is not None:
            raise TransientReadError("connection dropped")
        return data

    def stream(self, bucket: str, key: str, write: Callable[[bytes], object]) -> None:
        data, cut = self._get(bucket, key)
        if cut is not None:
            write(data[: cut.after])
            raise TransientReadError(f"connection dropped after {cut.after} bytes")
        for start in range(0, len(data), 1024):
            write(data[start : start + 1024])

    def read_range(self, bucket: str, key: str, start: int, end: int) -> bytes:
        data, cut = self._get(bucket, key, start)
        if cut is not None:
            raise TransientReadError("connection dropped")
        return data[start:end]

    def _get(self, bucket: str, key: str, start: int | None = None) -> tuple[bytes, CutOff | None]:
        """The object, and the cut-off scripted for this call, if any; a range's failures
        are scripted under `key@start`."""
        if start is not None:
            key_or_range = f"{key}@{start}"
            self.calls.append(key_or_range)
            pending = self.failures.get(key_or_range, [])
            failure = pending.pop(0) if pending else None
            if isinstance(failure, ObjectReadError):
                raise failure
            return self.objects[key], failure
        self.calls.append(key)
        assert bucket == BUCKET
        pending = self.failures.get(key, [])
        failure = pending.pop(0) if pending else None
        if isinstance(failure, ObjectReadError):
            raise failure
        if key not in self.objects:
            raise ObjectNotFound(f"no object {key}")
        return self.objects[key], failure


@pytest.fixture
def objects(tiny_dir: Path) -> dict[str, bytes]:
    return {
        f"{PREFIX}/{name}": (tiny_dir / name).read_bytes() for name in (MANIFEST_FILE, "model.onnx")
    }


@pytest.fixture
def reader(objects: dict[str, bytes]) -> FakeReader:
    return FakeReader(dict(objects))


def no_sleep() -> tuple[Retry, list[float]]:
    delays: list[float] = []
    return Retry(attempts=4, base_delay_s=0.1, sleep=delays.append), delays


def test_local_directories_are_used_in_place(tiny_dir: Path) -> None:
    assert materialize(str(tiny_dir)) == tiny_dir
    with pytest.raises(ArtifactError, match="does not exist"):
        materialize("/opt/models/nothing-here")


def test_s3_artifact_is_downloaded_once_and_loads(
    reader: FakeReader, tmp_path: Path, tiny_engine: Engine
) -> None:
    retry, delays = no_sleep()
    directory = materialize(URI, cache_dir=tmp_path, reader=reader, retry=retry)
    assert reader.calls == [MANIFEST_KEY, MODEL_KEY]
    assert Engine.load(directory).manifest == tiny_engine.manifest
    # A second cold start path in the same environment: no request at all.
    assert materialize(URI, cache_dir=tmp_path, reader=reader, retry=retry) == directory
    assert len(reader.calls) == 2 and delays == []


def test_transient_errors_are_retried_with_backoff(reader: FakeReader, tmp_path: Path) -> None:
    data = reader.objects[MODEL_KEY]
    reader.failures[MANIFEST_KEY] = [TransientReadError("SlowDown")]
    reader.failures[MODEL_KEY] = [
        TransientReadError("InternalError"),
        CutOff(after=2048),  # the connection drops mid-body
    ]
    retry, delays = no_sleep()
    directory = materialize(URI, cache_dir=tmp_path, reader=reader, retry=retry)
    assert (directory / "model.onnx").read_bytes() == data
    assert len(delays) == 3
    # Per file: exponential (0.1 s, then 0.2 s ceilings), jittered in the upper half.
    assert 0.05 <= delays[0] <= 0.1 and 0.05 <= delays[1] <= 0.1 and 0.1 <= delays[2] <= 0.2


def test_transient_errors_give_up_after_the_last_attempt(
    reader: FakeReader, tmp_path: Path
) -> None:
    reader.failures[MODEL_KEY] = [TransientReadError("SlowDown")] * 4
    retry, delays = no_sleep()
    with pytest.raises(ArtifactError) as caught:
        materialize(URI, cache_dir=tmp_path, reader=reader, retry=retry)
    assert str(caught.value) == (
        f"cannot download model file {MODEL_KEY} from {URI}: SlowDown (after 4 attempts)"
    )
    assert not isinstance(caught.value, ArtifactIntegrityError)
    assert len(delays) == 3
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_object_fails_after_retries_and_leaves_nothing(
    reader: FakeReader, tmp_path: Path
) -> None:
    reader.objects[MODEL_KEY] += b"tampered"
    retry, delays = no_sleep()
    with pytest.raises(ArtifactIntegrityError, match=r"model\.onnx.*sha256 expected") as caught:
        materialize(URI, cache_dir=tmp_path, reader=reader, retry=retry)
    assert str(caught.value).startswith(f"model file {URI}/model.onnx is corrupt or was modified")
    assert str(caught.value).endswith("(after 4 attempts)")
    assert len(delays) == retry.attempts - 1
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_transfer_is_tried_again(reader: FakeReader, tmp_path: Path) -> None:
    good = reader.objects[MODEL_KEY]
    reader.objects[MODEL_KEY] = good + b"tampered"
    retry, delays = no_sleep()

    def sleep_and_repair(delay: float) -> None:
        delays.append(delay)
        reader.objects[MODEL_KEY] = good

    retry = Retry(attempts=retry.attempts, base_delay_s=retry.base_delay_s, sleep=sleep_and_repair)
    directory = materialize(URI, cache_dir=tmp_path, reader=reader, retry=retry)
    assert (directory / "model.onnx").read_bytes() == good
    assert len(delays) == 1


@pytest.mark.parametrize(
    "error",
    [ObjectReadError("AccessDenied"), ObjectNotFound("NoSuchKey")],
    ids=lambda error: type(error).__name__,
)
def test_permanent_errors_fail_at_once(
    reader: FakeReader, tmp_path: Path, error: ObjectReadError
) -> None:
    reader.failures[MODEL_KEY] = [error]
    retry, delays = no_sleep()
    with pytest.raises(ArtifactError) as caught:
        materialize(URI, cache_dir=tmp_path, reader=reader, retry=retry)
    assert str(caught.value) == f"cannot download model file {URI}/model.onnx: {error}"
    assert delays == []


def test_a_missing_manifest_fails_at_once(reader: FakeReader, tmp_path: Path) -> None:
    del reader.objects[MANIFEST_KEY]
    retry, delays = no_sleep()
    with pytest.raises(ArtifactError) as caught:
        materialize(URI, cache_dir=tmp_path, reader=reader, retry=retry)
    assert str(caught.value) == (
        f"cannot download model file {URI}/manifest.json: no object {MANIFEST_KEY}"
    )
    assert delays == []


def test_a_manifest_cannot_write_outside_the_download_dir(
    reader: FakeReader, tmp_path: Path
) -> None:
    manifest = json.loads(reader.objects[MANIFEST_KEY])
    manifest["files"]["../../escape.onnx"] = manifest["files"]["model.onnx"]
    reader.objects[MANIFEST_KEY] = json.dumps(manifest).encode()
    with pytest.raises(ArtifactError, match="bad file"):
        materialize(URI, cache_dir=tmp_path / "cache", reader=reader, retry=no_sleep()[0])
    assert not (tmp_path / "escape.onnx").exists()


def test_model_uri_in_settings(tiny_dir: Path, tmp_path: Path) -> None:
    settings = RuntimeSettings.from_env({"MODEL_URI": f"{tiny_dir}, {URI}"})
    assert settings.model_uris == (str(tiny_dir), URI)
    assert RuntimeSettings.from_env({"MODEL_DIR": str(tiny_dir)}).model_dirs == (tiny_dir,)
    with pytest.raises(ConfigError, match="MODEL_URI has value 's3://bucket-only'"):
        RuntimeSettings.from_env({"MODEL_URI": "s3://bucket-only"})
    with pytest.raises(ConfigError, match="neither MODEL_URI nor MODEL_DIR"):
        RuntimeSettings.from_env({})
    opt = tmp_path / "opt" / "models" / "tiny"
    shutil.copytree(tiny_dir, opt)
    (engine,) = RuntimeSettings.from_env({"MODEL_URI": str(opt)}).load_engines()
    assert engine.name == "tiny"


def test_a_downloaded_artifact_is_not_hashed_twice(
    reader: FakeReader, tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Delivery hashed every file as it came; a local directory is still verified."""
    cache = tmp_path / "cache"
    monkeypatch.setattr(
        model_runtime.settings,
        "materialize",
        lambda uri, backend: materialize(uri, cache_dir=cache, reader=reader, backend=backend),
    )
    verified: list[Path] = []
    verify = model_runtime.engine.verify_artifact
    monkeypatch.setattr(
        model_runtime.engine,
        "verify_artifact",
        lambda directory, *args: verified.append(directory) or verify(directory, *args),
    )
    engines = RuntimeSettings.from_env({"MODEL_URI": f"{URI},{tiny_dir}"}).load_engines()
    assert [engine.name for engine in engines] == ["tiny", "tiny"]
    assert verified == [tiny_dir]
    assert engines[0].directory.parent == cache


def test_s3_location_parsing() -> None:
    assert S3Location.parse("s3://b/p/q/") == S3Location("b", "p/q")
    assert S3Location.parse("s3://b") is None and S3Location.parse("/opt/x") is None
    assert S3Location("b", "p/q").url("model.onnx") == "s3://b/p/q/model.onnx"


# The botocore adapter.


@pytest.fixture(scope="module")
def session() -> botocore.session.Session:
    return botocore.session.Session()  # caches the service model for every client below


@pytest.fixture
def client(session: botocore.session.Session) -> Any:
    # Fixed fake credentials: nothing is looked up, and the Stubber answers every call.
    return session.create_client(
        "s3", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )


@pytest.fixture
def stubber(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


class BrokenBody:
    """A response body whose read raises `error`, as botocore's does when the socket fails."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def read(self, size: int = -1) -> bytes:
        raise self.error


def expect_get(stubber: Stubber, key: str, payload: Any) -> None:
    stubber.add_response("get_object", {"Body": payload}, {"Bucket": BUCKET, "Key": key})


def test_s3_reader_reads_and_streams_objects(client: Any, stubber: Stubber) -> None:
    data = bytes(range(256)) * 8193  # a little over 2 MiB: more than one chunk
    expect_get(stubber, "small", body(b"{}"))
    expect_get(stubber, "large", body(data))
    reader = S3Reader(client)
    assert reader.read(BUCKET, "small") == b"{}"
    chunks: list[bytes] = []
    reader.stream(BUCKET, "large", chunks.append)
    assert b"".join(chunks) == data and len(chunks) == 3


@pytest.mark.parametrize(
    ("code", "status", "error_type"),
    [
        ("SlowDown", 503, TransientReadError),
        ("InternalError", 500, TransientReadError),
        ("RequestTimeout", 400, TransientReadError),
        ("SomethingNew", 502, TransientReadError),
        ("NoSuchKey", 404, ObjectNotFound),
        ("AccessDenied", 403, ObjectReadError),
        ("InvalidObjectState", 403, ObjectReadError),
    ],
)
def test_s3_reader_types_errors_by_code_and_status(
    client: Any, stubber: Stubber, code: str, status: int, error_type: type[ObjectReadError]
) -> None:
    stubber.add_client_error(
        "get_object", service_error_code=code, http_status_code=status,
        expected_params={"Bucket": BUCKET, "Key": "k"},
    )  # fmt: skip
    with pytest.raises(ObjectReadError) as caught:
        S3Reader(client).read(BUCKET, "k")
    assert type(caught.value) is error_type
    assert code in str(caught.value)


@pytest.mark.parametrize(
    ("error", "error_type"),
    [
        (ReadTimeoutError(endpoint_url=f"https://{BUCKET}.s3.amazonaws.com"), TransientReadError),
        (IncompleteReadError(actual_bytes=10, expected_bytes=20), TransientReadError),
        (ConnectionResetError("reset by peer"), TransientReadError),
        (NoCredentialsError(), ObjectReadError),
    ],
    ids=["ReadTimeoutError", "IncompleteReadError", "ConnectionResetError", "NoCredentialsError"],
)
def test_s3_reader_types_errors_of_a_broken_body(
    client: Any, stubber: Stubber, error: Exception, error_type: type[ObjectReadError]
) -> None:
    expect_get(stubber, "k", BrokenBody(error))
    with pytest.raises(ObjectReadError) as caught:
        S3Reader(client).stream(BUCKET, "k", lambda chunk: None)
    assert type(caught.value) is error_type
    assert str(caught.value) == str(error)
    assert caught.value.__cause__ is error


def test_s3_reader_a_refused_connection_is_transient(client: Any) -> None:
    def refuse(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url=f"https://{BUCKET}.s3.amazonaws.com/k")

    client.meta.events.register("before-send.s3.GetObject", refuse)
    started = time.monotonic()
    with pytest.raises(TransientReadError, match="Could not connect to the endpoint URL"):
        S3Reader(client).read(BUCKET, "k")
    assert time.monotonic() - started < 5


def test_s3_reader_leaves_other_errors_alone(client: Any, stubber: Stubber) -> None:
    """A failure of the writer (a full disk) is not the store's: it passes through."""
    expect_get(stubber, "k", body(b"data"))

    def full(chunk: bytes) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        S3Reader(client).stream(BUCKET, "k", full)


def test_delivery_through_the_s3_reader(
    client: Any, stubber: Stubber, objects: dict[str, bytes], tmp_path: Path
) -> None:
    expect_get(stubber, MANIFEST_KEY, body(objects[MANIFEST_KEY]))
    stubber.add_client_error(
        "get_object", service_error_code="SlowDown", http_status_code=503,
        expected_params={"Bucket": BUCKET, "Key": MODEL_KEY},
    )  # fmt: skip
    expect_get(stubber, MODEL_KEY, body(objects[MODEL_KEY]))
    retry, delays = no_sleep()
    directory = materialize(URI, cache_dir=tmp_path, reader=S3Reader(client), retry=retry)
    assert (directory / "model.onnx").read_bytes() == objects[MODEL_KEY]
    assert len(delays) == 1


# --- ranged downloads -------------------------------------------------------------

RANGE = 256


def range_calls(reader: FakeReader) -> list[int]:
    return sorted(int(call.rpartition("@")[2]) for call in reader.calls if "@" in call)


def starts(size: int) -> list[int]:
    return list(range(0, size, RANGE))


def test_ranges_split_a_file_and_leave_small_ones_whole() -> None:
    ranges = Ranges(range_bytes=10, threads=2)
    assert ranges.spans(19) is None
    assert ranges.spans(20) == [(0, 10), (10, 20)]
    assert ranges.spans(25) == [(0, 10), (10, 20), (20, 25)]


def test_a_big_file_is_downloaded_in_ranges_and_loads(
    reader: FakeReader, tmp_path: Path, tiny_engine: Engine
) -> None:
    size = len(reader.objects[MODEL_KEY])
    assert size > 4 * RANGE  # several ranges, a short last one
    retry, delays = no_sleep()
    directory = materialize(
        URI, cache_dir=tmp_path, reader=reader, retry=retry, ranges=Ranges(RANGE, threads=3)
    )
    assert (directory / "model.onnx").read_bytes() == reader.objects[MODEL_KEY]
    # The manifest is one GET; the model only ranges, each once.
    assert [call for call in reader.calls if "@" not in call] == [MANIFEST_KEY]
    assert range_calls(reader) == starts(size)
    assert Engine.load(directory).manifest == tiny_engine.manifest
    assert delays == []


def test_a_range_is_retried_on_its_own(reader: FakeReader, tmp_path: Path) -> None:
    second = f"{MODEL_KEY}@{RANGE}"
    reader.failures[second] = [TransientReadError("SlowDown"), TransientReadError("reset")]
    retry, delays = no_sleep()
    directory = materialize(
        URI, cache_dir=tmp_path, reader=reader, retry=retry, ranges=Ranges(RANGE, threads=2)
    )
    assert (directory / "model.onnx").read_bytes() == reader.objects[MODEL_KEY]
    size = len(reader.objects[MODEL_KEY])
    assert range_calls(reader) == sorted([*starts(size), RANGE, RANGE])
    assert len(delays) == 2


def test_a_range_that_keeps_failing_names_the_file(reader: FakeReader, tmp_path: Path) -> None:
    reader.failures[f"{MODEL_KEY}@0"] = [TransientReadError("SlowDown")] * 4
    retry, delays = no_sleep()
    with pytest.raises(ArtifactError) as caught:
        materialize(URI, cache_dir=tmp_path, reader=reader, retry=retry, ranges=Ranges(RANGE, 2))
    assert str(caught.value) == (
        f"cannot download model file {MODEL_KEY} from {URI}: SlowDown (after 4 attempts)"
    )
    assert len(delays) == 3
    assert list(tmp_path.iterdir()) == []


def test_a_permanent_range_error_fails_at_once(reader: FakeReader, tmp_path: Path) -> None:
    reader.failures[f"{MODEL_KEY}@{2 * RANGE}"] = [ObjectReadError("AccessDenied")]
    retry, delays = no_sleep()
    with pytest.raises(ArtifactError) as caught:
        materialize(URI, cache_dir=tmp_path, reader=reader, retry=retry, ranges=Ranges(RANGE, 2))
    assert str(caught.value) == f"cannot download model file {URI}/model.onnx: AccessDenied"
    assert not isinstance(caught.value, ArtifactIntegrityError)
    assert delays == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("change", ["tampered", "shorter"])
def test_corrupt_ranges_fail_the_file_with_both_hashes(
    reader: FakeReader, tmp_path: Path, change: str
) -> None:
    data = reader.objects[MODEL_KEY]
    if change == "tampered":
        reader.objects[MODEL_KEY] = data[:RANGE] + bytes([data[RANGE] ^ 1]) + data[RANGE + 1 :]
    else:  # the last ranges answer short, then empty (S3's 416 past the end)
        reader.objects[MODEL_KEY] = data[: 2 * RANGE + 10]
    retry, delays = no_sleep()
    with pytest.raises(ArtifactIntegrityError) as caught:
        materialize(URI, cache_dir=tmp_path, reader=reader, retry=retry, ranges=Ranges(RANGE, 2))
    message = str(caught.value)
    assert message.startswith(f"model file {URI}/model.onnx is corrupt or was modified:")
    assert "sha256 expected " in message and ", actual " in message
    assert message.endswith("(after 4 attempts)")
    assert len(delays) == retry.attempts - 1
    assert list(tmp_path.iterdir()) == []


def test_at_most_threads_plus_one_ranges_are_held(reader: FakeReader, tmp_path: Path) -> None:
    """While the first range hangs, the ones after it are fetched only up to the bound."""
    threads = 3
    started_first = threading.Event()
    release = threading.Event()
    seen_while_hanging: list[int] = []
    read_range = reader.read_range

    def slow_first(bucket: str, key: str, start: int, end: int) -> bytes:
        if start == 0:
            started_first.set()
            # Long enough for the other threads to fetch everything they are allowed to.
            release.wait(timeout=0.5)
            seen_while_hanging.append(len(range_calls(reader)))
        return read_range(bucket, key, start, end)

    reader.read_range = slow_first  # type: ignore[method-assign]
    retry, _ = no_sleep()
    directory = materialize(
        URI, cache_dir=tmp_path, reader=reader, retry=retry, ranges=Ranges(RANGE, threads)
    )
    assert (directory / "model.onnx").read_bytes() == reader.objects[MODEL_KEY]
    assert started_first.is_set()
    # The first and `threads` more were submitted; none after them until the first is in.
    assert seen_while_hanging == [threads]
    assert len(reader.objects[MODEL_KEY]) > (threads + 2) * RANGE


def test_the_s3_reader_reads_a_range(client: Any, stubber: Stubber) -> None:
    stubber.add_response(
        "get_object", {"Body": body(b"3456")}, {"Bucket": BUCKET, "Key": "k", "Range": "bytes=3-6"}
    )
    stubber.add_client_error(
        "get_object", service_error_code="InvalidRange", http_status_code=416,
        expected_params={"Bucket": BUCKET, "Key": "k", "Range": "bytes=100-109"},
    )  # fmt: skip
    reader = S3Reader(client)
    assert reader.read_range(BUCKET, "k", 3, 7) == b"3456"
    # Past the end: nothing there, which the file's hash then reports.
    assert reader.read_range(BUCKET, "k", 100, 110) == b""
