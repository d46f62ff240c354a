"""Helpers for the event-driven tests and benchmark (jobs and batches on LocalStack): the
stack they deploy, a test-only entry point with faults, job calls, batch files, and what a
stack's queues, mappings and notifications left behind."""

from __future__ import annotations

import json
import math
import re
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from infra.stack_loader import load_stack
from localdev.deploy import down, up
from model_runtime.engine import Engine
from stacks.schema import AsyncConfig, BatchConfig, LambdaConfig, ModelConfig, StackConfig
from tests.support.deploy import aws, infer_body, stage_root

MODEL = "digits"
TERMINAL = ("succeeded", "failed")
# The test-only entry point's markers, in an image's first pixel (digits pixels are 0..16,
# so no real input carries them; both pass validation). RAISE makes the engine raise inside
# the production worker's per-message processing; SLOW makes one inference take SLOW_S.
RAISE_PIXEL = -99.0
SLOW_PIXEL = 99.0
SLOW_S = 0.5
FAULTY_HANDLER = textwrap.dedent(
    f"""
    import time

    from model_runtime.engine import Engine

    _run = Engine.run


    def _faulty_run(self, feed, names):
        first = float(feed["image"].flat[0]) if "image" in feed else None
        if first == {RAISE_PIXEL!r}:
            raise RuntimeError("injected fault: the engine raised")
        if first == {SLOW_PIXEL!r}:
            time.sleep({SLOW_S!r})
        return _run(self, feed, names)


    Engine.run = _faulty_run

    from functions import production

    handler = production.handler
    """
)


def events_config(
    *,
    timeout_s: int,
    batch_size: int,
    max_receives: int,
    chunk_lines: int,
    max_batching_window_s: int = 0,
) -> StackConfig:
    """The local stack with only `digits`, its jobs and batches enabled."""
    model = ModelConfig(
        name=MODEL,
        delivery="layer",
        lambda_=LambdaConfig(memory_mb=1024, timeout_s=timeout_s),
        async_=AsyncConfig(
            batch_size=batch_size,
            max_batching_window_s=max_batching_window_s,
            max_receives=max_receives,
        ),
        batch=BatchConfig(chunk_lines=chunk_lines),
    )
    return load_stack("local").model_copy(update={"models": [model]})


@dataclass(frozen=True)
class EventsStack:
    """A deployed events stack: its outputs, and what the tests read it with."""

    name: str
    endpoint: str
    root: Path
    config: StackConfig
    outputs: dict[str, Any]

    @property
    def url(self) -> str:
        return str(self.outputs["url"])

    @property
    def bucket(self) -> str:
        return str(self.outputs["jobsBucket"])

    @property
    def jobs(self) -> dict[str, Any]:
        jobs: dict[str, Any] = self.outputs["jobs"][MODEL]
        return jobs

    @property
    def queue_url(self) -> str:
        return str(self.jobs["queueUrl"])

    @property
    def dead_letter_queue_url(self) -> str:
        return str(self.jobs["deadLetterQueueUrl"])

    @property
    def batch_prefix(self) -> str:
        """`batches/digits` (from the output `s3://<bucket>/batches/digits/in/`)."""
        uri = str(self.jobs["batchPrefix"])
        return uri.removeprefix(f"s3://{self.bucket}/").removesuffix("/in/")

    def client(self, service: str) -> Any:
        return aws(service, self.endpoint)


@contextmanager
def deployed_stack(
    name: str,
    config: StackConfig,
    endpoint: str,
    artifact: Path,
    root: Path,
    *,
    handler: str | None = FAULTY_HANDLER,
) -> Iterator[EventsStack]:
    """Stage a project root with `artifact` as digits, deploy, and always `down`."""
    staged = stage_root(root, config, {MODEL: artifact}, handler=handler)
    try:
        summary = up(name, config=config, root=staged)
        yield EventsStack(name, endpoint, staged, config, summary.outputs)
    finally:
        down(name, root=staged)


# --- jobs over HTTP ------------------------------------------------------------------


def jobs_path(job_id: str | None = None) -> str:
    base = f"/v2/models/{MODEL}/jobs"
    return base if job_id is None else f"{base}/{job_id}"


