"""The `local` stack as the CLI sees it once deployed, with nothing deployed: the outputs
`up` recorded, answered by `deployment.outputs`."""

from __future__ import annotations

from typing import Any

import pytest

from cli import deployment

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
