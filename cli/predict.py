"""`inferstack predict`: one request from a file, to a server or a local artifact."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cli.errors import PredictError
from model_runtime.datatypes import to_numpy


def predict_remote(url: str, model: str, input_file: Path) -> dict[str, Any]:
    """Send the request in `input_file` to `url`."""
    return infer_remote(url, model, remote_request(url, model, input_file))


def remote_request(
    url: str, model: str, input_file: Path, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The request in `input_file`, fetching the model's metadata from `url` first when
    the file holds bare arrays."""
    inputs_meta = None
    if input_file.suffix != ".json" or "inputs" not in _read_json(input_file):
        inputs_meta = call_api(url, "GET", f"/v2/models/{model}", headers=headers)["inputs"]
    return load_request(input_file, inputs_meta)


def infer_remote(url: str, model: str, request: dict[str, Any]) -> dict[str, Any]:
    return call_api(url, "POST", f"/v2/models/{model}/infer", request)


def call_api(
    url: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One JSON call to the API at `url`; an unreachable server or a 4xx/5xx answer is a
    PredictError naming the call and the answer's error."""
    import httpx

    base = url.rstrip("/")
    try:
        # Lambda cold starts behind API Gateway can take seconds.
        response = httpx.request(method, f"{base}{path}", json=body, headers=headers, timeout=60.0)
    except httpx.HTTPError as exc:
        raise PredictError(f"cannot reach {base}: {exc}") from exc
    return _json_or_raise(response)


def predict_local(model_dir: Path, input_file: Path) -> dict[str, Any]:
    from model_runtime.dataplane import DataPlane
    from model_runtime.engine import Engine
    from model_runtime.protocol import InferenceRequest

    engine = Engine.load(model_dir)
    inputs_meta = [spec.model_dump() for spec in engine.manifest.inputs]
    request = InferenceRequest.model_validate(load_request(input_file, inputs_meta))
    return asyncio.run(DataPlane([engine]).infer(engine.name, request))


def load_request(path: Path, inputs_meta: list[dict[str, Any]] | None) -> dict[str, Any]:
    """An OIP request from a .json (a full request, or {input name: array}) or a .npy file
    (the model's only input). `inputs_meta` supplies names and datatypes when needed."""
    if path.suffix == ".npy":
        if not inputs_meta or len(inputs_meta) != 1:
            raise PredictError(f"{path}: a .npy input needs a model with exactly one input")
        return {"inputs": [_tensor(inputs_meta[0], np.load(path, allow_pickle=False))]}
    if path.suffix != ".json":
        raise PredictError(f"{path}: unsupported input file type; allowed: .json, .npy")
    body = _read_json(path)
    if "inputs" in body:
        return body
    by_name = {meta["name"]: meta for meta in inputs_meta or []}
    unknown = [name for name in body if name not in by_name]
    if unknown:
        raise PredictError(f"{path}: unknown input(s) {unknown}; model inputs: {list(by_name)}")
    return {"inputs": [_tensor(by_name[name], np.asarray(value)) for name, value in body.items()]}


def _tensor(meta: dict[str, Any], array: np.ndarray[Any, Any]) -> dict[str, Any]:
    datatype = meta["datatype"]
    if datatype != "BYTES":
        array = array.astype(to_numpy(datatype))
    return {
        "name": meta["name"],
        "shape": list(array.shape),
        "datatype": datatype,
        "data": array.ravel().tolist(),
    }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PredictError(f"{path}: invalid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise PredictError(f"{path}: expected a JSON object")
    return body


def _json_or_raise(response: Any) -> dict[str, Any]:
    body: dict[str, Any]
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:200]}
    if response.status_code >= 400:
        raise PredictError(
            f"{response.request.method} {response.request.url} answered"
            f" {response.status_code}: {body.get('error', body)}"
        )
    return body
