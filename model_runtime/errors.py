"""Domain errors of the model runtime.

They know nothing of HTTP: `model_runtime.app` maps them to statuses in one place.
"""

from __future__ import annotations


class InferstackError(Exception):
    """Base class for every error the runtime raises on purpose."""


class InvalidInput(InferstackError):
    """The request does not fit the model: names, datatype, shape, values."""


class MalformedRequest(InvalidInput):
    """The request body is not a valid Open Inference Protocol request at all."""


class BatchTooLarge(InvalidInput):
    """The request's batch is over the model's `max_batch_size`."""


class PayloadTooLarge(InvalidInput):
    """The request body is over the size limit."""


class ModelNotFound(InferstackError):
    """No model of that name (or version) is served here."""


class ModelNotReady(InferstackError):
    """The model exists but cannot take requests yet (or any more)."""


class ServerBusy(InferstackError):
    """The model's queue is full; the client should retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InferenceError(InferstackError):
    """The backend failed on a valid request: always a bug or a broken model."""


class BackendUnavailable(InferstackError):
    """The chosen backend, device or precision cannot run on this host."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        # "backend", "device" or "dtype": lets the server name the setting to change.
        self.option = option


class ArtifactError(InferstackError):
    """A model artifact directory is missing, unreadable or inconsistent."""


class ArtifactIntegrityError(ArtifactError):
    """A model file's sha256 does not match the manifest."""


class ExportError(InferstackError):
    """Export to ONNX failed, or the exported model does not match the source."""


class ConfigError(InferstackError, ValueError):
    """An environment variable has a value the runtime cannot use; names it and the
    allowed values."""
