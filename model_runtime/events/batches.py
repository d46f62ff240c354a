"""Batch files: a JSONL file under `<batch prefix>/in/` becomes `out/<name>.jsonl` (one
line per input line, same order), `out/<name>.errors.jsonl` and, last,
`out/<name>.summary.json`.

A file of more than `chunk_lines` lines fans out: one queue message per chunk of lines,
each chunk read back by its byte range (and the upload's ETag, so a replaced file's old
run stops). Every chunk writes its results under `work/<name>/<run>/`; whichever chunk
finds all of them there assembles the output.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from model_runtime.dataplane import DataPlane
from model_runtime.errors import InferstackError, ObjectChanged, ObjectNotFound
from model_runtime.events.lines import parse_line
from model_runtime.events.records import now
from model_runtime.events.settings import BatchSettings
from model_runtime.events.storage import MessageQueue, ObjectStore

logger = logging.getLogger("inferstack.batches")

SUFFIX = ".jsonl"
_CHUNK_FILE = re.compile(r"chunk-(\d{5})\.jsonl")


class ChunkMessage(BaseModel):
    """The queue message for one chunk of a batch file (`end_byte` is exclusive)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["chunk"] = "chunk"
    model: str
    bucket: str
    key: str
    etag: str
    run: str
    index: int
    count: int
    start_byte: int
    end_byte: int
    first_line: int


@dataclass(frozen=True)
class Chunk:
    """Lines [first_line, first_line + n) of a file, 1-based, at bytes [start, end)."""

    start_byte: int
    end_byte: int
    first_line: int


def line_starts(data: bytes) -> list[int]:
    """The byte offset of every line. A final newline ends the last line; it does not
    start an empty one."""
    starts = [0]
    position = data.find(b"\n")
    while position != -1:
        starts.append(position + 1)
        position = data.find(b"\n", position + 1)
    if starts[-1] == len(data):
        starts.pop()
    return starts


def plan_chunks(data: bytes, chunk_lines: int) -> tuple[int, list[Chunk]]:
    """(number of lines, the chunks of at most `chunk_lines` lines covering them)."""
    starts = line_starts(data)
    chunks = []
    for first in range(0, len(starts), chunk_lines):
        after = first + chunk_lines
        end = starts[after] if after < len(starts) else len(data)
        chunks.append(Chunk(starts[first], end, first + 1))
    return len(starts), chunks


def split_lines(data: bytes) -> list[bytes]:
    """The lines of a chunk, as `line_starts` counts them (CR is the parser's to drop)."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


class BatchKeys:
    """Where one model's batches live in the data bucket."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix  # "<prefix>/<model>"

    def name_of(self, key: str) -> str | None:
        """The batch name of an input key; None for a key that is not a batch input."""
        inputs = f"{self.prefix}/in/"
        if not key.startswith(inputs) or not key.endswith(SUFFIX):
            return None
        return key[len(inputs) : -len(SUFFIX)] or None

    def output(self, name: str) -> str:
        return f"{self.prefix}/out/{name}.jsonl"

    def errors(self, name: str) -> str:
        return f"{self.prefix}/out/{name}.errors.jsonl"

    def summary(self, name: str) -> str:
        return f"{self.prefix}/out/{name}.summary.json"

    def work(self, name: str, run: str) -> str:
        return f"{self.prefix}/work/{name}/{run}/"

    def plan(self, name: str, run: str) -> str:
        return f"{self.work(name, run)}plan.json"

    def chunk(self, name: str, run: str, index: int) -> str:
        return f"{self.work(name, run)}chunk-{index:05d}.jsonl"

    def chunk_errors(self, name: str, run: str, index: int) -> str:
        return f"{self.work(name, run)}chunk-{index:05d}.errors.jsonl"


