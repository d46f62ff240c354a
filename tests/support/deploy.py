"""Helpers for the deploy tests: staged project trees, boto3 clients, HTTP calls, what a
stack left behind in LocalStack."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import numpy as np
import onnx
from botocore.config import Config
from onnx import numpy_helper

from cli.prepare import build_packages
from layers.package import project_root
from model_runtime.manifest import MODEL_FILE, Manifest, hash_files
from stacks.schema import StackConfig

REPO = project_root()
REGION = "us-east-1"


def stage_root(
    root: Path,
    config: StackConfig,
    artifacts: Mapping[str, Path],
    *,
    handler: str | None = None,
) -> Path:
    """A project tree the Pulumi program reads, under `root`: the repository's code, these
    artifacts as build/models/<name>, optionally `handler` as functions/handler.py (the
    repository's handler is then functions/production.py), and the packages `inferstack
    up` builds before it deploys (in the repository's build/package cache, shared)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("model_runtime", "pyproject.toml"):
        (root / name).symlink_to(REPO / name)
    if handler is None:
        (root / "functions").symlink_to(REPO / "functions")
    else:
        shutil.copytree(REPO / "functions", root / "functions", ignore=_no_bytecode)
        shutil.copyfile(REPO / "functions" / "handler.py", root / "functions" / "production.py")
        (root / "functions" / "handler.py").write_text(handler, encoding="utf-8")
    (root / "build" / "models").mkdir(parents=True)
    (REPO / "build" / "package").mkdir(parents=True, exist_ok=True)
    (root / "build" / "package").symlink_to(REPO / "build" / "package")
    for name, directory in artifacts.items():
        (root / "build" / "models" / name).symlink_to(directory)
    package(config, root)
    return root


def package(config: StackConfig, root: Path) -> None:
    """What `inferstack up` does before it deploys: build the stack's packages (cached)."""
    build_packages(config, root, echo=lambda _message: None)


def _no_bytecode(_directory: str, names: list[str]) -> set[str]:
    return {name for name in names if name == "__pycache__"}


def aws(service: str, endpoint: str, config: Config | None = None) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=config,
    )


def infer_event(model: str, images: np.ndarray) -> dict[str, Any]:
    """The event API Gateway's proxy integration sends a function for an infer POST (for
    invoking a function version directly, without the API in front)."""
    resource = "/v2/models/{model}/infer"
    return {
        "resource": resource,
        "path": f"/v2/models/{model}/infer",
        "httpMethod": "POST",
        "headers": {"content-type": "application/json"},
        "multiValueHeaders": {"content-type": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"model": model},
        "requestContext": {"resourcePath": resource, "stage": "v1"},
        "body": json.dumps(infer_body(images)),
        "isBase64Encoded": False,
    }


def infer_body(images: np.ndarray) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": "image",
                "shape": list(images.shape),
                "datatype": "FP32",
                "data": images.ravel().tolist(),
            }
        ]
    }


def outputs_of(response: httpx.Response) -> dict[str, np.ndarray]:
    assert response.status_code == 200, response.text
    return {
        output["name"]: np.array(output["data"]).reshape(output["shape"])
        for output in response.json()["outputs"]
    }


def perturb_model(directory: Path) -> None:
    """A changed model: the last layer's bias moved (so predictions change), the manifest's
    hashes rewritten, as a retrained export would."""
    path = directory / MODEL_FILE
    model = onnx.load(path)
    bias = next(item for item in model.graph.initializer if item.name == "classifier.3.bias")
    values = numpy_helper.to_array(bias).copy()
    values[0] += 0.5
    bias.CopyFrom(numpy_helper.from_array(values, bias.name))
    onnx.save(model, path)
    manifest = Manifest.load(directory)
    manifest.model_copy(update={"files": hash_files(directory, sorted(manifest.files))}).write(
        directory
    )


@dataclass(frozen=True)
class Leftovers:
    buckets: list[str]
    functions: list[str]
    layer_versions: list[str]
    roles: list[str]
    apis: list[str]
    api_keys: list[str]

    @property
    def empty(self) -> bool:
        return not any(vars(self).values())


def leftovers(endpoint: str, stack: str, layer_names: Iterable[str]) -> Leftovers:
    """Everything in LocalStack whose name says it belongs to `stack`, and every version
    of the named layers. (Layers are asked for by name: LocalStack's ListLayers fails
    once a layer's last version is deleted.)"""
    prefix = f"inferstack-{stack}-"
    lam = aws("lambda", endpoint)
    layer_versions = [
        version["LayerVersionArn"]
        for name in layer_names
        for version in lam.list_layer_versions(LayerName=name)["LayerVersions"]
    ]
    gateway = aws("apigateway", endpoint)
    return Leftovers(
        buckets=[
            bucket["Name"]
            for bucket in aws("s3", endpoint).list_buckets()["Buckets"]
            if bucket["Name"].startswith(prefix)
        ],
        functions=[
            function["FunctionName"]
            for function in lam.list_functions()["Functions"]
            if function["FunctionName"].startswith(prefix)
        ],
        layer_versions=layer_versions,
        roles=[
            role["RoleName"]
            for role in aws("iam", endpoint).list_roles()["Roles"]
            if role["RoleName"].startswith(prefix)
        ],
        apis=[
            api["id"] for api in gateway.get_rest_apis()["items"] if api["name"].startswith(prefix)
        ],
        api_keys=[
            key["id"] for key in gateway.get_api_keys()["items"] if key["name"].startswith(prefix)
        ],
    )


def log_messages(endpoint: str, group: str, needle: str, timeout_s: float = 15.0) -> list[str]:
    """Messages in CloudWatch log group `group` containing `needle` (waiting for them: the
    runtime ships logs after the invocation returns)."""
    logs = aws("logs", endpoint)
    deadline = time.monotonic() + timeout_s
    while True:
        events = logs.filter_log_events(logGroupName=group)["events"]
        found = [event["message"] for event in events if needle in event["message"]]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def json_error(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = json.loads(response.text)
    assert isinstance(body, dict)
    return body
