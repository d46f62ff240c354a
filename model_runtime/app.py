"""The HTTP transport: a FastAPI app speaking Open Inference Protocol v2.

Domain errors become HTTP statuses here and nowhere else; every error body is
`{"error": "<what was wrong>"}`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Body, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from model_runtime import __version__
from model_runtime.dataplane import DataPlane
from model_runtime.engine import Engine
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
from model_runtime.protocol import ErrorBody, InferenceRequest, InferenceResponse, ModelMetadata
from model_runtime.telemetry.middleware import RequestTelemetry
from model_runtime.telemetry.record import Sink
from model_runtime.telemetry.stages import SCOPE_KEY, StageTimes

if TYPE_CHECKING:
    from model_runtime.events.jobs import Jobs

logger = logging.getLogger("inferstack")

# Lambda's synchronous invocation payload limit.
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024
# How much of a refused body the server reads (and drops) so that its client gets the 413.
DRAIN_BYTES = 64 * 1024 * 1024

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

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 404, 413, 422)
}
_JOB_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 404, 409, 413, 422, 503)
}


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


def http_error_response(method: str, path: str, error: StarletteHTTPException) -> Response:
    """The answer to an HTTP error of Starlette's (no route, wrong method, 413)."""
    if error.status_code == 404:
        message = f"no such route: {method} {path}"
    elif error.status_code == 405:
        message = f"method {method} is not allowed on {path}"
    else:
        message = str(error.detail)
    return error_response(error.status_code, message, dict(error.headers or {}))


@dataclass(frozen=True)
class Served:
    """What an app made by create_app serves, and the middleware it serves it through,
    outermost first: what answers its requests outside its ASGI app (the Lambda direct
    infer path) wraps itself in, so that they are answered as the app answers them."""

    plane: DataPlane
    middleware: list[Middleware]


