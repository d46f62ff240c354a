"""Stage timings of one request, filled in as it runs (the dataplane and the app write
them, the request middleware reads them)."""

from __future__ import annotations

from time import perf_counter

STAGES = ("decode", "preprocess", "infer", "encode")

# The ASGI scope key under which the request middleware hands a request its StageTimes.
SCOPE_KEY = "inferstack.stage_times"


class StageTimes:
    """Milliseconds per stage; None for a stage the request did not reach (or that runs
    elsewhere, as in the container server's batcher)."""

    __slots__ = ("batch_size", "decode_ms", "encode_ms", "infer_ms", "preprocess_ms")

    def __init__(self) -> None:
        self.decode_ms: float | None = None
        self.preprocess_ms: float | None = None
        self.infer_ms: float | None = None
        self.encode_ms: float | None = None
        self.batch_size: int | None = None

    def add_encode(self, started: float) -> None:
        """Add the time since `started` (a perf_counter reading) to the encode stage."""
        self.encode_ms = (self.encode_ms or 0.0) + (perf_counter() - started) * 1000

    def measured(self) -> dict[str, float]:
        """`<stage>_ms` of every stage that ran."""
        found = {
            "decode_ms": self.decode_ms,
            "preprocess_ms": self.preprocess_ms,
            "infer_ms": self.infer_ms,
            "encode_ms": self.encode_ms,
        }
        return {name: value for name, value in found.items() if value is not None}
