"""LocalStack's HTTP health endpoints, asked directly (never through a proxy)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def health(host: str, port: int) -> dict[str, Any] | None:
    """The body of ``/_localstack/health``, or None while nothing healthy answers."""
    body = _get_json(f"http://{host}:{port}/_localstack/health")
    return body if isinstance(body, dict) and "services" in body else None


def ready(host: str, port: int) -> bool:
    """Health answers before the runtime has finished starting; the init stages say when."""
    body = _get_json(f"http://{host}:{port}/_localstack/init")
    if not isinstance(body, dict):
        return False
    completed = body.get("completed")
    return isinstance(completed, dict) and bool(completed.get("READY"))


def _get_json(url: str, timeout_s: float = 2.0) -> Any:
    try:
        with _NO_PROXY.open(url, timeout=timeout_s) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None
