"""Text through the Open Inference Protocol app: tokenization, truncation, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from model_build.reference_models.minilm import MAX_TOKENS, reference_embeddings
from model_runtime.app import create_app
from model_runtime.engine import Engine
from model_runtime.manifest import Manifest

URL = "/v2/models/minilm/infer"
LONG_TEXT = " ".join(["the quick brown fox jumps over the lazy dog"] * 60)  # ~540 tokens


@pytest.fixture(scope="module")
def client(minilm_engine: Engine) -> TestClient:
    return TestClient(create_app([minilm_engine]))


def text_request(data: list[Any], datatype: str = "BYTES", **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [{"name": "text", "shape": [len(data)], "datatype": datatype, "data": data}],
        **extra,
    }


def test_manifest_declares_the_tokenizer_stage(minilm_dir: Path) -> None:
    manifest = Manifest.load(minilm_dir)
    stage = manifest.preprocessing
    assert stage is not None and stage.kind == "tokenizer" and stage.max_length == MAX_TOKENS
    assert stage.file in manifest.files  # hashed and verified like the model
    assert [(s.name, s.datatype, s.shape) for s in manifest.inputs] == [("text", "BYTES", [-1])]
    assert {s.name: s.shape for s in stage.model_inputs} == {
        "input_ids": [-1, -1],
        "attention_mask": [-1, -1],
        "token_type_ids": [-1, -1],
    }
    assert [(s.name, s.shape) for s in manifest.outputs] == [("embedding", [-1, 384])]


def test_metadata_shows_text_in(client: TestClient) -> None:
    metadata = client.get("/v2/models/minilm").json()
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]


def test_text_in_embeddings_out(client: TestClient, minilm_engine: Engine) -> None:
    texts = ["A man is eating food.", "How do I reset my password?"]
    response = client.post(URL, json=text_request(texts, id="r1", parameters={"trace": "x"}))
    assert response.status_code == 200, response.text
    body = response.json()
    (output,) = body["outputs"]
    assert output["name"] == "embedding" and output["shape"] == [2, 384]
    expected = minilm_engine.infer({"text": np.array(texts, dtype=object)})["embedding"]
    np.testing.assert_allclose(np.reshape(output["data"], (2, 384)), expected, rtol=1e-6)
    assert body["id"] == "r1"
    assert body["parameters"] == {"trace": "x", "truncated": False, "max_tokens": MAX_TOKENS}


def test_long_text_is_truncated_and_the_response_says_so(
    client: TestClient, minilm_engine: Engine
) -> None:
    response = client.post(URL, json=text_request(["short", LONG_TEXT, "also short"]))
    assert response.status_code == 200, response.text
    assert response.json()["parameters"] == {
        "truncated": True,
        "max_tokens": MAX_TOKENS,
        "truncated_items": "1",
    }
    # sentence-transformers cuts at the same 256 tokens.
    served = np.reshape(response.json()["outputs"][0]["data"], (3, 384))[1]
    assert float(served @ reference_embeddings([LONG_TEXT])[0]) >= 0.9999


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (text_request(["fine", ""]), "item 1 is empty"),
        (text_request(["   \n\t "]), "item 0 is empty"),
        (text_request(["ok", "\udcff broken"]), "not valid UTF-8"),
        (text_request([1.5, 2.5], datatype="FP32"), "datatype FP32, model expects BYTES"),
        (text_request([1, 2]), "BYTES: data must be strings"),
        (text_request([["a", "b"]]), "shape"),
        (
            {"inputs": [{"name": "tokens", "shape": [1], "datatype": "BYTES", "data": ["x"]}]},
            "missing input(s) 'text'",
        ),
    ],
)
def test_bad_text_input_is_a_400(client: TestClient, body: dict[str, Any], needle: str) -> None:
    response = client.post(
        URL, content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert needle in response.json()["error"]


def test_non_utf8_bytes_in_the_body_are_a_400(client: TestClient) -> None:
    raw = b'{"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": ["\xff\xfe"]}]}'
    response = client.post(URL, content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert "error" in response.json()


def test_non_utf8_bytes_in_process_are_invalid_input(minilm_engine: Engine) -> None:
    from model_runtime.errors import InvalidInput

    with pytest.raises(InvalidInput, match="item 0 is not valid UTF-8"):
        minilm_engine.infer({"text": np.array([b"\xff\xfe"], dtype=object)})
    embedding = minilm_engine.infer({"text": np.array(["café".encode()], dtype=object)})
    assert embedding["embedding"].shape == (1, 384)


def test_batch_over_the_limit_is_a_413(client: TestClient) -> None:
    response = client.post(URL, json=text_request(["word"] * 65))
    assert response.status_code == 413
    assert "limit of 64" in response.json()["error"]


def test_int8_keeps_its_tokenizer_and_records_what_stayed_fp32(minilm_int8_dir: Path) -> None:
    manifest = Manifest.load(minilm_int8_dir)
    assert manifest.preprocessing is not None and "tokenizer.json" in manifest.files
    assert manifest.quantization is not None
    # Which nodes stay fp32 is searched for (tests/integration/model_build/
    # test_minilm_optimized.py checks the search); the result is recorded.
    assert manifest.quantization.kept_fp32


def test_a_manifest_without_preprocessing_still_loads(digits_dir: Path) -> None:
    data = json.loads((digits_dir / "manifest.json").read_text())
    assert "preprocessing" not in data or data["preprocessing"] is None
    data.pop("preprocessing", None)
    assert Manifest.model_validate(data).preprocessing is None
