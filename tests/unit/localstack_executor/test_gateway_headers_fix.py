"""The executor plugin's fix that gives LocalStack's gateway responses their headers,
without LocalStack: on a stand-in handler with LocalStack 2026.3.0's method."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from tests.unit.localstack_executor.test_alias_routing_fix import _load

gateway_headers = _load("gateway_headers")

RETRY = {
    "statusCode": "503",
    "responseParameters": {
        "gatewayresponse.header.Retry-After": "'5'",
        "gatewayresponse.header.X-From-Request": "method.request.header.x",
    },
}


def _handler() -> type:
    class Handler:
        def create_exception_response(self, exception: Any, context: Any) -> Any:
            return SimpleNamespace(status_code=503, headers={"Content-Type": "application/json"})

    return Handler


def _lookup(response_type: str, responses: dict[str, Any]) -> dict[str, Any]:
    return dict(responses.get(response_type, {}))


def _context(responses: dict[str, Any]) -> Any:
    return SimpleNamespace(
        deployment=SimpleNamespace(rest_api=SimpleNamespace(gateway_responses=responses))
    )


def test_static_headers_of_the_chosen_gateway_response_are_added(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = _handler()
    assert gateway_headers.fix_gateway_headers(handler, "2026.3.0", _lookup)
    exception = SimpleNamespace(type="API_CONFIGURATION_ERROR")
    with caplog.at_level(logging.WARNING):
        response = handler().create_exception_response(
            exception, _context({"API_CONFIGURATION_ERROR": RETRY})
        )
    assert response.headers == {"Content-Type": "application/json", "Retry-After": "5"}
    assert "X-From-Request" in caplog.text  # not applied, and said so
    other = handler().create_exception_response(
        SimpleNamespace(type="THROTTLED"), _context({"API_CONFIGURATION_ERROR": RETRY})
    )
    assert other.headers == {"Content-Type": "application/json"}


def test_it_patches_once_and_refuses_another_signature(caplog: pytest.LogCaptureFixture) -> None:
    handler = _handler()
    assert gateway_headers.fix_gateway_headers(handler, "2026.3.0", _lookup)
    patched = handler.create_exception_response
    assert gateway_headers.fix_gateway_headers(handler, "2026.3.0", _lookup)
    assert handler.create_exception_response is patched

    class Other:
        def create_exception_response(self, exception: Any) -> Any:
            return None

    with caplog.at_level(logging.ERROR):
        assert not gateway_headers.fix_gateway_headers(Other, "2027.1.0", _lookup)
    assert "NOT applied on LocalStack 2027.1.0" in caplog.text
