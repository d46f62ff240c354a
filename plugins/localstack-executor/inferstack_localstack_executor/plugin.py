"""The plux plugin LocalStack finds under ``localstack.lambda.runtime_executor``.

Selected with ``LAMBDA_RUNTIME_EXECUTOR=inferstack-process``. LocalStack falls back to
Docker with only a warning for an unknown name, so the manager checks the entry point
after installing.
"""

from __future__ import annotations

from typing import Any

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin

from inferstack_localstack_executor import EXECUTOR_NAME


class ProcessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    name = EXECUTOR_NAME

    def load(self, *args: Any, **kwargs: Any) -> Any:
        from inferstack_localstack_executor.executor import ProcessRuntimeExecutor

        return ProcessRuntimeExecutor
