"""UpdateAlias with weighted routing, which LocalStack 2026.3.0 breaks, fixed.

LocalStack's ``LambdaProvider.update_alias`` (localstack/services/lambda_/provider.py,
line 2161 in 2026.3.0) builds the routing model with
``self._create_routing_config_model(routing_config_dict)``, leaving out the
``function_version`` that method requires (``create_alias`` passes it): every UpdateAlias
with ``RoutingConfig.AdditionalVersionWeights`` ends in ``InternalError`` (a TypeError).

The fix keeps LocalStack's own code and checks: while ``update_alias`` runs,
``_create_routing_config_model`` called without a version gets the one the alias will
point to (the call's ``FunctionVersion``, else the alias's current one). So the weights
are checked as CreateAlias checks them (one entry, 0 <= weight < 1, a version number, not
the alias's own version, a version that exists), at the same point of the call.

It patches the class before LocalStack creates its Lambda provider (an ``on_infra_start``
hook, see `plugin.py`): the service's dispatch table holds the bound ``update_alias``
from then on, so the executor's ``load``, which runs after, would be too late.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

LOG = logging.getLogger(__name__)

# The parameters of the two methods as in LocalStack 2026.3.0, which the fix was written for.
UPDATE_ALIAS = (
    "self",
    "context",
    "function_name",
    "name",
    "function_version",
    "description",
    "routing_config",
    "revision_id",
    "kwargs",
)
ROUTING_MODEL = ("self", "routing_config_dict", "function_version")

# (provider, the UpdateAlias call's arguments by parameter name) -> the FunctionVersion
# the alias will point to.
TargetVersion = Callable[[Any, dict[str, Any]], Any]

_FIXED = "__inferstack_fixed__"
# While an update_alias runs: how to get the version its alias will point to.
_target: ContextVar[Callable[[], Any] | None] = ContextVar("inferstack_alias_target", default=None)


def fix_update_alias(
    provider: type, localstack_version: str, target_version: TargetVersion
) -> bool:
    """Patch `provider` (LocalStack's ``LambdaProvider``) in place; True when it is fixed
    (now or by an earlier call). False, with an error logged, when its methods are not
    the ones the fix was written for: a LocalStack that may not have the bug, or have it
    elsewhere."""
    update_alias: Any = getattr(provider, "update_alias", None)
    build: Any = getattr(provider, "_create_routing_config_model", None)
    if getattr(update_alias, _FIXED, False):
        return True
    if _parameters(update_alias) != UPDATE_ALIAS or _parameters(build) != ROUTING_MODEL:
        LOG.error(
            "inferstack: UpdateAlias with RoutingConfig.AdditionalVersionWeights is NOT fixed on"
            " LocalStack %s: LambdaProvider.update_alias or _create_routing_config_model is not"
            " the one the fix was written for (LocalStack 2026.3.0); see"
            " plugins/localstack-executor/README.md",
            localstack_version,
        )
        return False
    signature = inspect.signature(update_alias)

    @functools.wraps(update_alias)
    def fixed_update_alias(*args: Any, **kwargs: Any) -> Any:
        call = signature.bind(*args, **kwargs).arguments
        token = _target.set(functools.partial(target_version, call["self"], call))
        try:
            return update_alias(*args, **kwargs)
        finally:
            _target.reset(token)

    @functools.wraps(build)
    def fixed_build(self: Any, routing_config_dict: Any, function_version: Any = None) -> Any:
        if function_version is None and (target := _target.get()) is not None:
            function_version = target()
        return build(self, routing_config_dict, function_version)

    setattr(fixed_update_alias, _FIXED, True)
    provider._create_routing_config_model = fixed_build  # type: ignore[attr-defined]
    provider.update_alias = fixed_update_alias  # type: ignore[attr-defined]
    LOG.info(
        "inferstack: fixed UpdateAlias with AdditionalVersionWeights (LocalStack %s)",
        localstack_version,
    )
    return True


def _parameters(method: Any) -> tuple[str, ...]:
    """The parameter names of `method`; none for a method that is not there."""
    return tuple(inspect.signature(method).parameters) if callable(method) else ()


def localstack_target(provider: Any, call: dict[str, Any]) -> Any:
    """The FunctionVersion an UpdateAlias call points its alias to, as LocalStack's
    ``create_alias`` looks it up (ResourceNotFoundException for a version that is not
    there). Called inside ``update_alias``, after it found the alias."""
    from localstack.services.lambda_ import api_utils
    from localstack.services.lambda_.provider_utils import get_function_version

    account_id, region = api_utils.get_account_and_region(call["function_name"], call["context"])
    function_name = api_utils.get_function_name(call["function_name"], call["context"])
    qualifier = call.get("function_version")
    if qualifier is None:
        function = provider._get_function(
            function_name=function_name, region=region, account_id=account_id
        )
        qualifier = function.aliases[call["name"]].function_version
    return get_function_version(
        function_name=function_name, qualifier=qualifier, region=region, account_id=account_id
    )
