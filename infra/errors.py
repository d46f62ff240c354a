"""Errors the Pulumi program raises before it declares anything; each message says what to fix."""


class InfraError(Exception):
    """Base class: a stack that cannot be deployed as declared."""


class StackConfigError(InfraError):
    """A stack is unknown, or its config does not validate."""


class ArtifactMissingError(InfraError):
    """A model artifact or a built layer the stack needs is not on disk."""


class PackageBudgetError(InfraError):
    """A function's code and layers do not fit Lambda's limits; the message is the size table."""


class PulumiUnavailableError(InfraError):
    """The Automation API path was asked for, but no Pulumi CLI is installed."""


class StateBackendError(InfraError):
    """An AWS stack's Pulumi state backend or secrets provider is unset or not usable."""
