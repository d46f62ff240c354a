"""INFERSTACK_MODEL_NAME: the container server serves its one model under another name
(a GPU-served model named apart from its artifact): routes, metadata, metrics labels and
error messages all say the served name, and the manifest's name is not served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from model_runtime.errors import ConfigError
from model_runtime.server import ServerSettings, build_app
from tests.support.tiny_model import tiny_images

SERVED = "tiny-gpu"


@pytest.fixture
def client(tiny_dir: Path) -> Iterator[TestClient]:
    env = {"MODEL_DIR": str(tiny_dir), "INFERSTACK_THREADS": "1", "INFERSTACK_MODEL_NAME": SERVED}
    with TestClient(build_app(ServerSettings.from_env(env))) as client:
        yield client


def _body(batch: int) -> dict[str, Any]:
    images = tiny_images(batch)
    return {
        "inputs": [
            {"name": "image", "shape": list(images.shape), "datatype": "FP32",
             "data": images.ravel().tolist()}
        ]
    }  # fmt: skip


def test_the_model_is_served_under_the_given_name_only(client: TestClient) -> None:
    metadata = client.get(f"/v2/models/{SERVED}").json()
    assert metadata["name"] == SERVED
    assert client.get(f"/v2/models/{SERVED}/ready").json() == {"name": SERVED, "ready": True}
    answer = client.post(f"/v2/models/{SERVED}/infer", json=_body(2))
    assert answer.status_code == 200
    assert answer.json()["model_name"] == SERVED
    missing = client.post("/v2/models/tiny/infer", json=_body(1))
    assert missing.status_code == 404
    assert missing.json() == {
        "error": f"model 'tiny' is not served here; served models: '{SERVED}'"
    }


def test_errors_and_metrics_say_the_served_name(client: TestClient) -> None:
    body = _body(1)
    body["inputs"][0]["name"] = "pixels"
    bad = client.post(f"/v2/models/{SERVED}/infer", json=body)
    assert bad.status_code == 400, bad.text
    assert f"model {SERVED!r}" in bad.json()["error"]
    assert client.post(f"/v2/models/{SERVED}/infer", json=_body(1)).status_code == 200
    labels = {
        sample.labels.get("model")
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
        if "model" in sample.labels
    }
    assert labels == {SERVED}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"MODEL_DIR": "/a:/b", "INFERSTACK_MODEL_NAME": "x"},
            "INFERSTACK_MODEL_NAME has value 'x', which renames exactly one model; MODEL_DIR"
            " and MODEL_URI configure 2",
        ),
        (
            {"MODEL_DIR": "/a", "MODEL_URI": "/b", "INFERSTACK_MODEL_NAME": "x"},
            "INFERSTACK_MODEL_NAME has value 'x', which renames exactly one model; MODEL_DIR"
            " and MODEL_URI configure 2",
        ),
        (
            {"MODEL_DIR": "/a", "INFERSTACK_MODEL_NAME": "Digits GPU"},
            "INFERSTACK_MODEL_NAME has value 'Digits GPU'; allowed: a model name (lowercase"
            " letters, digits and '_.-', starting with a letter or digit, at most 63 characters)",
        ),
    ],
)
def test_a_bad_served_name_is_a_config_error_naming_the_variable(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        ServerSettings.from_env(env)
    assert str(caught.value) == message


def test_without_the_variable_the_manifest_name_is_served() -> None:
    assert ServerSettings.from_env({"MODEL_DIR": "/a"}).model_name is None
