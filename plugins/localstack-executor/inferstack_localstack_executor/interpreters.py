"""The interpreter for a Lambda runtime name such as ``python3.12``.

This package runs inside LocalStack's virtualenv and cannot import the project, whose
interpreter finder (``layers/interpreters.py``) resolves them: ``inferstack localstack
start`` puts the path of each one it finds in LocalStack's environment, as
``INFERSTACK_PYTHON3_12`` and so on. Here we only read that variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

_RUNTIME = re.compile(r"python(3\.\d+)")


class InterpreterNotFound(Exception):
    """No usable interpreter for a function's declared runtime."""


def interpreter_variable(runtime: str) -> str:
    """``python3.12`` -> ``INFERSTACK_PYTHON3_12``."""
    return "INFERSTACK_" + runtime.upper().replace(".", "_")


def find_python(runtime: str, environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    match = _RUNTIME.fullmatch(runtime)
    if match is None:
        raise InterpreterNotFound(
            f"runtime {runtime!r} is not supported by the inferstack-process executor "
            "(Python runtimes only, e.g. python3.12)"
        )
    version = match.group(1)
    variable = interpreter_variable(runtime)
    value = env.get(variable)
    if not value:
        raise InterpreterNotFound(
            f"no {runtime} interpreter found for runtime {runtime}: {variable} is not set. "
            f"`inferstack localstack start` sets it when it finds Python {version} (pyenv's "
            f"versions, then PATH): install it (e.g. `pyenv install {version}`) and restart "
            "LocalStack through `inferstack localstack start`"
        )
    path = Path(value)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise InterpreterNotFound(f"{variable}={value} is not an executable file")
    return path
