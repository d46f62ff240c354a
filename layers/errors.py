"""Errors of the packaging step."""

from __future__ import annotations


class PackagingError(Exception):
    """A layer or function zip cannot be built as asked."""


class BudgetError(PackagingError):
    """The function and its layers do not fit Lambda's limits; the message holds the table."""


class NotBuiltError(PackagingError):
    """A zip the caller only looks up (never builds) is not in the build cache."""
