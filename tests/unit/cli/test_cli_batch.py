"""`inferstack batch run` against a faked bucket: the keys it writes and reads, progress
from a work prefix's listing, the download, the summary, and its user errors."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from typer.testing import CliRunner, Result

from cli import deployment
from cli.app import app
from cli.batch import Batch, BatchKeys, BatchProgress, chunks_done
from cli.errors import UserError

BUCKET = "inferstack-local-jobs-1a2b"
PREFIX = f"s3://{BUCKET}/batches/digits/in/"


class FakeS3:
    """A bucket in a dict, with the calls and answers boto3's S3 client has;
    `on_put(key)` runs after each put (where a test plays the function)."""

    def __init__(self, page_size: int = 1000) -> None:
        self.objects: dict[str, bytes] = {}
        self.page_size = page_size
        self.deleted: list[str] = []
        self.on_put: Callable[[str], None] = lambda _key: None

    def put(self, key: str, body: bytes | dict[str, Any]) -> None:
        self.objects[key] = json.dumps(body).encode() if isinstance(body, dict) else body

    def put_object(self, Bucket: str, Key: str, Body: Any) -> dict[str, Any]:
        assert Bucket == BUCKET
        data = Body.read()
        self.objects[Key] = data
        self.on_put(Key)
        return {"ETag": f'"{hashlib.md5(data).hexdigest()}"'}

    def delete_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        self.deleted.append(Key)
        self.objects.pop(Key, None)
        return {}

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")
        return {"ContentLength": len(self.objects[Key])}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        data = self.objects[Key]
        return {"Body": StreamingBody(io.BytesIO(data), len(data))}

    def list_objects_v2(
        self, Bucket: str, Prefix: str, ContinuationToken: str = "0"
    ) -> dict[str, Any]:
        keys = sorted(key for key in self.objects if key.startswith(Prefix))
        start = int(ContinuationToken)
        page = keys[start : start + self.page_size]
        more = start + self.page_size < len(keys)
        answer: dict[str, Any] = {"Contents": [{"Key": key} for key in page], "IsTruncated": more}
        if more:
            answer["NextContinuationToken"] = str(start + self.page_size)
        return answer


def keys_for(name: str = "night.jsonl") -> BatchKeys:
    return BatchKeys.of(PREFIX, Path("/data") / name)


def test_the_keys_of_a_batch_file() -> None:
    keys = keys_for("night.jsonl")
    assert (keys.bucket, keys.prefix, keys.name) == (BUCKET, "batches/digits", "night")
    assert keys.input == "batches/digits/in/night.jsonl"
    assert keys.results == {
        "night.jsonl": "batches/digits/out/night.jsonl",
        "night.errors.jsonl": "batches/digits/out/night.errors.jsonl",
        "night.summary.json": "batches/digits/out/night.summary.json",
    }
    assert keys.summary == "batches/digits/out/night.summary.json"
    assert keys.work("e7a1") == "batches/digits/work/night/e7a1/"


def test_a_batch_prefix_that_is_not_an_in_prefix_is_refused() -> None:
    with pytest.raises(UserError, match="is not s3://<bucket>/<prefix>/in/"):
        BatchKeys.of(f"s3://{BUCKET}/batches/digits/", Path("x.jsonl"))


def test_chunks_done_counts_only_this_runs_chunk_files() -> None:
    work = "batches/digits/work/night/e7a1/"
    listing = [
        f"{work}plan.json",
        f"{work}chunk-00000.jsonl",
        f"{work}chunk-00000.errors.jsonl",
        f"{work}chunk-00003.jsonl",
        f"{work}chunk-3.jsonl",
        "batches/digits/work/night/0ld/chunk-00001.jsonl",
    ]
    assert chunks_done(listing, work) == 2


def test_progress_reads_the_plan_once_and_pages_through_the_listing() -> None:
    s3 = FakeS3(page_size=2)
    batch = Batch(s3, keys_for(), run="e7a1")
    work = batch.keys.work("e7a1")
    assert batch.progress() == BatchProgress(done=0, planned=None, finished=False)
    s3.put(f"{work}plan.json", {"chunks": 5, "lines": 5000})
    for index in range(3):
        s3.put(f"{work}chunk-{index:05d}.jsonl", b"")
        s3.put(f"{work}chunk-{index:05d}.errors.jsonl", b"")
    assert batch.progress() == BatchProgress(done=3, planned=5, finished=False)
    s3.put(f"{work}plan.json", {"chunks": 99})  # read once: a rewrite is not re-read
    s3.put(batch.keys.summary, {"lines": 5000})
    assert batch.progress() == BatchProgress(done=3, planned=5, finished=True)


def test_upload_drops_an_earlier_summary_and_names_the_run_by_etag(tmp_path: Path) -> None:
    s3 = FakeS3()
    batch = Batch(s3, keys_for())
    s3.put(batch.keys.summary, {"lines": 1})
    file = tmp_path / "night.jsonl"
    file.write_bytes(b'{"image": [[0, 1]]}\n')
    batch.upload(file)
    assert s3.deleted == [batch.keys.summary]
    assert s3.objects[batch.keys.input] == file.read_bytes()
    assert batch.run == hashlib.md5(file.read_bytes()).hexdigest()


def test_download_writes_what_the_run_wrote(tmp_path: Path) -> None:
    s3 = FakeS3()
    keys = keys_for()
    s3.put(keys.results["night.jsonl"], b'{"outputs": []}\n')
    s3.put(keys.results["night.summary.json"], {"lines": 1})
    written = Batch(s3, keys).download(tmp_path / "out")
    assert written == {
        "night.jsonl": tmp_path / "out" / "night.jsonl",
        "night.summary.json": tmp_path / "out" / "night.summary.json",
    }
    assert (tmp_path / "out" / "night.jsonl").read_bytes() == b'{"outputs": []}\n'


def inferstack(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), terminal_width=200)


def assert_one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> FakeS3:
    fake = FakeS3()
    monkeypatch.setattr(deployment, "s3_client", lambda stack: fake)
    return fake


def test_batch_run_uploads_follows_downloads_and_summarizes(
    outputs: dict[str, Any], s3: FakeS3, tmp_path: Path
) -> None:
    file = tmp_path / "night.jsonl"
    file.write_bytes(b'{"image": [[0, 1]]}\nnot json\n')
    keys = keys_for()

    def function(key: str) -> None:  # what the S3-invoked function leaves behind
        assert key == keys.input
        run = hashlib.md5(s3.objects[key]).hexdigest()
        s3.put(f"{keys.work(run)}plan.json", {"chunks": 1, "lines": 2})
        s3.put(f"{keys.work(run)}chunk-00000.jsonl", b"")
        s3.put(keys.results["night.jsonl"], b'{"outputs": []}\n{"error": "invalid JSON"}\n')
        s3.put(keys.results["night.errors.jsonl"], b'{"line": 2, "error": "invalid JSON"}\n')
        summary = {"input": key, "model": "digits", "lines": 2, "succeeded": 1, "failed": 1}
        s3.put(keys.summary, {**summary, "chunks": 1, "seconds": 0.5})

    s3.on_put = function
    out = tmp_path / "results"
    result = inferstack("batch", "run", str(file), "--model", "digits", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in out.iterdir()) == [
        "night.errors.jsonl",
        "night.jsonl",
        "night.summary.json",
    ]
    assert (out / "night.errors.jsonl").read_text() == '{"line": 2, "error": "invalid JSON"}\n'
    row = next(line for line in result.stdout.splitlines() if "0.50" in line)
    # lines, succeeded, failed, chunks, seconds, rows/s
    assert [cell.strip() for cell in row.split("│")[1:-1]] == ["2", "1", "1", "1", "0.50", "4.0"]
    assert str(out / "night.jsonl") in result.stdout


def test_batch_run_times_out_with_what_it_saw(
    outputs: dict[str, Any], s3: FakeS3, tmp_path: Path
) -> None:
    file = tmp_path / "night.jsonl"
    file.write_bytes(b"{}\n")
    result = inferstack("batch", "run", str(file), "-m", "digits", "--timeout", "0")
    assert_one_line_error(
        result,
        "batch night.jsonl is not done after 0 s (0 of ? chunks done)",
        f"s3://{BUCKET}/batches/digits/out/",
    )


def test_batch_run_refuses_what_it_cannot_run(
    outputs: dict[str, Any], s3: FakeS3, tmp_path: Path
) -> None:
    assert_one_line_error(
        inferstack("batch", "run", str(tmp_path / "nope.jsonl"), "-m", "digits"),
        "nope.jsonl: no such file",
    )
    csv = tmp_path / "night.csv"
    csv.write_text("a,b\n")
    assert_one_line_error(
        inferstack("batch", "run", str(csv), "-m", "digits"), "must end in .jsonl"
    )
    file = tmp_path / "night.jsonl"
    file.write_text("{}\n")
    del outputs["jobs"]["digits"]["batchPrefix"]
    assert_one_line_error(
        inferstack("batch", "run", str(file), "-m", "digits"),
        "model 'digits' has no batches in the deployed stack local",
        "`batch` section",
    )
    assert_one_line_error(inferstack("batch", "run", str(file), "-m", "digits-int8"), "has no jobs")
    assert s3.objects == {}