def submit(http: httpx.Client, body: Any, key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return http.post(jobs_path(), json=body, headers=headers)


def submitted_id(response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "pending", body
    assert body["status_url"] == jobs_path(body["id"]), body
    assert response.headers["location"] == body["status_url"], response.headers
    job_id: str = body["id"]
    return job_id


def submit_all(url: str, bodies: Sequence[Any], clients: int) -> list[str]:
    """Submit every body concurrently from `clients` threads (one httpx client each)."""

    def submit_slice(part: Sequence[Any]) -> list[str]:
        with httpx.Client(base_url=url, timeout=60.0) as http:
            return [submitted_id(submit(http, body)) for body in part]

    parts = [bodies[index::clients] for index in range(clients)]
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(submit_slice, parts))
    ids = [""] * len(bodies)
    for index, part_ids in enumerate(results):
        ids[index::clients] = part_ids
    return ids


def status_key(job_id: str) -> str:
    return f"jobs/{MODEL}/{job_id}/status.json"


def read_record(s3: Any, bucket: str, job_id: str) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=status_key(job_id))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    record: dict[str, Any] = json.loads(body)
    return record


def wait_finished(
    stack: EventsStack,
    ids: Iterable[str],
    timeout_s: float,
    *,
    after_drain: bool = False,
    on_progress: Callable[[dict[str, str]], None] | None = None,
) -> list[dict[str, Any]]:
    """Every job's record once it is succeeded or failed, in the order of `ids`, read
    straight from the bucket; `on_progress` sees each job's status after each look.

    `after_drain`: look only once the job queue is empty (a message goes only once its
    result is stored): reading hundreds of records every second would load LocalStack
    more than the jobs do."""
    s3 = stack.client("s3")
    sqs = stack.client("sqs")
    states = dict.fromkeys(ids, "missing")
    records: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while True:
        if not after_drain or queue_depth(sqs, stack.queue_url) == 0:
            for job_id in states.keys() - records.keys():
                record = read_record(s3, stack.bucket, job_id)
                states[job_id] = record["status"] if record is not None else "missing"
                if record is not None and record["status"] in TERMINAL:
                    records[job_id] = record
            if on_progress is not None:
                on_progress(states)
        if len(records) == len(states):
            return [records[job_id] for job_id in states]
        if time.monotonic() > deadline:
            counts = {state: list(states.values()).count(state) for state in set(states.values())}
            pytest.fail(f"jobs not finished after {timeout_s:.0f} s: {counts}")
        time.sleep(1.0)


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Messages in the queue, in flight or not."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)
    return sum(int(attributes["Attributes"][name]) for name in names)


def fetch_records(url: str, ids: Sequence[str], clients: int) -> list[dict[str, Any]]:
    """Every job's record through `GET .../jobs/{id}`, in the order of `ids`."""

    def fetch_slice(part: Sequence[str]) -> list[dict[str, Any]]:
        with httpx.Client(base_url=url, timeout=60.0) as http:
            records = []
            for job_id in part:
                response = http.get(jobs_path(job_id))
                assert response.status_code == 200, response.text
                records.append(response.json())
            return records

    parts = [ids[index::clients] for index in range(clients)]
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(fetch_slice, parts))
    records: list[dict[str, Any]] = [{}] * len(ids)
    for index, part_records in enumerate(results):
        records[index::clients] = part_records
    return records


# --- what the in-process Engine answers ----------------------------------------------


def engine_outputs(engine: Engine, images: np.ndarray) -> dict[str, np.ndarray]:
    """The Engine's outputs for each image, one inference per image (as the function runs
    each job and each batch line)."""
    rows = [engine.infer({"image": images[index : index + 1]}) for index in range(len(images))]
    return {name: np.concatenate([row[name] for row in rows]) for name in rows[0]}


def response_outputs(response: dict[str, Any]) -> dict[str, np.ndarray]:
    return {
        output["name"]: np.array(output["data"]).reshape(output["shape"])
        for output in response["outputs"]
    }


def assert_matches(response: dict[str, Any], expected: dict[str, np.ndarray], index: int) -> None:
    """`response` (one image's OIP response) equals row `index` of the Engine's outputs."""
    got = response_outputs(response)
    assert set(got) == set(expected), (set(got), set(expected))
    np.testing.assert_allclose(
        got["probabilities"], expected["probabilities"][index : index + 1], rtol=1e-5, atol=1e-6
    )
    assert got["label"].tolist() == expected["label"][index : index + 1].tolist()


def job_bodies(images: np.ndarray) -> list[dict[str, Any]]:
    return [infer_body(images[index : index + 1]) for index in range(len(images))]


