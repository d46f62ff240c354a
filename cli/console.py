"""The package's two consoles: results on stdout; notes, progress and errors on stderr.

Both look up sys.stdout / sys.stderr when they print (rich does), so typer's CliRunner
captures them like a terminal would show them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.status import Status

console = Console()
err_console = Console(stderr=True)


def echo(message: str) -> None:
    """A progress line on stderr."""
    err_console.print(message, highlight=False, soft_wrap=True)


def note(message: str) -> None:
    """A progress line on stderr, dimmed: what the deploy commands say along the way."""
    err_console.print(message, style="dim", highlight=False, soft_wrap=True)


@contextmanager
def spinner() -> Iterator[Callable[[str], None]]:
    """A spinner showing the current step: yields the callback that names the step. It
    appears with the first step (work that is up to date shows none) and is gone after."""
    status: Status | None = None

    def show(step: str) -> None:
        nonlocal status
        if status is None:
            status = console.status(step)
            status.start()
        else:
            status.update(step)

    try:
        yield show
    finally:
        if status is not None:
            status.stop()
