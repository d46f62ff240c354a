"""A batch line -> an InferenceRequest: the OIP form, the `{input name: data}` form."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model_runtime.engine import Engine
from model_runtime.errors import InvalidInput
from model_runtime.events.lines import parse_line
from model_runtime.manifest import TensorSpec
from model_runtime.protocol import decode_request

IMAGE = [TensorSpec(name="image", datatype="FP32", shape=[-1, 1, 8, 8])]
PAIR = [
    TensorSpec(name="a", datatype="FP32", shape=[-1, 4]),
    TensorSpec(name="b", datatype="INT64", shape=[-1, 4]),
]


def test_an_oip_request_line(tiny_inputs: np.ndarray) -> None:
    body = {
        "id": "x",
        "inputs": [
            {
                "name": "image",
                "shape": [1, 1, 8, 8],
                "datatype": "FP32",
                "data": tiny_inputs[0].ravel().tolist(),
            }
        ],
    }
    request = parse_line(json.dumps(body).encode() + b"\r", IMAGE)
    assert request.id == "x"
    np.testing.assert_array_equal(decode_request(request)["image"], tiny_inputs[:1])


def test_arrays_by_name_get_the_models_datatype_and_a_batch_dimension(
    tiny_engine: Engine, tiny_inputs: np.ndarray
) -> None:
    one = parse_line(json.dumps({"image": tiny_inputs[0].tolist()}).encode(), IMAGE)
    assert one.inputs[0].shape == [1, 1, 8, 8] and one.inputs[0].datatype == "FP32"
    batch = parse_line(json.dumps({"image": tiny_inputs[:2].tolist()}).encode(), IMAGE)
    assert batch.inputs[0].shape == [2, 1, 8, 8]
    tiny_engine.validate(decode_request(batch))
    pair = parse_line(b'{"a": [1.5, 2, 3, 4], "b": [[1, 2, 3, 4]]}', PAIR)
    tensors = decode_request(pair)
    assert tensors["a"].dtype == np.float32 and tensors["a"].shape == (1, 4)
    assert tensors["b"].dtype == np.int64 and tensors["b"].shape == (1, 4)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "empty line"),
        (b"  \r", "empty line"),
        (b'{"image": [1, 2', "malformed JSON: "),
        (b"\xff\xfe", "malformed JSON: "),
        pytest.param(
            b"[" * 100_000 + b"]" * 100_000, "malformed JSON: nested too deeply", id="deep"
        ),
        (b"[1, 2]", "expected a JSON object, got list"),
        (b"{}", "unknown input(s) none; model inputs: 'image'"),
        (b'{"pixels": [1]}', "unknown input(s) 'pixels'; model inputs: 'image'"),
        (b'{"image": [[1, 2], [3]]}', "input 'image' data is ragged"),
        (b'{"image": ["a", "b"]}', "input 'image' is FP32 but its data holds strings"),
        (b'{"inputs": []}', "invalid request: inputs: List should have at least 1 item"),
        (b'{"inputs": [{"name": "image"}]}', "invalid request: inputs.0.shape: Field required"),
    ],
)
def test_a_bad_line_names_its_problem(line: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_request(parse_line(line, IMAGE))
    assert str(caught.value).startswith(reason), caught.value


def test_a_shape_the_model_does_not_take_is_caught_by_the_engine(tiny_engine: Engine) -> None:
    request = parse_line(b'{"image": [[1.0, 2.0, 3.0]]}', IMAGE)
    with pytest.raises(InvalidInput, match="model expects rank 4"):
        tiny_engine.validate(decode_request(request))
