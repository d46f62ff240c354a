"""The HTTP answers of the model server: domain errors become statuses here and nowhere
else, and every error body is `{"error": "<what was wrong>"}`.

Starlette's responses only, no FastAPI: the Lambda direct infer path answers with these
before (and often without) the FastAPI app being built.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from time import perf_counter
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import Response

from model_runtime.errors import (
    BatchTooLarge,
    InferenceError,
    InferstackError,
    InvalidInput,
    JobConflict,
    JobNotFound,
    JobsNotEnabled,
    ModelNotFound,
    ModelNotReady,
    ObjectWriteError,
    PayloadTooLarge,
    QueueError,
    ServerBusy,
    TransientReadError,
)
from model_runtime.telemetry.stages import StageTimes

logger = logging.getLogger("inferstack")

# Most specific first.
_STATUS_BY_ERROR: list[tuple[type[InferstackError], int]] = [
    (PayloadTooLarge, 413),
    (BatchTooLarge, 413),
    (InvalidInput, 400),
    (ModelNotFound, 404),
    (JobsNotEnabled, 404),
    (JobNotFound, 404),
    (JobConflict, 409),
    (ModelNotReady, 503),
    (ServerBusy, 503),
    # The data bucket or the queue failing is the service's trouble, for now.
    (ObjectWriteError, 503),
    (TransientReadError, 503),
    (QueueError, 503),
    (InferenceError, 500),
]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = json.dumps(body, separators=(",", ":"), allow_nan=False)
    return Response(content, status_code=status, media_type="application/json", headers=headers)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": message}, status, headers)


def describe_errors(errors: Sequence[Mapping[str, Any]]) -> str:
    """pydantic's validation errors as one line: where the first is, what it says."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"] if part != "body") or "body"
    more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def status_for(error: InferstackError) -> int:
    for error_type, status in _STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return 500


def domain_error_response(error: InferstackError) -> Response:
    """The answer to a domain error: its status, its message, logged when it is 5xx."""
    status = status_for(error)
    if isinstance(error, ServerBusy):  # backpressure, not a failure: no log line each
        return error_response(status, str(error), {"Retry-After": str(error.retry_after)})
    if status >= 500:
        logger.error("inference failed: %s", error, exc_info=error)
    return error_response(status, str(error))


def unexpected_error_response(error: Exception) -> Response:
    """The answer to an exception nobody raised on purpose: a 500 that keeps its detail
    in the log."""
    logger.error("unexpected error", exc_info=error)
    return error_response(500, "internal error; see the server log")


def timed_json_response(body: Any, times: StageTimes | None) -> Response:
    """`json_response`, its time added to the encode stage of `times`."""
    if times is None:
        return json_response(body)
    started = perf_counter()
    response = json_response(body)
    times.add_encode(started)
    return response


def http_error_response(method: str, path: str, error: HTTPException) -> Response:
    """The answer to an HTTP error of Starlette's (no route, wrong method, 413)."""
    if error.status_code == 404:
        message = f"no such route: {method} {path}"
    elif error.status_code == 405:
        message = f"method {method} is not allowed on {path}"
    else:
        message = str(error.detail)
    return error_response(error.status_code, message, dict(error.headers or {}))
