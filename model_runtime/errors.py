"""Domain errors of the model runtime.

They know nothing of HTTP: `model_runtime.answers` maps them to statuses in one place.
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


class OptionNotAllowed(BackendUnavailable):
    """A backend, device or dtype value that is not one of `allowed`; `needs_backend`
    names the backend a known value needs when the chosen one cannot take it."""

    def __init__(
        self,
        message: str,
        option: str,
        value: str,
        allowed: tuple[str, ...],
        needs_backend: str | None = None,
    ) -> None:
        super().__init__(message, option)
        self.value = value
        self.allowed = allowed
        self.needs_backend = needs_backend


class ArtifactError(InferstackError):
    """A model artifact directory is missing, unreadable or inconsistent."""


class ArtifactIntegrityError(ArtifactError):
    """A model file's sha256 does not match the manifest."""


class ObjectReadError(ArtifactError):
    """Reading an object from an object store failed; only a TransientReadError is worth
    another try."""


class ObjectNotFound(ObjectReadError):
    """The object store has no object under that key."""


class TransientReadError(ObjectReadError):
    """Reading an object failed in a way another try may fix (throttling, a dropped
    connection, a server error)."""


class ConfigError(InferstackError, ValueError):
    """An environment variable has a value the runtime cannot use; names it and the
    allowed values."""


class ObjectChanged(ObjectReadError):
    """The object no longer has the ETag the reader asked for (it was replaced)."""


class ObjectWriteError(InferstackError):
    """Writing an object to an object store failed."""


class ObjectExists(ObjectWriteError):
    """A put-if-absent found an object already under that key."""


class QueueError(InferstackError):
    """Sending a message to a queue failed."""


class JobsNotEnabled(InferstackError):
    """The model is served here, but not with queued jobs."""


class JobNotFound(InferstackError):
    """No job of that id for that model."""


class JobConflict(InferstackError):
    """An Idempotency-Key already names a job submitted with a different body."""
