"""The Lambda hot path: an API Gateway POST to an infer route answered past Mangum's HTTP
cycle and FastAPI's routing, dependency solving and body validation, which together cost
several times what a small model's run does.

The request still goes through the app's own middleware (the body limit, CORS, the
request telemetry: the same classes with the same options, one `Served` for both), and
its answer comes from the same functions as the app's: Mangum reads the event and writes
the proxy response, InferenceRequest validates, the data plane runs, the app's error
functions answer. Left to the app (None): other methods and paths, a query string, a
body FastAPI would not read as JSON, and a body that does not parse or validate, whose
answers (FastAPI's 400s and 422s) are the app's alone.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from mangum import Mangum
from mangum.handlers import APIGateway, HTTPGateway
from mangum.types import Response as ProxyResponse
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from model_runtime.answers import (
    domain_error_response,
    http_error_response,
    timed_json_response,
    unexpected_error_response,
)
from model_runtime.dataplane import DataPlane
from model_runtime.errors import InferstackError
from model_runtime.middleware import Served
from model_runtime.protocol import InferenceRequest
from model_runtime.telemetry.middleware import infer_route
from model_runtime.telemetry.stages import SCOPE_KEY

logger = logging.getLogger("inferstack")
T = TypeVar("T")

_JSON = b"application/json"
# The scope key under which the endpoint finds the request it answers.
_REQUEST_KEY = "inferstack.direct_request"


@dataclass(frozen=True)
class _Request:
    model: str
    version: str | None
    request: InferenceRequest


class DirectInfer:
    """`direct(event, context)`: the proxy response, or None when the app should answer."""

    def __init__(self, found: Served, http: Mangum) -> None:
        self._http = http
        self._app = _wrap(_Endpoint(found.plane), found.middleware)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any] | None:
        try:
            gateway = self._http.infer(event, context)
        except RuntimeError:  # Mangum has no handler for this event
            return None
        if not isinstance(gateway, APIGateway | HTTPGateway):
            return None
        scope = gateway.scope
        route = infer_route(scope["path"])
        if route is None or scope["method"] != "POST" or scope["query_string"]:
            return None  # a query string could set the unversioned route's model_version
        model, version = route
        if not model or version == "":  # what no route matches
            return None
        content_type = dict(scope["headers"]).get(b"content-type")
        # FastAPI reads a body without Content-Type as JSON (strict_content_type=False).
        if content_type and content_type.split(b";", 1)[0].strip().lower() != _JSON:
            return None
        body = gateway.body
        try:
            # pydantic's JSON parser reads a subset of what json.loads (FastAPI's) reads,
            # to the same values, in a fraction of the time; what it refuses goes to the
            # app, whose answer to a malformed or invalid body is the reference.
            request = InferenceRequest.model_validate_json(body)
        except ValueError:  # pydantic's ValidationError is one
            return None
        scope[_REQUEST_KEY] = _Request(model, version, request)
        response = _run_inline(_exchange(self._app, scope, body))
        answer: dict[str, Any] = gateway(response)
        return answer


class _Endpoint:
    """The infer route's endpoint, for a request already parsed and validated."""

    def __init__(self, plane: DataPlane) -> None:
        self._plane = plane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found: _Request = scope[_REQUEST_KEY]
        times = scope.get(SCOPE_KEY)
        try:
            await receive()  # through the middleware: the body limit, the byte count
            outputs = self._plane.infer_inline(found.model, found.request, found.version, times)
            response = timed_json_response(outputs, times)
        except InferstackError as exc:
            response = domain_error_response(exc)
        except HTTPException as exc:  # the body limit's 413
            response = http_error_response(scope["method"], scope["path"], exc)
        await response(scope, receive, send)


def _run_inline(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to its end now. The middleware and the endpoint await only each
    other and the in-memory receive and send, never anything that waits, so the request
    needs no turn of the event loop (which costs about a tenth of this whole path)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coroutine.close()
    raise RuntimeError("the direct infer path awaited something that waits; run it on a loop")


def _wrap(app: ASGIApp, middleware: list[Middleware]) -> ASGIApp:
    """`app` in `middleware` (outermost first), as Starlette builds its stack."""
    for cls, args, kwargs in reversed(middleware):
        app = cls(app, *args, **kwargs)
    return app


async def _exchange(app: ASGIApp, scope: Scope, body: bytes) -> ProxyResponse:
    """`app`'s answer to one request whose body is `body`, as Mangum's HTTP cycle hands it
    over: the body in one message, then a disconnect. An exception before the answer is
    answered as the app's outermost middleware answers it; one after it (a telemetry
    sink failing) is logged, as Mangum does, and the answer stands."""
    messages: list[Message] = [{"type": "http.disconnect"}, {"type": "http.request", "body": body}]
    start: Message | None = None
    chunks: list[bytes] = []

    async def receive() -> Message:
        return messages.pop() if len(messages) > 1 else messages[0]

    async def send(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
        else:
            chunks.append(message.get("body", b""))

    try:
        await app(scope, receive, send)
    except Exception as exc:
        if start is None:
            await unexpected_error_response(exc)(scope, receive, send)
        else:
            logger.error("error after the answer was sent", exc_info=exc)
    assert start is not None
    return {
        "status": start["status"],
        "headers": start.get("headers", []),
        "body": b"".join(chunks),
    }
