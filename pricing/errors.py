"""The pricing package's one error."""


class PricingError(Exception):
    """A price file or a benchmark file cannot be used; the message names the file and field."""
