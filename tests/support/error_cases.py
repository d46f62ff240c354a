"""Bad requests of the digits-shaped models (input `image`, FP32 [-1, 1, 8, 8]: the tiny
model and digits): each with the status and a fragment of the error the app answers it
with. The app's own tests (tests/unit/model_runtime/test_app_errors.py) check them in
process; the deploy tests send them through API Gateway to a Lambda function and to a
model server and compare the answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.support.tiny_model import MAX_BATCH_SIZE


def image_input(batch: int = 1, nested: bool = False, **overrides: Any) -> dict[str, Any]:
    images = np.random.default_rng(batch).uniform(0, 1, (batch, 1, 8, 8)).astype(np.float32)
    data = images.tolist() if nested else images.ravel().tolist()
    return {
        "name": "image",
        "shape": [batch, 1, 8, 8],
        "datatype": "FP32",
        "data": data,
    } | overrides


# (body, status, fragment): a str body is sent as is, anything else as JSON.
BAD_REQUESTS: list[Any] = [
    pytest.param('{"inputs": [', 400, "malformed JSON", id="malformed-json"),
    pytest.param("", 422, "invalid request: body", id="empty-body"),
    pytest.param("[1, 2]", 422, "invalid request: body", id="not-an-object"),
    pytest.param({}, 422, "invalid request: inputs: Field required", id="no-inputs"),
    pytest.param({"inputs": []}, 422, "invalid request: inputs", id="zero-inputs"),
    pytest.param(
        {"inputs": [image_input(datatype="FLOAT32")]},
        422,
        "inputs.0.datatype",
        id="unknown-datatype",
    ),
    pytest.param(
        {"inputs": [image_input(shape=[1, 1, 8, -8])]},
        422,
        "inputs.0.shape.3",
        id="negative-dim",
    ),
    pytest.param(
        {"inputs": [image_input(data=[0.5] * 63)]},
        400,
        "which needs 64 values, but data has 63",
        id="shape-data-mismatch",
    ),
    pytest.param(
        {"inputs": [image_input(shape=[1, 64], data=[0.5] * 64)]},
        400,
        "(rank 2), model expects rank 4",
        id="wrong-rank",
    ),
    pytest.param(
        {"inputs": [image_input(shape=[1, 1, 4, 16], data=[0.5] * 64)]},
        400,
        "dimension 2 must be 8",
        id="fixed-dim",
    ),
    pytest.param(
        {"inputs": [image_input(datatype="FP64")]},
        400,
        "has datatype FP64, model expects FP32",
        id="wrong-datatype",
    ),
    pytest.param(
        {"inputs": [image_input(data=["0.5"] * 64)]},
        400,
        "is FP32 but its data holds strings",
        id="strings",
    ),
    pytest.param(
        {"inputs": [image_input(data=[[0.5] * 8] * 7 + [[0.5] * 7])]},
        400,
        "data is ragged",
        id="ragged",
    ),
    pytest.param(
        {"inputs": [image_input(shape=[0, 1, 8, 8], data=[])]},
        400,
        "empty batch",
        id="empty-batch",
    ),
    pytest.param(
        {"inputs": [image_input(MAX_BATCH_SIZE + 1)]},
        413,
        f"batch {MAX_BATCH_SIZE + 1}, over this model's limit of {MAX_BATCH_SIZE}",
        id="batch-limit",
    ),
    pytest.param(
        {"inputs": [image_input(name="pixels")]},
        400,
        "missing input(s) 'image'",
        id="unknown-input",
    ),
    pytest.param(
        {"inputs": [image_input(), image_input()]},
        400,
        "input 'image' is given more than once",
        id="duplicate-input",
    ),
    pytest.param(
        {"inputs": [image_input()], "outputs": [{"name": "logits"}]},
        400,
        "unknown output(s) 'logits'",
        id="unknown-output",
    ),
    pytest.param(
        {"inputs": [image_input()], "outputs": [{"name": "label"}] * 2},
        400,
        "requested more than once",
        id="duplicate-output",
    ),
    pytest.param(
        {"inputs": [image_input(parameters={"binary_data_size": 256})]},
        400,
        "binary tensor extension",
        id="binary-extension",
    ),
    pytest.param(
        {"inputs": [image_input(data=[3e38] * 64)]},
        400,
        "output 'probabilities' is not finite",
        id="non-finite-output",
    ),
    pytest.param(
        {"inputs": [image_input()], "extra": 1},
        422,
        "extra: Extra inputs are not permitted",
        id="extra-field",
    ),
]
