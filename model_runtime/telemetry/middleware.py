"""The request middleware: times each inference request of a served model, counts its
body, notes its status, and hands a RequestRecord to the sink once it is answered."""

from __future__ import annotations

from collections.abc import Mapping
from time import perf_counter

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from model_runtime.telemetry.logs import request_context
from model_runtime.telemetry.record import RequestRecord, Sink
from model_runtime.telemetry.stages import SCOPE_KEY, StageTimes


def infer_route(path: str) -> tuple[str, str | None] | None:
    """(model, version or None) of an inference path, /v2/models/<m>/infer or
    /v2/models/<m>/versions/<v>/infer, the segments as they are (empty ones too, which
    no route matches); None for any other path."""
    parts = path.split("/")
    if parts[1:3] != ["v2", "models"] or parts[-1] != "infer":
        return None
    if len(parts) == 5:
        return parts[3], None
    if len(parts) == 7 and parts[4] == "versions":
        return parts[3], parts[5]
    return None


def model_of(path: str) -> str | None:
    """The model an inference path names."""
    route = infer_route(path)
    return route[0] if route is not None else None


class RequestTelemetry:
    """Only POSTs to a served model's infer route are recorded: a name the app does not
    serve would be a new metric dimension per typo."""

    def __init__(self, app: ASGIApp, versions: Mapping[str, str], sink: Sink) -> None:
        self.app = app
        self.versions = dict(versions)
        self.sink = sink

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        model = model_of(scope["path"]) if scope["type"] == "http" else None
        version = self.versions.get(model) if model is not None else None
        if model is None or version is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        times = StageTimes()
        scope[SCOPE_KEY] = times
        context = scope.get("aws.context")  # Mangum's: the Lambda invocation's context
        request_id = getattr(context, "aws_request_id", None)
        token = request_context.set((request_id, model, version))
        received = 0
        status = 500  # what the server answers when the app raises

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            return message

        async def status_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, counting_receive, status_send)
        finally:
            latency_ms = (perf_counter() - started) * 1000
            request_context.reset(token)
            self.sink(
                RequestRecord(model, version, status, latency_ms, received, times, request_id)
            )
