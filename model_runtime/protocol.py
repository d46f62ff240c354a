"""Open Inference Protocol v2 (KServe / Triton REST): wire models, tensor decode/encode.

Nothing here knows about HTTP. See
https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/
"""

from __future__ import annotations

import math
from itertools import repeat
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, field_validator

from model_runtime.datatypes import Datatype, from_numpy, to_numpy
from model_runtime.errors import InvalidInput

# The numpy kinds that JSON data may arrive as for each family of datatypes.
_INTEGER_KINDS = "iu"
_FLOAT_KINDS = "iuf"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestInput(_Wire):
    name: str = Field(min_length=1)
    shape: list[NonNegativeInt] = Field(max_length=32)
    datatype: Datatype
    parameters: dict[str, Any] | None = None
    # Row-major flat, or nested to match `shape`.
    data: list[Any]


class RequestOutput(_Wire):
    name: str = Field(min_length=1)
    parameters: dict[str, Any] | None = None


class InferenceRequest(_Wire):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None

    @field_validator("parameters")
    @classmethod
    def _json_safe(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # Python's json module reads NaN and Infinity, but the response echoes the
        # parameters and strict JSON cannot carry them.
        if value is not None and not _all_finite(value):
            raise ValueError("NaN and Infinity are not valid JSON numbers")
        return value


def _all_finite(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


class ResponseOutput(_Wire):
    name: str
    shape: list[int]
    datatype: Datatype
    parameters: dict[str, Any] | None = None
    data: list[Any]


class InferenceResponse(_Wire):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[ResponseOutput]


class TensorMetadata(_Wire):
    name: str
    datatype: Datatype
    shape: list[int]


class ModelMetadata(_Wire):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ErrorBody(_Wire):
    error: str


def decode_input(tensor: RequestInput) -> np.ndarray[Any, Any]:
    """Turn one request input into a numpy array of its declared datatype and shape."""
    name = tensor.name
    if tensor.parameters and "binary_data_size" in tensor.parameters:
        raise InvalidInput(
            f"input {name!r} uses the binary tensor extension, which is not supported;"
            " send the data as JSON"
        )
    expected = math.prod(tensor.shape)
    if tensor.datatype == "BYTES":
        return _decode_bytes(tensor, expected)
    try:
        raw = np.asarray(tensor.data)
    except (ValueError, TypeError):
        raise InvalidInput(
            f"input {name!r} data is ragged: nested lists must all have the same length"
        ) from None
    if raw.size != expected:
        raise InvalidInput(
            f"input {name!r} has shape {tensor.shape}, which needs {expected} values,"
            f" but data has {raw.size}"
        )
    target = to_numpy(tensor.datatype)
    exact_integers = False
    if raw.size and target.kind in _INTEGER_KINDS and raw.dtype.kind in "fO":
        # numpy reads [0, 2**63] as float64 and [-1, 2**64] as object: no numpy integer
        # type holds both. Keep such integers exact, as Python ints, for the range check.
        exact = np.asarray(tensor.data, dtype=object)
        if _types(exact) == {int}:
            raw, exact_integers = exact, True
    allowed = {"BOOL": "b", "FP16": _FLOAT_KINDS, "FP32": _FLOAT_KINDS, "FP64": _FLOAT_KINDS}
    kinds = allowed.get(tensor.datatype, _INTEGER_KINDS)
    if raw.size and raw.dtype.kind not in kinds and not exact_integers:
        raise InvalidInput(
            f"input {name!r} is {tensor.datatype} but its data holds {_describe_kind(raw)}"
        )
    if raw.size and target.kind in _INTEGER_KINDS:
        info = np.iinfo(target)  # type: ignore[type-var]
        if raw.min() < info.min or raw.max() > info.max:
            raise InvalidInput(
                f"input {name!r} has values outside the {tensor.datatype} range"
                f" [{info.min}, {info.max}]"
            )
    # Overflow to inf (1e300 as FP32) is caught by the Engine's finiteness check.
    with np.errstate(over="ignore", invalid="ignore"):
        return _reshape(raw.astype(target, copy=False), tensor)


def _decode_bytes(tensor: RequestInput, expected: int) -> np.ndarray[Any, Any]:
    # numpy takes strings as scalars: nested lists of them become an array of their
    # shape, ragged ones an array of lists.
    array = np.array(tensor.data, dtype=object)
    types = _types(array)
    if list in types:
        raise InvalidInput(
            f"input {tensor.name!r} data is ragged: nested lists must all have the same length"
        )
    if types - {str}:
        raise InvalidInput(
            f"input {tensor.name!r} is BYTES: data must be strings (flat or nested lists)"
        )
    if array.size != expected:
        raise InvalidInput(
            f"input {tensor.name!r} has shape {tensor.shape}, which needs {expected} values,"
            f" but data has {array.size}"
        )
    return _reshape(array, tensor)


def _types(array: np.ndarray[Any, Any]) -> set[type]:
    """The Python types of an object array's items (map and set run in C: no Python
    loop per item)."""
    return set(map(type, array.flat))


def _reshape(array: np.ndarray[Any, Any], tensor: RequestInput) -> np.ndarray[Any, Any]:
    try:
        return array.reshape(tensor.shape)
    except (ValueError, OverflowError):
        # A zero-size shape whose other dimensions overflow numpy's index type, e.g.
        # [0, 2**40, 2**40]: it holds no values, yet numpy cannot represent it.
        raise InvalidInput(
            f"input {tensor.name!r} has shape {tensor.shape}, whose dimensions are too large"
        ) from None


def _describe_kind(array: np.ndarray[Any, Any]) -> str:
    return {
        "b": "booleans",
        "f": "non-integer numbers",
        "U": "strings",
        "S": "strings",
        "O": "mixed or non-numeric values (or integers too large for any type)",
    }.get(array.dtype.kind, f"values of type {array.dtype}")


def decode_request(request: InferenceRequest) -> dict[str, np.ndarray[Any, Any]]:
    tensors: dict[str, np.ndarray[Any, Any]] = {}
    for tensor in request.inputs:
        if tensor.name in tensors:
            raise InvalidInput(f"input {tensor.name!r} is given more than once")
        tensors[tensor.name] = decode_input(tensor)
    return tensors


def encode_output(name: str, array: np.ndarray[Any, Any]) -> dict[str, Any]:
    """One response output as a plain dict (ready for json.dumps), data row-major flat."""
    datatype = from_numpy(array.dtype)
    data = _json_strings(array) if datatype == "BYTES" else array.ravel().tolist()
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": data}


def _json_strings(array: np.ndarray[Any, Any]) -> list[Any]:
    """BYTES items as JSON strings: bytes decoded as UTF-8 (what is not UTF-8 replaced),
    anything else as its str; mapped in C, without a Python loop per item."""
    flat = array.ravel().astype(object, copy=False)
    items: list[Any] = flat.tolist()
    if set(map(type, items)) <= {str}:  # what onnxruntime returns
        return items
    is_bytes = np.fromiter(map(isinstance, items, repeat(bytes)), bool, len(items))
    texts = np.empty(len(items), dtype=object)
    texts[is_bytes] = list(map(bytes.decode, flat[is_bytes], repeat("utf-8"), repeat("replace")))
    texts[~is_bytes] = list(map(str, flat[~is_bytes]))
    return list(texts.tolist())