class Batches:
    """One model's batch files in the data bucket, chunks through its queue."""

    def __init__(
        self,
        plane: DataPlane,
        model: str,
        settings: BatchSettings,
        bucket: str,
        queue_url: str,
        store: ObjectStore,
        queue: MessageQueue,
    ) -> None:
        self.plane = plane
        self.model = model
        self.settings = settings
        self.bucket = bucket
        self.keys = BatchKeys(settings.prefix)
        self._queue_url = queue_url
        self._store = store
        self._queue = queue

    async def on_upload(self, bucket: str, key: str, etag: str) -> None:
        """Plan the batch of a new input object; run it here when it is one chunk, else
        queue its chunks."""
        name = self.keys.name_of(key)
        if bucket != self.bucket or name is None:
            logger.warning("ignored s3://%s/%s: not a batch input of %r", bucket, key, self.model)
            return
        run = etag.strip('"')
        try:
            data = self._store.get(bucket, key, etag=run)
        except (ObjectChanged, ObjectNotFound):
            logger.info(
                "s3://%s/%s changed before its batch started; its own event runs it", bucket, key
            )
            return
        lines, chunks = plan_chunks(data, self.settings.chunk_lines)
        plan = {
            "input": key,
            "etag": run,
            "lines": lines,
            "chunks": len(chunks),
            "started_at": now().isoformat(),
        }
        self._put(self.keys.plan(name, run), json.dumps(plan).encode())
        messages = [
            ChunkMessage(
                model=self.model,
                bucket=bucket,
                key=key,
                etag=run,
                run=run,
                index=index,
                count=len(chunks),
                start_byte=chunk.start_byte,
                end_byte=chunk.end_byte,
                first_line=chunk.first_line,
            )
            for index, chunk in enumerate(chunks)
        ]
        if len(messages) > 1:
            self._queue.send(self._queue_url, [message.model_dump_json() for message in messages])
            return
        if messages:
            chunk = chunks[0]
            await self._process(messages[0], data[chunk.start_byte : chunk.end_byte])
        self._assemble_when_complete(name, run, len(messages))

    async def run_chunk(self, message: ChunkMessage) -> None:
        """Run one queued chunk; a chunk of a replaced input object is dropped."""
        name = self.keys.name_of(message.key)
        if name is None or message.bucket != self.bucket:
            raise ValueError(
                f"chunk message for s3://{message.bucket}/{message.key}: not a"
                f" batch input of {self.model!r}"
            )
        try:
            data = self._store.get(
                message.bucket,
                message.key,
                etag=message.etag,
                byte_range=(message.start_byte, message.end_byte),
            )
        except (ObjectChanged, ObjectNotFound):
            logger.info(
                "dropped chunk %d of s3://%s/%s: the object changed since run %s",
                message.index,
                message.bucket,
                message.key,
                message.run,
            )
            return
        await self._process(message, data)
        self._assemble_when_complete(name, message.run, message.count)

    async def _process(self, message: ChunkMessage, data: bytes) -> None:
        """Every line through the data plane; a bad line becomes an error line. The
        errors file is written first: the chunk file's presence means both are there."""
        name = self.keys.name_of(message.key)
        assert name is not None
        inputs = self.plane.engine(self.model).manifest.inputs
        outputs: list[str] = []
        errors: list[str] = []
        for offset, line in enumerate(split_lines(data)):
            try:
                response: dict[str, Any] = await self.plane.infer(
                    self.model, parse_line(line, inputs)
                )
            except InferstackError as exc:
                outputs.append(json.dumps({"error": str(exc)}))
                errors.append(json.dumps({"line": message.first_line + offset, "error": str(exc)}))
            else:
                outputs.append(json.dumps(response, separators=(",", ":"), allow_nan=False))
        self._put(self.keys.chunk_errors(name, message.run, message.index), _jsonl(errors))
        self._put(self.keys.chunk(name, message.run, message.index), _jsonl(outputs))

    def _assemble_when_complete(self, name: str, run: str, count: int) -> None:
        present = {
            int(match.group(1))
            for key in self._store.list_keys(self.bucket, self.keys.work(name, run))
            if (match := _CHUNK_FILE.fullmatch(key.rpartition("/")[2]))
        }
        if not present.issuperset(range(count)):
            return
        plan = json.loads(self._store.get(self.bucket, self.keys.plan(name, run)))
        if self._store.exists(self.bucket, self.keys.summary(name)):
            summary = json.loads(self._store.get(self.bucket, self.keys.summary(name)))
            # The plan's start time tells this run from an earlier one of the same name.
            if summary.get("started_at") == plan["started_at"]:
                return
        outputs = b"".join(
            self._store.get(self.bucket, self.keys.chunk(name, run, index))
            for index in range(count)
        )
        errors = b"".join(
            self._store.get(self.bucket, self.keys.chunk_errors(name, run, index))
            for index in range(count)
        )
        failed = errors.count(b"\n")
        self._put(self.keys.output(name), outputs)
        self._put(self.keys.errors(name), errors)
        finished = now()
        started = datetime.fromisoformat(plan["started_at"])
        summary = {
            "input": plan["input"],
            "model": self.model,
            "model_version": self.plane.engine(self.model).version,
            "lines": plan["lines"],
            "succeeded": plan["lines"] - failed,
            "failed": failed,
            "chunks": count,
            "started_at": plan["started_at"],
            "finished_at": finished.isoformat(),
            "seconds": round((finished - started).total_seconds(), 3),
        }
        self._put(self.keys.summary(name), json.dumps(summary).encode())

    def _put(self, key: str, body: bytes) -> None:
        self._store.put(self.bucket, key, body)


def _jsonl(lines: Sequence[str]) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode()
