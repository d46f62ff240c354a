"""Gateway responses' headers, which LocalStack 2026.3.0 leaves out, added.

On AWS a REST API's gateway response (what API Gateway answers for its own errors: no
route, missing key, throttled, an integration it cannot reach) sets headers from its
``responseParameters``: ``gatewayresponse.header.<Name>`` to a static value written in
single quotes (``'5'``) or to a request value. LocalStack's ``GatewayExceptionHandler``
(localstack/services/apigateway/next_gen/execute_api/handlers/gateway_exception.py)
applies the gateway response's status code only ("TODO apply responseParameters"), so a
503 the stack declares with ``Retry-After`` arrives without it.

The fix keeps LocalStack's response (status and body) and adds the static headers of the
gateway response LocalStack itself chose; a value taken from the request is not added
(logged once per name): inferstack declares none. The body template is still not applied
(LocalStack's ``{"message": ...}``). Patched at ``on_infra_start`` like alias_routing.py.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

LOG = logging.getLogger(__name__)

# The parameters of the method as in LocalStack 2026.3.0, which the fix was written for.
CREATE_EXCEPTION_RESPONSE = ("self", "exception", "context")
HEADER_PREFIX = "gatewayresponse.header."

# (the error's gateway response type, the API's gateway responses) -> the one that applies
# (LocalStack's own ``get_gateway_response_or_default``).
Lookup = Callable[[Any, Any], Mapping[str, Any]]

_FIXED = "__inferstack_fixed__"


def fix_gateway_headers(handler: type, localstack_version: str, lookup: Lookup) -> bool:
    """Patch `handler` (LocalStack's ``GatewayExceptionHandler``) in place; True when it is
    fixed (now or by an earlier call). False, with an error logged, when its method is not
    the one the fix was written for."""
    create: Any = getattr(handler, "create_exception_response", None)
    if getattr(create, _FIXED, False):
        return True
    if not callable(create) or tuple(inspect.signature(create).parameters) != (
        CREATE_EXCEPTION_RESPONSE
    ):
        LOG.error(
            "inferstack: gateway response headers (e.g. Retry-After) are NOT applied on"
            " LocalStack %s: GatewayExceptionHandler.create_exception_response is not the one"
            " the fix was written for (LocalStack 2026.3.0); see"
            " plugins/localstack-executor/README.md",
            localstack_version,
        )
        return False

    @functools.wraps(create)
    def create_with_headers(self: Any, exception: Any, context: Any) -> Any:
        response = create(self, exception, context)
        if response is not None:
            declared = lookup(exception.type, context.deployment.rest_api.gateway_responses)
            for name, value in static_headers(declared).items():
                response.headers[name] = value
        return response

    setattr(create_with_headers, _FIXED, True)
    handler.create_exception_response = create_with_headers  # type: ignore[attr-defined]
    LOG.info("inferstack: gateway responses get their headers (LocalStack %s)", localstack_version)
    return True


def static_headers(gateway_response: Mapping[str, Any]) -> dict[str, str]:
    """The headers a gateway response sets to static values (``'...'``), by name."""
    headers = {}
    for key, value in (gateway_response.get("responseParameters") or {}).items():
        if not key.startswith(HEADER_PREFIX):
            continue
        name = key.removeprefix(HEADER_PREFIX)
        text = str(value)
        if len(text) >= 2 and text[0] == text[-1] == "'":
            headers[name] = text[1:-1]
        else:
            LOG.warning("inferstack: gateway response header %s from %s is not applied", name, text)
    return headers
