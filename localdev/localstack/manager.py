"""LocalStack community in host mode (no Docker): install, start, stop and status, by PID.

LocalStack runs as a plain process of its own Python 3.13 virtualenv (``.localstack-venv/``)
with its data under ``build/localstack/``, and Lambda functions run as local processes
through our runtime-executor plugin (``plugins/localstack-executor``), installed into that
virtualenv. The work is split by job: ``install`` (the virtualenv, cached), ``process``
(start, stop and status by PID), ``health`` (the HTTP checks), ``environment`` (what the
process runs with); this module is the API the CLI, the tests and the benchmarks use.
"""

from localdev.errors import LocalStackError
from localdev.localstack.install import (
    EXECUTOR_NAME,
    EXECUTOR_SOURCE,
    InstallResult,
    install,
)
from localdev.localstack.paths import Paths
from localdev.localstack.process import DEFAULT_HOST, DEFAULT_PORT, Status, start, status, stop

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "EXECUTOR_NAME",
    "EXECUTOR_SOURCE",
    "InstallResult",
    "LocalStackError",
    "Paths",
    "Status",
    "install",
    "start",
    "status",
    "stop",
]
