"""Choice options: typer passes the value on as given (the option is annotated with its
Literal), and a bad value is one line, `error: --delivery has value 'ftp'; allowed:
layer, s3`, rather than typer's usage panel."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from cli.errors import UserError


def one_of(option: str, choices: Iterable[str]) -> Callable[[str], str]:
    """A typer `parser` for `option` that accepts only `choices`."""
    allowed = tuple(choices)

    def parse(value: str) -> str:
        if value not in allowed:
            raise UserError(f"{option} has value {value!r}; allowed: {', '.join(allowed)}")
        return value

    return parse
