"""The `local` stack as the CLI sees it once deployed, with nothing deployed: the outputs
`up` recorded, answered by `deployment.outputs`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli import deployment
from tests.unit.cli.version_fakes import KEY, TOP1_GATE, FakeApi, FakeLambda, digits_answer, label

URL = "http://127.0.0.1:4566/restapis/a1/local/_user_request_"
BUCKET = "inferstack-local-jobs-1a2b"
QUEUES = "http://127.0.0.1:4566/000000000000/inferstack-local-digits"


@pytest.fixture
def outputs(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `up --stack local` recorded (jobs and batches for digits only); a test may
    change it before it calls the CLI."""
    recorded: dict[str, Any] = {
        "url": URL,
        "functions": {"digits": "inferstack-local-digits", "digits-int8": "inferstack-local-d8"},
        "bucket": "inferstack-local-artifacts-9z",
        "jobsBucket": BUCKET,
        "jobs": {
            "digits": {
                "queueUrl": f"{QUEUES}-jobs",
                "deadLetterQueueUrl": f"{QUEUES}-dlq",
                "jobsUrl": f"{URL}/v2/models/digits/jobs",
                "batchPrefix": f"s3://{BUCKET}/batches/digits/in/",
            }
        },
    }
    monkeypatch.setattr(deployment, "outputs", lambda stack, engine=None: recorded)
    return recorded


@pytest.fixture
def requests_file(tmp_path: Path) -> Path:
    """Four requests, each naming its row in its one value."""
    path = tmp_path / "digits.compare.jsonl"
    lines = [
        json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": [n]}]})
        for n in range(4)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, outputs: dict[str, Any]) -> FakeApi:
    outputs["apiKeys"] = {"default": KEY}
    fake = FakeApi()
    # Version 1 answers each row's number (mod 3); version 2 agrees on rows 0 to 2 only.
    fake.answers["1"] = lambda row: digits_answer("1", row % 3)
    fake.answers["2"] = lambda row: digits_answer("2", row % 3 if row < 3 else 1)
    client = httpx.Client

    def mocked(**options: Any) -> httpx.Client:
        return client(transport=httpx.MockTransport(fake.handle), **options)

    monkeypatch.setattr(httpx, "Client", mocked)
    return fake


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, outputs: dict[str, Any]) -> FakeLambda:
    """digits version 1 (Lambda version 1) live, version 2 (Lambda version 2, with a top-1
    gate of 0.99) published, and a version 3 published without a label."""
    lam = FakeLambda([label("1"), label("2", TOP1_GATE), None])

    def client(stack: str, service: str) -> FakeLambda:
        assert (stack, service) == ("local", "lambda")
        return lam

    monkeypatch.setattr(deployment, "aws_client", client)
    return lam