def marked(images: np.ndarray, pixel: float) -> np.ndarray:
    """A copy of `images` whose first pixel is the test-only entry point's marker."""
    copy = images.copy()
    copy.reshape(len(copy), -1)[:, 0] = pixel
    return copy


# --- batches in the bucket -----------------------------------------------------------


@dataclass(frozen=True)
class BatchFile:
    """A JSONL batch: its text, its bad lines' text and its good lines' image, by 1-based
    line number."""

    text: str
    bad: dict[int, str]
    images: dict[int, np.ndarray]

    @property
    def lines(self) -> int:
        return self.text.count("\n")


# Malformed lines, each wrong in another way.
UNKNOWN_INPUT = json.dumps({"pixels": np.zeros((1, 1, 8, 8)).tolist()})
WRONG_RANK = json.dumps(
    {"inputs": [{"name": "image", "shape": [1, 8, 8], "datatype": "FP32", "data": [0.0] * 64}]}
)
NOT_JSON = ('{"inputs": [{"name": "image", "shape": [1, 1, 8, 8]', "not json at all")
BAD_LINES = (
    *NOT_JSON,
    '{"inputs": "image"}',  # an OIP request of the wrong shape
    "[1, 2, 3]",  # JSON, but not an object
    UNKNOWN_INPUT,
    WRONG_RANK,
)


def batch_file(images: np.ndarray, lines: int, bad: set[int]) -> BatchFile:
    """`lines` lines cycling over `images` (line n holds image (n - 1) % len(images)): OIP
    requests and `{"image": data}` objects in turn; the line numbers in `bad` (1-based)
    hold BAD_LINES in turn instead."""
    bad_text = {number: BAD_LINES[i % len(BAD_LINES)] for i, number in enumerate(sorted(bad))}
    rows: list[str] = []
    good: dict[int, np.ndarray] = {}
    for number in range(1, lines + 1):
        if number in bad_text:
            rows.append(bad_text[number])
            continue
        image = images[(number - 1) % len(images)][None]
        good[number] = image
        if number % 2:
            rows.append(json.dumps(infer_body(image)))
        else:
            rows.append(json.dumps({"image": image.tolist()}))
    return BatchFile("\n".join(rows) + "\n", bad_text, good)


def wait_object(s3: Any, bucket: str, key: str, timeout_s: float) -> bytes:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            return body
        except s3.exceptions.NoSuchKey:
            if time.monotonic() > deadline:
                pytest.fail(f"s3://{bucket}/{key} did not appear within {timeout_s:.0f} s")
            time.sleep(1.0)


def chunk_count(lines: int, chunk_lines: int) -> int:
    return math.ceil(lines / chunk_lines)


def jsonl(body: bytes) -> list[Any]:
    return [json.loads(line) for line in body.decode().splitlines()]


# --- what a stack's event resources left behind --------------------------------------


@dataclass(frozen=True)
class EventLeftovers:
    queues: list[str]
    mappings: list[str]
    notifications: list[str]

    @property
    def empty(self) -> bool:
        return not (self.queues or self.mappings or self.notifications)


def event_leftovers(endpoint: str, stack: str) -> EventLeftovers:
    """The stack's digits queues, event source mappings and bucket notifications (on any
    of the stack's buckets that still exists). Names are matched whole: stack `t-ev`'s
    must not match stack `t-ev-faults`'s."""
    function = f"inferstack-{stack}-{MODEL}"
    sqs = aws("sqs", endpoint)
    queues = [
        url
        for url in sqs.list_queues().get("QueueUrls", [])
        if url.rsplit("/", 1)[-1] in (f"{function}-jobs", f"{function}-dlq")
    ]
    mappings = [
        mapping["UUID"]
        for mapping in aws("lambda", endpoint).list_event_source_mappings()["EventSourceMappings"]
        if re.search(rf":function:{function}(:|$)", mapping.get("FunctionArn", ""))
        or mapping.get("EventSourceArn", "").endswith(f":{function}-jobs")
    ]
    s3 = aws("s3", endpoint)
    notifications = []
    for bucket in s3.list_buckets()["Buckets"]:
        if not re.fullmatch(rf"inferstack-{stack}-(jobs|artifacts)-[0-9a-f]+", bucket["Name"]):
            continue
        configuration = s3.get_bucket_notification_configuration(Bucket=bucket["Name"])
        configuration.pop("ResponseMetadata", None)
        if any(configuration.values()):
            notifications.append(bucket["Name"])
    return EventLeftovers(queues, mappings, notifications)
