"""S3 objects through botocore: the ObjectReader delivery uses for s3:// URIs.

botocore's errors become the runtime's by type and AWS error code. boto3 and botocore are
imported on first use, never with this module: Lambda provides them (they are not in the
runtime layer), and serving a local MODEL_URI never needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from model_runtime.errors import ObjectChanged, ObjectNotFound, ObjectReadError, TransientReadError

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

CHUNK_BYTES = 1 << 20
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
# A conditional request (IfMatch, IfNoneMatch) whose condition does not hold.
PRECONDITION_CODES = frozenset({"PreconditionFailed", "412"})
# A range that starts past the object's end.
INVALID_RANGE_CODES = frozenset({"InvalidRange", "416"})
# S3 error codes worth another try; anything else (403, 404, ...) fails at once.
TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "500",
        "502",
        "503",
        "504",
    }
)


class S3Reader:
    """GetObject on a botocore S3 client (by default boto3's, made on first use, with
    `max_connections` for as many threads reading ranges at once)."""

    def __init__(self, client: Any = None, *, max_connections: int = 10) -> None:
        self._client = client
        self._max_connections = max_connections

    def read(self, bucket: str, key: str) -> bytes:
        with read_errors():
            data: bytes = self._body(bucket, key).read()
        return data

    def stream(self, bucket: str, key: str, write: Callable[[bytes], object]) -> None:
        with read_errors():
            body = self._body(bucket, key)
            for chunk in iter(lambda: body.read(CHUNK_BYTES), b""):
                write(chunk)

    def read_range(self, bucket: str, key: str, start: int, end: int) -> bytes:
        """One ranged GET (still s3:GetObject); empty when the object ends before `start`."""
        from botocore.exceptions import ClientError

        with read_errors():
            try:
                body = self._body(bucket, key, Range=f"bytes={start}-{end - 1}")
            except ClientError as exc:
                if _code(exc) in INVALID_RANGE_CODES:
                    return b""
                raise
            data: bytes = body.read()
        return data

    def _body(self, bucket: str, key: str, **arguments: str) -> Any:
        if self._client is None:
            self._client = default_client(self._max_connections)
        return self._client.get_object(Bucket=bucket, Key=key, **arguments)["Body"]


def default_client(max_connections: int = 10) -> Any:
    import boto3
    from botocore.config import Config

    # botocore retries requests itself; reads of a body that breaks mid-stream are ours.
    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=30,
        max_pool_connections=max_connections,
    )
    return boto3.client("s3", config=config)


@contextmanager
def read_errors() -> Iterator[None]:
    """botocore's errors (and the socket's) on a read as ObjectNotFound, ObjectChanged
    (an IfMatch that failed), TransientReadError or ObjectReadError; the message is
    botocore's."""
    from botocore import exceptions as boto

    try:
        yield
    except boto.ClientError as exc:
        raise _client_error(exc) from exc
    except (
        boto.HTTPClientError,  # read timeouts and bodies cut off mid-stream among them
        boto.ConnectionError,
        boto.IncompleteReadError,
        ConnectionError,
        TimeoutError,
    ) as exc:
        raise TransientReadError(str(exc)) from exc
    except boto.BotoCoreError as exc:  # credentials, configuration, parameters
        raise ObjectReadError(str(exc)) from exc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _client_error(exc: ClientError) -> ObjectReadError:
    code = _code(exc)
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in NOT_FOUND_CODES:
        return ObjectNotFound(str(exc))
    if code in PRECONDITION_CODES:
        return ObjectChanged(str(exc))
    if code in TRANSIENT_CODES or status >= 500:
        return TransientReadError(str(exc))
    return ObjectReadError(str(exc))
