"""Errors of the packaging step."""

from __future__ import annotations


class PackagingError(Exception):
    """A layer or function zip cannot be built as asked."""


class BudgetError(PackagingError):
    """The function and its layers do not fit Lambda's limits; the message holds the table."""


class NotBuiltError(PackagingError):
    """A zip the caller only looks up (never builds) is not in the build cache."""


class InterpreterNotFoundError(PackagingError):
    """No usable interpreter of a Python version: `where` says where it looked (or which
    override variable is wrong), for callers that word their own message."""

    def __init__(self, version: str, where: str, variable: str) -> None:
        super().__init__(
            f"no python{version} interpreter found ({where}); install it (e.g. `pyenv install "
            f"{version}`) or set {variable} to its path"
        )
        self.version = version
        self.where = where
