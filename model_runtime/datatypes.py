"""Open Inference Protocol datatypes and their numpy / ONNX counterparts."""

from __future__ import annotations

from typing import Literal

import numpy as np

Datatype = Literal[
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]

NUMPY_DTYPES: dict[Datatype, np.dtype[np.generic]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}

# onnxruntime reports types as "tensor(float)" etc.
_ONNX_TYPES: dict[str, Datatype] = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


def from_onnx_type(onnx_type: str) -> Datatype:
    """Map an onnxruntime type string ("tensor(float)") to an OIP datatype ("FP32")."""
    try:
        return _ONNX_TYPES[onnx_type]
    except KeyError:
        raise ValueError(
            f"ONNX type {onnx_type!r} has no Open Inference Protocol datatype"
        ) from None


# Every response output's datatype is looked up here: one dict lookup, not a scan.
_BY_NUMPY: dict[np.dtype[np.generic], Datatype] = {
    dtype: name for name, dtype in NUMPY_DTYPES.items() if name != "BYTES"
}


def from_numpy(dtype: np.dtype[np.generic]) -> Datatype:
    """Map a numpy dtype to an OIP datatype."""
    if dtype.kind in "OUS":
        return "BYTES"
    try:
        return _BY_NUMPY[dtype]
    except KeyError:
        raise ValueError(f"numpy dtype {dtype} has no Open Inference Protocol datatype") from None


def to_numpy(datatype: Datatype) -> np.dtype[np.generic]:
    """Map an OIP datatype to a numpy dtype."""
    return NUMPY_DTYPES[datatype]
