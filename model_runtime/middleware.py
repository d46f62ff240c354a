"""The model server's middleware, outermost first: request telemetry, CORS, the body
limit. The FastAPI app is served through it, and so is the Lambda direct infer path,
which answers inference requests without the app (model_runtime.events.direct_infer).

Starlette only, no FastAPI (see model_runtime.answers).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from model_runtime.answers import error_response
from model_runtime.dataplane import DataPlane
from model_runtime.telemetry.middleware import RequestTelemetry
from model_runtime.telemetry.record import Sink

# Lambda's synchronous invocation payload limit.
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024
# How much of a refused body the server reads (and drops) so that its client gets the 413.
DRAIN_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Served:
    """What the server serves, and the middleware it serves it through, outermost first:
    the app (create_app) and the Lambda direct infer path both wrap themselves in this
    one list, so that the two answer a request alike."""

    plane: DataPlane
    middleware: list[Middleware]


def serve(
    plane: DataPlane,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    cors_allow_origin: str | None = None,
    telemetry: Sink | None = None,
) -> Served:
    """`plane` behind the body limit, CORS for `cors_allow_origin` when given and, with
    `telemetry`, a record of every inference request for that sink."""
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
    return Served(plane, middleware)


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
                    raise HTTPException(413, self._message())
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
