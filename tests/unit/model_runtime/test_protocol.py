"""Open Inference Protocol v2 tensors: JSON data in, numpy out, and back."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pydantic import ValidationError

from model_runtime.datatypes import NUMPY_DTYPES
from model_runtime.errors import InvalidInput
from model_runtime.protocol import (
    InferenceRequest,
    RequestInput,
    decode_input,
    decode_request,
    encode_output,
)


def _tensor(datatype: str, shape: list[int], data: list[Any], **extra: Any) -> RequestInput:
    return RequestInput(name="x", datatype=datatype, shape=shape, data=data, **extra)


def test_flat_and_nested_data_decode_the_same() -> None:
    flat = decode_input(_tensor("FP32", [2, 3], [1, 2, 3, 4, 5, 6.5]))
    nested = decode_input(_tensor("FP32", [2, 3], [[1, 2, 3], [4, 5, 6.5]]))

    assert flat.dtype == nested.dtype == np.float32
    assert flat.shape == nested.shape == (2, 3)
    np.testing.assert_array_equal(flat, nested)
    np.testing.assert_array_equal(flat, [[1, 2, 3], [4, 5, 6.5]])


def test_integers_decode_exactly() -> None:
    big = 2**62 + 1  # not representable in float64
    array = decode_input(_tensor("INT64", [2], [big, -big]))
    assert array.dtype == np.int64
    assert array.tolist() == [big, -big]


@pytest.mark.parametrize(
    ("datatype", "value"),
    [
        ("INT8", 128),
        ("INT8", -129),
        ("UINT8", 256),
        ("UINT8", -1),
        ("INT32", 2**31),
        ("UINT32", -1),
        ("INT64", 2**63),
        ("UINT64", -1),
        ("UINT16", 65536),
    ],
)
def test_integer_out_of_range(datatype: str, value: int) -> None:
    with pytest.raises(InvalidInput, match=f"input 'x' has values outside the {datatype} range"):
        decode_input(_tensor(datatype, [2], [0, value]))


@pytest.mark.parametrize(
    ("datatype", "value"),
    [("INT8", -128), ("INT8", 127), ("UINT8", 255), ("UINT64", 2**64 - 1), ("INT64", -(2**63))],
)
def test_integer_range_edges_are_accepted(datatype: str, value: int) -> None:
    assert decode_input(_tensor(datatype, [1], [value])).tolist() == [value]


@pytest.mark.parametrize(
    "data", [[1, 2**64 - 1], [0, 2**63], [[2**63], [2**64 - 1]]], ids=["max", "2^63", "nested"]
)
def test_uint64_beyond_int64_stays_exact(data: list[Any]) -> None:
    # numpy alone reads these lists as float64, which loses the low bits.
    array = decode_input(_tensor("UINT64", [2], data))
    assert array.dtype == np.uint64
    assert array.ravel().tolist() == np.ravel(np.array(data, dtype=object)).tolist()


@pytest.mark.parametrize("data", [[2**64], [-1, 2**64], [0, 2**63]])
def test_int64_overflow_is_out_of_range_not_non_integer(data: list[Any]) -> None:
    with pytest.raises(InvalidInput, match="outside the INT64 range"):
        decode_input(_tensor("INT64", [len(data)], data))


def test_floats_for_integer_datatype() -> None:
    with pytest.raises(
        InvalidInput, match="input 'x' is INT32 but its data holds non-integer numbers"
    ):
        decode_input(_tensor("INT32", [2], [1, 2.5]))


def test_bools() -> None:
    array = decode_input(_tensor("BOOL", [3], [True, False, True]))
    assert array.dtype == np.bool_
    assert array.tolist() == [True, False, True]
    with pytest.raises(
        InvalidInput, match="input 'x' is BOOL but its data holds values of type int64"
    ):
        decode_input(_tensor("BOOL", [2], [0, 1]))
    with pytest.raises(InvalidInput, match="input 'x' is FP32 but its data holds booleans"):
        decode_input(_tensor("FP32", [2], [True, False]))


def test_integers_are_valid_float_data() -> None:
    array = decode_input(_tensor("FP64", [3], [1, 2, 3]))
    assert array.dtype == np.float64
    assert array.tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("datatype", ["FP32", "INT64", "BOOL"])
def test_strings_for_numeric_datatype(datatype: str) -> None:
    with pytest.raises(InvalidInput, match=f"input 'x' is {datatype} but its data holds strings"):
        decode_input(_tensor(datatype, [2], ["1", "2"]))


@pytest.mark.parametrize("data", [[1, None], [{"a": 1}, 2], [[1, 2], [3, None]]])
def test_mixed_or_non_numeric_data(data: list[Any]) -> None:
    with pytest.raises(InvalidInput, match="input 'x' is FP32 but its data holds"):
        decode_input(_tensor("FP32", [int(np.size(np.array(data, dtype=object)))], data))


@pytest.mark.parametrize("data", [[[1, 2], [3]], [[1, 2], 3], [[[1]], [2]]])
def test_ragged_data(data: list[Any]) -> None:
    with pytest.raises(InvalidInput, match="input 'x' data is ragged"):
        decode_input(_tensor("FP32", [3], data))


@pytest.mark.parametrize(
    ("shape", "data", "count"),
    [([2, 3], [1, 2, 3, 4, 5], 5), ([4], [[1, 2], [3, 4], [5, 6]], 6), ([1], [], 0)],
)
def test_shape_and_data_mismatch(shape: list[int], data: list[Any], count: int) -> None:
    expected = int(np.prod(shape))
    message = f"input 'x' has shape {shape}, which needs {expected} values, but data has {count}"
    with pytest.raises(InvalidInput, match=re.escape(message)):
        decode_input(_tensor("FP32", shape, data))


def test_empty_batch_decodes_to_an_empty_array() -> None:
    # The Engine, which knows the model, says that an empty batch is not allowed.
    array = decode_input(_tensor("FP32", [0, 1, 8, 8], []))
    assert array.shape == (0, 1, 8, 8)


def test_float_overflow_becomes_inf_for_the_engine_to_refuse() -> None:
    array = decode_input(_tensor("FP16", [2], [1.0, 1e10]))
    assert array.dtype == np.float16
    assert np.isinf(array[1])


def test_bytes_flat_and_nested() -> None:
    flat = decode_input(_tensor("BYTES", [2, 2], ["a", "b", "c", "dé"]))
    nested = decode_input(_tensor("BYTES", [2, 2], [["a", "b"], ["c", "dé"]]))
    assert flat.dtype == nested.dtype == np.dtype(object)
    assert flat.shape == (2, 2)
    assert flat.tolist() == nested.tolist() == [["a", "b"], ["c", "dé"]]


@pytest.mark.parametrize("data", [["a", 1], [["a"], [None]], [True]])
def test_bytes_must_be_strings(data: list[Any]) -> None:
    with pytest.raises(InvalidInput, match="input 'x' is BYTES: data must be strings"):
        decode_input(_tensor("BYTES", [2], data))


@pytest.mark.parametrize("data", [[["a", "b"], ["c"]], [["a"], "b", "c"]])
def test_ragged_bytes_data(data: list[Any]) -> None:
    with pytest.raises(InvalidInput, match="input 'x' data is ragged"):
        decode_input(_tensor("BYTES", [3], data))


def test_bytes_count_mismatch() -> None:
    with pytest.raises(InvalidInput, match="needs 3 values, but data has 2"):
        decode_input(_tensor("BYTES", [3], ["a", "b"]))


def test_binary_extension_is_refused() -> None:
    tensor = _tensor("FP32", [1], [], parameters={"binary_data_size": 4})
    with pytest.raises(InvalidInput, match="binary tensor extension, which is not supported"):
        decode_input(tensor)


def test_duplicate_input_names() -> None:
    request = InferenceRequest.model_validate(
        {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}] * 2}
    )
    with pytest.raises(InvalidInput, match="input 'x' is given more than once"):
        decode_request(request)


def test_decode_request_by_name() -> None:
    request = InferenceRequest.model_validate(
        {
            "inputs": [
                {"name": "a", "shape": [1, 2], "datatype": "INT32", "data": [[1, 2]]},
                {"name": "b", "shape": [2], "datatype": "BYTES", "data": ["x", "y"]},
            ]
        }
    )
    tensors = decode_request(request)
    assert list(tensors) == ["a", "b"]
    assert tensors["a"].dtype == np.int32


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": []},
        {"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT32", "data": [1]}]},
        {"inputs": [{"name": "x", "shape": [-1], "datatype": "FP32", "data": [1]}]},
        {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": 1}]},
        {"inputs": [{"name": "", "shape": [1], "datatype": "FP32", "data": [1]}]},
        {"inputs": [{"name": "x", "shape": [1] * 33, "datatype": "FP32", "data": [1]}]},
        {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1], "extra": 1}]},
        {
            "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],
            "parameters": {"p": [1.0, {"q": float("nan")}]},
        },
    ],
)
def test_request_schema_refuses(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        InferenceRequest.model_validate(body)


def test_encode_output() -> None:
    encoded = encode_output("probabilities", np.array([[0.25, 0.75]], np.float32))
    assert encoded == {
        "name": "probabilities",
        "datatype": "FP32",
        "shape": [1, 2],
        "data": [0.25, 0.75],
    }
    labels = encode_output("label", np.array([3, 7], np.int64))
    assert labels["datatype"] == "INT64"
    assert labels["data"] == [3, 7]
    assert all(type(item) is int for item in labels["data"])
    flags = encode_output("ok", np.array([True, False]))
    assert flags["datatype"] == "BOOL"
    assert flags["data"] == [True, False]


def test_encode_bytes() -> None:
    encoded = encode_output("text", np.array([b"caf\xc3\xa9", "plain", b"\xff"], dtype=object))
    assert encoded["datatype"] == "BYTES"
    assert encoded["data"] == ["café", "plain", "\ufffd"]
    json.dumps(encoded)


def test_encode_bytes_of_any_items() -> None:
    items = np.array([[b"caf\xc3\xa9", 3], [None, np.str_("s")]], dtype=object)
    assert encode_output("x", items)["data"] == ["café", "3", "None", "s"]
    assert encode_output("x", np.array([b"a", b"\xff"], dtype="S"))["data"] == ["a", "\ufffd"]
    assert encode_output("x", np.array([], dtype=object))["data"] == []


_NUMERIC = [name for name in NUMPY_DTYPES if name != "BYTES"]


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    datatype=st.sampled_from(_NUMERIC),
    shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=4),
    data=st.data(),
)
def test_encode_then_decode_round_trips(datatype: str, shape: tuple[int, ...], data: Any) -> None:
    dtype = NUMPY_DTYPES[datatype]
    elements = hnp.from_dtype(dtype, allow_nan=False, allow_infinity=False)
    array = data.draw(hnp.arrays(dtype, shape, elements=elements))

    wire = json.loads(json.dumps(encode_output("x", array), allow_nan=False))
    decoded = decode_input(RequestInput.model_validate(wire))

    assert decoded.dtype == dtype
    assert decoded.shape == array.shape
    np.testing.assert_array_equal(decoded, array)


@pytest.mark.parametrize("datatype", ["FP32", "BYTES"])
@pytest.mark.parametrize("shape", [[0, 2**40, 2**40], [2**64, 0]])
def test_zero_size_shape_too_large_for_numpy(datatype: str, shape: list[int]) -> None:
    # Found by the schemathesis fuzz: numpy refused the reshape and the app answered 500.
    with pytest.raises(InvalidInput, match="whose dimensions are too large"):
        decode_input(_tensor(datatype, shape, []))
