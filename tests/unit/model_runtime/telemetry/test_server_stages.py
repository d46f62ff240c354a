"""The container server's Prometheus stage latency: the EMF metrics' stages, label
`stage`, exported before the first request and counted by each one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from model_runtime.server import ServerSettings, build_app
from model_runtime.telemetry.stages import STAGES
from tests.support.tiny_model import tiny_images


@pytest.fixture
def client(tiny_dir: Path) -> Iterator[TestClient]:
    settings = ServerSettings.from_env({"MODEL_DIR": str(tiny_dir), "INFERSTACK_THREADS": "1"})
    with TestClient(build_app(settings)) as client:
        yield client


def _stage_counts(client: TestClient) -> dict[str, float]:
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        if family.name != "inferstack_stage_latency_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_count"):
                assert sample.labels["model"] == "tiny"
                counts[sample.labels["stage"]] = sample.value
    return counts


def test_each_stage_is_counted_once_per_request(client: TestClient) -> None:
    assert _stage_counts(client) == dict.fromkeys(STAGES, 0.0)
    images = tiny_images(2)
    body = {
        "inputs": [
            {"name": "image", "shape": list(images.shape), "datatype": "FP32",
             "data": images.ravel().tolist()}
        ]
    }  # fmt: skip
    for _ in range(2):
        assert client.post("/v2/models/tiny/infer", json=body).status_code == 200
    assert _stage_counts(client) == dict.fromkeys(STAGES, 2.0)
