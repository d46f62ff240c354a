"""One batch line -> an InferenceRequest: an Open Inference Protocol request, or
`{input name: data}` typed and shaped by the model's inputs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import ValidationError

from model_runtime.answers import describe_errors
from model_runtime.errors import InvalidInput
from model_runtime.manifest import TensorSpec
from model_runtime.protocol import InferenceRequest


def parse_line(line: bytes, inputs: Sequence[TensorSpec]) -> InferenceRequest:
    """Raises InvalidInput with the reason the line cannot be a request."""
    text = line.rstrip(b"\r")
    if not text.strip():
        raise InvalidInput("empty line")
    return parse_request(text, inputs)


def parse_request(raw: bytes, inputs: Sequence[TensorSpec]) -> InferenceRequest:
    """One JSON document, either form; raises InvalidInput naming what is wrong."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"malformed JSON: {exc}") from None
    except RecursionError:
        raise InvalidInput("malformed JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise InvalidInput(f"expected a JSON object, got {type(body).__name__}")
    if "inputs" in body:
        return validate_request(body)
    return request_from_arrays(body, inputs)


def validate_request(body: Any) -> InferenceRequest:
    """An OIP request; the error reads like the HTTP API's 422 message."""
    try:
        return InferenceRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidInput(f"invalid request: {describe_errors(exc.errors())}") from None


def request_from_arrays(body: dict[str, Any], inputs: Sequence[TensorSpec]) -> InferenceRequest:
    """`{input name: data}`: the datatype from the model; the shape from the data, with
    the batch dimension added when the data has one dimension fewer than the model."""
    by_name = {spec.name: spec for spec in inputs}
    unknown = [name for name in body if name not in by_name]
    if unknown or not body:
        expected = ", ".join(repr(name) for name in by_name)
        got = ", ".join(repr(name) for name in unknown) or "none"
        raise InvalidInput(f"unknown input(s) {got}; model inputs: {expected}")
    tensors = []
    for name, data in body.items():
        spec = by_name[name]
        values = data if isinstance(data, list) else [data]
        try:
            shape = list(np.shape(values))
        except ValueError:
            raise InvalidInput(
                f"input {name!r} data is ragged: nested lists must all have the same length"
            ) from None
        if len(shape) == len(spec.shape) - 1:
            shape = [1, *shape]
        tensors.append({"name": name, "shape": shape, "datatype": spec.datatype, "data": values})
    return validate_request({"inputs": tensors})
