"""Values the graph itself refuses, after validation passed (onnxruntime's
INVALID_ARGUMENT, e.g. an id past an embedding table), are the client's 400 naming the
input, not a 500."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from model_runtime.app import create_app
from model_runtime.engine import Engine
from model_runtime.errors import InvalidInput
from tests.support.tiny_model import build_lookup_model


@pytest.fixture(scope="module")
def lookup_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return Engine.load(build_lookup_model(tmp_path_factory.mktemp("lookup")))


@pytest.fixture(scope="module")
def client(lookup_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app([lookup_engine]), raise_server_exceptions=False) as client:
        yield client


def _infer(client: TestClient, ids: list[int]) -> tuple[int, dict[str, object]]:
    body = {"inputs": [{"name": "ids", "shape": [len(ids)], "datatype": "INT64", "data": ids}]}
    response = client.post("/v2/models/lookup/infer", json=body)
    return response.status_code, response.json()


def test_ids_inside_the_table_are_looked_up(client: TestClient) -> None:
    status, body = _infer(client, [0, 4])
    assert status == 200
    assert body["outputs"][0]["data"] == [0.0, 1.0, 2.0, 3.0, 16.0, 17.0, 18.0, 19.0]  # type: ignore[index]


def test_an_id_past_the_table_is_a_400_naming_the_input(client: TestClient) -> None:
    status, body = _infer(client, [1, 7])
    assert status == 400
    assert set(body) == {"error"}
    message = str(body["error"])
    assert "'ids'" in message
    assert "out of data bounds" in message  # onnxruntime's own reason is kept


def test_the_engine_raises_invalid_input_not_inference_error(lookup_engine: Engine) -> None:
    with pytest.raises(InvalidInput, match="'ids'"):
        lookup_engine.infer({"ids": np.array([-9], np.int64)})
