"""Helpers for the LocalStack tests: boto3 clients, zips, invocations, /proc checks."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from localdev.localstack import manager

ENDPOINT = f"http://{manager.DEFAULT_HOST}:{manager.DEFAULT_PORT}"
REGION = "us-east-1"
ROLE = "arn:aws:iam::000000000000:role/lambda-test"

# create_function(files, *, handler=..., runtime=..., timeout=..., env=..., layers=...) -> name
CreateFunction = Callable[..., str]


def client(service: str, endpoint: str = ENDPOINT, **config: Any) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(**config) if config else None,
    )


def zip_bytes(files: Mapping[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def invoke(lambda_client: Any, name: str, event: Any = None, **kwargs: Any) -> dict[str, Any]:
    """Invoke and return the response with ``Payload`` read and parsed."""
    response = lambda_client.invoke(
        FunctionName=name, Payload=json.dumps(event if event is not None else {}), **kwargs
    )
    response["Payload"] = json.loads(response["Payload"].read() or b"null")
    return dict(response)


def environment_pids(localstack_pid: int) -> set[int]:
    """PIDs of the Lambda environment processes LocalStack started (our bootstrap)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if parent == localstack_pid and b"inferstack_localstack_executor/bootstrap.py" in cmdline:
            pids.add(int(entry.name))
    return pids


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"
