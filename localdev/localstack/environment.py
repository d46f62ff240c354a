"""The environment LocalStack runs with: host mode settings, data under build/localstack,
our executor, and the interpreter of every Python runtime found on this machine.

The executor plugin runs inside LocalStack's virtualenv and cannot import this project, so
the interpreters are resolved here (layers.interpreters) and handed to it as
``INFERSTACK_PYTHON3_12=/path/to/python3.12`` and so on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from layers.errors import InterpreterNotFoundError
from layers.interpreters import find_python, override_variable
from localdev.localstack.install import EXECUTOR_NAME
from localdev.localstack.paths import Paths

# The Python runtimes AWS Lambda offers; a function of one not found here goes to state
# Failed, with a reason naming its variable.
LAMBDA_PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")


def lambda_interpreters(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{"INFERSTACK_PYTHON3_12": "/…/python3.12", ...}`` for each runtime found."""
    found = {}
    for version in LAMBDA_PYTHONS:
        try:
            found[override_variable(version)] = str(find_python(version, environ))
        except InterpreterNotFoundError:
            continue
    return found


def localstack_env(
    host: str,
    port: int,
    paths: Paths,
    extra_env: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    # tempfile prefers TMPDIR/TEMP over TMP; LocalStack warns that TMPDIR is deprecated.
    for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "TMPDIR", "TEMP"):
        env.pop(key, None)
    env.setdefault("LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT", "60")  # model loading on 2 cores
    # Lambda's SQS pollers long-poll and pick a message up as it arrives; LocalStack's
    # back off up to 10 s after an empty poll, which would delay every job by as much.
    env.setdefault("LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC", "1")
    env.update(lambda_interpreters(env))
    env.update(
        {
            "GATEWAY_LISTEN": f"{host}:{port}",
            "LOCALSTACK_VOLUME_DIR": str(paths.data / "volume"),
            "FILESYSTEM_ROOT": str(paths.data / "filesystem"),
            "TMP": str(paths.data / "tmp"),
            "XDG_CACHE_HOME": str(paths.data / "cache"),
            "DNS_ADDRESS": "0",
            "DISABLE_EVENTS": "1",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "LAMBDA_RUNTIME_EXECUTOR": EXECUTOR_NAME,
            "INFERSTACK_EXECUTOR_DIR": str(paths.executor_dir),
        }
    )
    env.update(extra_env or {})
    return env
