"""Batch files: line counting and byte-range chunks, chunk runs, assembly once every
chunk is in, the summary last, a replaced input's stale run dropped."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import numpy as np
import pytest

from model_runtime.dataplane import DataPlane
from model_runtime.events.batches import (
    Batches,
    Chunk,
    ChunkMessage,
    line_starts,
    plan_chunks,
    split_lines,
)
from model_runtime.events.lines import parse_line
from model_runtime.events.settings import BatchSettings
from tests.unit.model_runtime.events.conftest import BUCKET, QUEUE_URL
from tests.unit.model_runtime.events.in_memory import MemoryQueue, MemoryStore

IN = "batches/tiny/in/"
OUT = "batches/tiny/out/"


@pytest.mark.parametrize(
    ("data", "starts"),
    [
        (b"", []),
        (b"a", [0]),
        (b"a\n", [0]),
        (b"a\nbb\nccc", [0, 2, 5]),
        (b"a\nbb\nccc\n", [0, 2, 5]),
        (b"a\r\nbb\r\n", [0, 3]),
        (b"a\n\nb\n", [0, 2, 3]),  # an empty line is a line (and an error line)
        (b"\n", [0]),
    ],
)
def test_line_starts(data: bytes, starts: list[int]) -> None:
    assert line_starts(data) == starts


def test_chunks_cover_every_line_once_by_byte_range() -> None:
    data = b"".join(f"line {n}\r\n".encode() if n % 3 else f"{n}\n".encode() for n in range(11))
    data += b"last without newline"
    lines, chunks = plan_chunks(data, 4)
    assert lines == 12
    assert [chunk.first_line for chunk in chunks] == [1, 5, 9]
    assert chunks[0].start_byte == 0 and chunks[-1].end_byte == len(data)
    assert all(a.end_byte == b.start_byte for a, b in itertools.pairwise(chunks))
    pieces = [split_lines(data[c.start_byte : c.end_byte]) for c in chunks]
    assert [len(piece) for piece in pieces] == [4, 4, 4]
    assert [line for piece in pieces for line in piece] == data.split(b"\n")


def test_chunk_plans_at_the_edges() -> None:
    assert plan_chunks(b"", 3) == (0, [])
    assert plan_chunks(b"x\ny\n", 2) == (2, [Chunk(0, 4, 1)])
    assert plan_chunks(b"x\ny\n", 1) == (2, [Chunk(0, 2, 1), Chunk(2, 4, 2)])
    assert plan_chunks(b"x\ny", 5) == (2, [Chunk(0, 3, 1)])


def _line(images: np.ndarray, form: str) -> str:
    if form == "by-name":
        return json.dumps({"image": images.tolist()})
    tensor = {
        "name": "image",
        "shape": [1, *images.shape],
        "datatype": "FP32",
        "data": images.ravel().tolist(),
    }
    return json.dumps({"inputs": [tensor]})


BAD_LINES = {3: "{not json", 6: '{"pixels": [1]}', 9: '{"image": [[1.0, 2.0]]}', 10: ""}


def _batch_file(images: np.ndarray, newline: str = "\n") -> tuple[bytes, dict[int, str]]:
    """Ten lines, 1-based numbers in BAD_LINES bad, the others images[n] in both forms."""
    lines = [
        BAD_LINES.get(number)
        if number in BAD_LINES
        else _line(images[number], "oip" if number % 2 else "by-name")
        for number in range(1, 11)
    ]
    return newline.join(str(line) for line in lines).encode() + newline.encode(), BAD_LINES


def _upload(store: MemoryStore, key: str, data: bytes) -> str:
    store.put(BUCKET, key, data)
    return store.etag(BUCKET, key)


def _expected(plane: DataPlane, images: np.ndarray, number: int) -> dict[str, Any]:
    line = _line(images[number], "oip" if number % 2 else "by-name").encode()
    return asyncio.run(plane.infer("tiny", parse_line(line, plane.engine("tiny").manifest.inputs)))


def _check_output(store: MemoryStore, plane: DataPlane, images: np.ndarray, name: str) -> None:
    out = store.objects[BUCKET, f"{OUT}{name}.jsonl"].decode().splitlines()
    assert len(out) == 10
    for number, line in enumerate(out, start=1):
        if number in BAD_LINES:
            assert list(json.loads(line)) == ["error"]
        else:
            assert json.loads(line) == _expected(plane, images, number), number
    errors = [
        json.loads(line)
        for line in store.objects[BUCKET, f"{OUT}{name}.errors.jsonl"].decode().splitlines()
    ]
    assert [error["line"] for error in errors] == sorted(BAD_LINES)
    reasons = {error["line"]: error["error"] for error in errors}
    assert reasons[3].startswith("malformed JSON")
    assert reasons[6].startswith("unknown input(s) 'pixels'")
    assert "model expects rank 4" in reasons[9]
    assert reasons[10] == "empty line"
    for number, reason in reasons.items():
        assert json.loads(out[number - 1]) == {"error": reason}


def _summary(store: MemoryStore, name: str) -> dict[str, Any]:
    summary: dict[str, Any] = store.json(BUCKET, f"{OUT}{name}.summary.json")
    return summary


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_file_of_one_chunk_runs_in_the_upload_event(
    plane: DataPlane,
    store: MemoryStore,
    queue: MemoryQueue,
    tiny_inputs: np.ndarray,
    newline: str,
) -> None:
    settings = BatchSettings("batches/tiny", chunk_lines=100)
    batches = Batches(plane, "tiny", settings, BUCKET, QUEUE_URL, store, queue)
    data, _ = _batch_file(tiny_inputs, newline)
    etag = _upload(store, f"{IN}daily/run.jsonl", data)
    asyncio.run(batches.on_upload(BUCKET, f"{IN}daily/run.jsonl", f'"{etag}"'))
    assert queue.sent == []
    _check_output(store, plane, tiny_inputs, "daily/run")
    summary = _summary(store, "daily/run")
    assert summary["input"] == f"{IN}daily/run.jsonl" and summary["model"] == "tiny"
    assert summary["model_version"] == "1" and summary["chunks"] == 1
    assert (summary["lines"], summary["succeeded"], summary["failed"]) == (10, 6, 4)
    assert summary["started_at"] <= summary["finished_at"] and summary["seconds"] >= 0
    assert store.puts[-1] == f"{OUT}daily/run.summary.json"
    plan = store.json(BUCKET, f"batches/tiny/work/daily/run/{etag}/plan.json")
    assert plan == {
        "input": f"{IN}daily/run.jsonl",
        "etag": etag,
        "lines": 10,
        "chunks": 1,
        "started_at": summary["started_at"],
    }


def test_a_larger_file_fans_out_in_chunks_and_is_assembled_once_all_are_in(
    batches: Batches,
    plane: DataPlane,
    store: MemoryStore,
    queue: MemoryQueue,
    tiny_inputs: np.ndarray,
) -> None:
    data, _ = _batch_file(tiny_inputs)
    key = f"{IN}big.jsonl"
    etag = _upload(store, key, data)
    asyncio.run(batches.on_upload(BUCKET, key, etag))
    messages = [ChunkMessage.model_validate_json(body) for _, body in queue.sent]
    assert {url for url, _ in queue.sent} == {QUEUE_URL}
    assert [(m.index, m.count, m.first_line) for m in messages] == [(0, 3, 1), (1, 3, 5), (2, 3, 9)]
    assert all(
        m.kind == "chunk" and m.model == "tiny" and m.etag == m.run == etag for m in messages
    )
    assert messages[-1].end_byte == len(data)
    assert not store.exists(BUCKET, f"{OUT}big.jsonl")
    # Chunks finish in any order; only the last one in assembles.
    for message in reversed(messages):
        assert not store.exists(BUCKET, f"{OUT}big.summary.json")
        asyncio.run(batches.run_chunk(message))
    _check_output(store, plane, tiny_inputs, "big")
    summary = _summary(store, "big")
    assert (summary["chunks"], summary["lines"], summary["failed"]) == (3, 10, 4)
    assert store.puts[-1] == f"{OUT}big.summary.json"
    assert store.puts.count(f"{OUT}big.summary.json") == 1
    # A chunk delivered again after assembly does not assemble a second time.
    asyncio.run(batches.run_chunk(messages[0]))
    assert store.puts.count(f"{OUT}big.summary.json") == 1


def test_a_chunk_of_a_replaced_file_is_dropped(
    batches: Batches,
    store: MemoryStore,
    queue: MemoryQueue,
    tiny_inputs: np.ndarray,
) -> None:
    data, _ = _batch_file(tiny_inputs)
    key = f"{IN}replaced.jsonl"
    asyncio.run(batches.on_upload(BUCKET, key, _upload(store, key, data)))
    first = ChunkMessage.model_validate_json(queue.sent[0][1])
    _upload(store, key, data + b"{}\n")
    writes = len(store.puts)
    asyncio.run(batches.run_chunk(first))  # returns: the message is deleted, not retried
    assert len(store.puts) == writes


def test_an_empty_file_gives_an_empty_output_and_a_summary(
    batches: Batches, store: MemoryStore, queue: MemoryQueue
) -> None:
    key = f"{IN}empty.jsonl"
    asyncio.run(batches.on_upload(BUCKET, key, _upload(store, key, b"")))
    assert queue.sent == []
    assert store.objects[BUCKET, f"{OUT}empty.jsonl"] == b""
    assert store.objects[BUCKET, f"{OUT}empty.errors.jsonl"] == b""
    summary = _summary(store, "empty")
    assert (summary["lines"], summary["succeeded"], summary["failed"], summary["chunks"]) == (
        0,
        0,
        0,
        0,
    )


def test_a_new_upload_of_the_same_name_is_a_new_run(
    batches: Batches, store: MemoryStore, tiny_inputs: np.ndarray
) -> None:
    key = f"{IN}again.jsonl"
    one = _line(tiny_inputs[1], "oip").encode() + b"\n"
    asyncio.run(batches.on_upload(BUCKET, key, _upload(store, key, one)))
    asyncio.run(batches.on_upload(BUCKET, key, _upload(store, key, one + b"{}\n")))
    summary = _summary(store, "again")
    assert (summary["lines"], summary["failed"]) == (2, 1)


@pytest.mark.parametrize(
    ("bucket", "key"),
    [
        (BUCKET, f"{IN}notes.txt"),
        (BUCKET, "batches/other/in/x.jsonl"),
        ("elsewhere", f"{IN}x.jsonl"),
        (BUCKET, f"{IN}.jsonl"),
    ],
)
def test_objects_that_are_not_batch_inputs_are_ignored(
    batches: Batches, store: MemoryStore, queue: MemoryQueue, bucket: str, key: str
) -> None:
    store.put(bucket, key, b"{}\n")
    asyncio.run(batches.on_upload(bucket, key, store.etag(bucket, key)))
    assert store.puts == [key] and queue.sent == []


def test_an_upload_replaced_before_its_event_is_left_to_its_own_event(
    batches: Batches, store: MemoryStore, queue: MemoryQueue
) -> None:
    key = f"{IN}raced.jsonl"
    _upload(store, key, b"{}\n")
    asyncio.run(batches.on_upload(BUCKET, key, "0" * 32))
    assert store.puts == [key] and queue.sent == []
