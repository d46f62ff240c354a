"""The plux plugins LocalStack finds: the runtime executor, under
``localstack.lambda.runtime_executor``, and, under ``localstack.hooks.on_infra_start``, the
fixes of UpdateAlias's weighted routing and of gateway responses' headers.

The executor is selected with ``LAMBDA_RUNTIME_EXECUTOR=inferstack-process``. LocalStack
falls back to Docker with only a warning for an unknown name, so the manager checks the
entry point after installing.
"""

from __future__ import annotations

from typing import Any

from localstack.runtime import hooks
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin

from inferstack_localstack_executor import EXECUTOR_NAME


class ProcessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = EXECUTOR_NAME

    def load(self, *args: Any, **kwargs: Any) -> Any:
        from inferstack_localstack_executor.executor import ProcessRuntimeExecutor

        return ProcessRuntimeExecutor


# Before any service starts: the fix patches the Lambda provider's class (see alias_routing.py).
@hooks.on_infra_start()  # type: ignore[untyped-decorator]  # plux's decorators are not annotated
def fix_alias_routing() -> None:
    from localstack.services.lambda_.provider import LambdaProvider
    from localstack.version import __version__

    from inferstack_localstack_executor.alias_routing import fix_update_alias, localstack_target

    fix_update_alias(LambdaProvider, __version__, localstack_target)


# Before API Gateway serves a request: gateway responses get their headers (gateway_headers.py).
@hooks.on_infra_start()  # type: ignore[untyped-decorator]  # plux's decorators are not annotated
def fix_gateway_headers() -> None:
    from localstack.services.apigateway.next_gen.execute_api.gateway_response import (
        get_gateway_response_or_default,
    )
    from localstack.services.apigateway.next_gen.execute_api.handlers.gateway_exception import (
        GatewayExceptionHandler,
    )
    from localstack.version import __version__

    from inferstack_localstack_executor import gateway_headers

    gateway_headers.fix_gateway_headers(
        GatewayExceptionHandler, __version__, get_gateway_response_or_default
    )
