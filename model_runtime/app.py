"""The HTTP transport: a FastAPI app speaking Open Inference Protocol v2.

Its answers, and the one map from domain errors to statuses, are model_runtime.answers;
its middleware is model_runtime.middleware. Building the app (FastAPI's routing and
schemas) is the dearest part of a Lambda cold start, which is why neither of those
imports FastAPI: the Lambda entry builds the app on the first request that needs it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Body, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from model_runtime import __version__
from model_runtime.answers import (
    describe_errors,
    domain_error_response,
    error_response,
    http_error_response,
    json_response,
    timed_json_response,
    unexpected_error_response,
)
from model_runtime.dataplane import DataPlane
from model_runtime.engine import Engine
from model_runtime.errors import InferstackError, JobsNotEnabled
from model_runtime.middleware import DEFAULT_MAX_BODY_BYTES, Served, serve
from model_runtime.protocol import ErrorBody, InferenceRequest, InferenceResponse, ModelMetadata
from model_runtime.telemetry.record import Sink
from model_runtime.telemetry.stages import SCOPE_KEY, StageTimes

if TYPE_CHECKING:
    from model_runtime.events.jobs import Jobs

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 404, 413, 422)
}
_JOB_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 404, 409, 413, 422, 503)
}


def served(app: FastAPI) -> Served:
    """What an app made by create_app serves, and through which middleware."""
    found = app.state.served
    assert isinstance(found, Served), "not an app made by create_app"
    return found


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
    found = serve(
        plane,
        max_body_bytes=max_body_bytes,
        cors_allow_origin=cors_allow_origin,
        telemetry=telemetry,
    )
    return build_app(found, jobs)


def build_app(found: Served, jobs: Jobs | None = None) -> FastAPI:
    """The app over what `found` serves, through its middleware (create_app's, made apart
    for the Lambda entry, which builds its app only when a request needs it)."""
    plane = found.plane
    app = FastAPI(
        title="inferstack model server",
        version=__version__,
        description="Open Inference Protocol v2 (KServe / Triton REST) model server.",
        docs_url=None,
        redoc_url=None,
        # tritonclient posts its JSON without a Content-Type header, as Triton allows.
        strict_content_type=False,
        middleware=found.middleware,
    )
    app.state.dataplane = plane
    app.state.served = found
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