def served(app: FastAPI) -> Served:
    found = app.state.served
    assert isinstance(found, Served), "not an app made by create_app"
    return found


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` (by Content-Length, or while streaming).

    The rest of a refused body is read and dropped before the 413 goes out (up to
    DRAIN_BYTES): a client that sends its whole body before it reads the answer, as
    Python's urllib does, would otherwise see the server close the connection under it
    (a reset, not the 413). The server cannot read on once its answer is complete."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _drain(receive)
                await error_response(413, self._message())(scope, receive, send)
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if message.get("more_body", False):
                        await _drain(receive)
                    # FastAPI turns any other exception raised while it reads the body
                    # into a 400 "error parsing the body"; an HTTPException passes through.
                    raise StarletteHTTPException(413, self._message())
            return message

        await self.app(scope, limited_receive, send)

    def _message(self) -> str:
        return f"request body is over the limit of {self.max_bytes} bytes"


async def _drain(receive: Receive) -> None:
    """Read what is left of a request body, dropping it, DRAIN_BYTES at most (a client
    sending more gets the 413 with the connection closed after it)."""
    drained = 0
    while drained <= DRAIN_BYTES:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def create_app(
    engines: Iterable[Engine] | DataPlane,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    cors_allow_origin: str | None = None,
    jobs: Jobs | None = None,
    telemetry: Sink | None = None,
) -> FastAPI:
    """The Open Inference Protocol v2 app over the given engines; with `jobs`, queued
    jobs for that service's model too; with `telemetry`, a record of every inference
    request (stage timings, status, size) for it."""
    plane = engines if isinstance(engines, DataPlane) else DataPlane(engines)
    middleware = _middleware(plane, max_body_bytes, cors_allow_origin, telemetry)
    app = FastAPI(
        title="inferstack model server",
        version=__version__,
        description="Open Inference Protocol v2 (KServe / Triton REST) model server.",
        docs_url=None,
        redoc_url=None,
        # tritonclient posts its JSON without a Content-Type header, as Triton allows.
        strict_content_type=False,
        middleware=middleware,
    )
    app.state.dataplane = plane
    app.state.served = Served(plane, middleware)
    _add_error_handlers(app)

    @app.get("/v2", summary="Server metadata")
    async def server_metadata() -> dict[str, Any]:
        return {"name": "inferstack", "version": __version__, "extensions": []}

    @app.get("/v2/health/live", summary="Liveness")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready", summary="Readiness", responses={503: {"model": ErrorBody}})
    async def ready() -> Response:
        is_ready = plane.ready()
        return json_response({"ready": is_ready}, 200 if is_ready else 503)

    @app.get("/v2/models/{model_name}", response_model=ModelMetadata, responses=_ERROR_RESPONSES)
    @app.get(
        "/v2/models/{model_name}/versions/{model_version}",
        response_model=ModelMetadata,
        responses=_ERROR_RESPONSES,
    )
    async def model_metadata(model_name: str, model_version: str | None = None) -> Response:
        return json_response(plane.model_metadata(model_name, model_version))

    @app.get("/v2/models/{model_name}/ready", responses=_ERROR_RESPONSES)
    @app.get("/v2/models/{model_name}/versions/{model_version}/ready", responses=_ERROR_RESPONSES)
    async def model_ready(model_name: str, model_version: str | None = None) -> Response:
        engine = plane.engine(model_name, model_version)
        return json_response({"name": engine.name, "ready": True})

    @app.post(
        "/v2/models/{model_name}/infer",
        response_model=InferenceResponse,
        responses=_ERROR_RESPONSES,
    )
    @app.post(
        "/v2/models/{model_name}/versions/{model_version}/infer",
        response_model=InferenceResponse,
        responses=_ERROR_RESPONSES,
    )
    async def infer(
        model_name: str, request: InferenceRequest, http: Request, model_version: str | None = None
    ) -> Response:
        times: StageTimes | None = http.scope.get(SCOPE_KEY)
        body = await plane.infer(model_name, request, model_version, times)
        return timed_json_response(body, times)

    def enabled_jobs(model_name: str) -> Jobs:
        plane.engine(model_name)  # an unknown model is a 404 of its own
        if jobs is None:
            raise JobsNotEnabled(f"jobs are not enabled for model {model_name!r}")
        return jobs

    @app.post("/v2/models/{model_name}/jobs", status_code=202, responses=_JOB_RESPONSES)
    async def submit_job(
        model_name: str,
        body: Annotated[Any, Body()] = None,
        idempotency_key: Annotated[str | None, Header()] = None,
    ) -> Response:
        """An OIP request, or `{"input_uri": "s3://..."}`, validated like /infer and
        queued: 202 with the job's status URL."""
        service = enabled_jobs(model_name)
        if body is None:
            raise RequestValidationError(
                [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
            )
        try:
            submission = service.parse(body)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
        record = service.submit(model_name, submission, idempotency_key)
        url = service.status_url(record.id)
        return json_response(
            {"id": record.id, "status": record.status, "status_url": url}, 202, {"Location": url}
        )

    @app.get("/v2/models/{model_name}/jobs/{job_id}", responses=_JOB_RESPONSES)
    async def job_status(model_name: str, job_id: str) -> Response:
        return json_response(enabled_jobs(model_name).get(model_name, job_id).to_body())

    return app


def _middleware(
    plane: DataPlane, max_body_bytes: int, cors_allow_origin: str | None, telemetry: Sink | None
) -> list[Middleware]:
    """The app's middleware, outermost first."""
    middleware = []
    if telemetry is not None:
        # Outermost, so that the answers of the middlewares below (413s) are counted too.
        versions = {name: engine.version for name, engine in plane.engines.items()}
        middleware.append(Middleware(RequestTelemetry, versions=versions, sink=telemetry))
    if cors_allow_origin:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=[cors_allow_origin],
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["content-type", "x-api-key", "authorization", "idempotency-key"],
            )
        )
    middleware.append(Middleware(BodyLimitMiddleware, max_bytes=max_body_bytes))
    return middleware


def _add_error_handlers(app: FastAPI) -> None:
    async def domain_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, InferstackError)
        return domain_error_response(exc)

    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        first: dict[str, Any] = (
            errors[0] if errors else {"type": "", "loc": (), "msg": "invalid request"}
        )
        if first["type"] == "json_invalid":
            return error_response(400, f"malformed JSON: {first.get('ctx', {}).get('error', '')}")
        return error_response(422, f"invalid request: {describe_errors(errors)}")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return http_error_response(request.method, request.url.path, exc)

    async def unexpected_error(_: Request, exc: Exception) -> Response:
        return unexpected_error_response(exc)

    app.add_exception_handler(InferstackError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
