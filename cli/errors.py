"""The CLI's own errors, the table of errors a user can cause, and `fail()`, the one way
they are reported: `error: <message>` on stderr and exit status 1. Tracebacks are for
bugs only."""

from __future__ import annotations

import json
import sys
from typing import NoReturn

from rich.markup import escape

from cli.console import err_console


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


class PredictError(Exception):
    """The input file or the server's answer is not usable; printed as one line."""


def expected_errors() -> tuple[type[Exception], ...]:
    """What a user can cause (a bad argument, file, stack, artifact or environment), as
    opposed to a bug. A function, so pulumi (heavy) is imported only when something
    failed."""
    from pulumi.automation.errors import CommandError
    from pydantic import ValidationError

    from infra.errors import InfraError
    from layers.errors import PackagingError
    from localdev.errors import DeployError, LocalStackError
    from model_runtime.errors import InferstackError
    from pricing.errors import PricingError

    return (
        UserError,
        PredictError,
        InferstackError,
        InfraError,
        PackagingError,
        LocalStackError,
        DeployError,
        CommandError,
        PricingError,
        ValidationError,
        json.JSONDecodeError,
        OSError,
    )


def describe(exc: Exception) -> str:
    """The one-line message for an expected error."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return str(exc.errors()[0]["msg"])
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc}"
    return str(exc)


def fail(message: str) -> NoReturn:
    # escape: a message is text, never rich markup ("[...]" in a path stays as written).
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(1)
