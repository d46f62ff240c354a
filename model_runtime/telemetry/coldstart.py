"""The cold-start breakdown of one execution environment: the handler module's init as
imports, artifact (fetch and verification) and session (the model backends' sessions, the
tokenizer and the entry around them: everything after verification until the handler is
ready), then the first inference (the first request's model run, which pays the backend's
lazy allocations). The phases are timed back to back, so they add up to the init's wall
time. A session opened beside the imports (model_runtime.early_open) is paid inside
"imports"; "session" then counts only the wait for it."""

from __future__ import annotations

from time import perf_counter
from typing import Literal

Phase = Literal["imports", "artifact", "session"]


class ColdStart:
    """Phases timed back to back from `started` (a perf_counter reading): `add(phase)`
    charges the time since the previous mark to `phase`; `ready()` charges the rest of
    the init to the session."""

    def __init__(self, started: float | None = None) -> None:
        self.phases: dict[Phase, float] = {"imports": 0.0, "artifact": 0.0, "session": 0.0}
        self._mark = perf_counter() if started is None else started

    @classmethod
    def after_imports(cls, started: float) -> ColdStart:
        """Begun at `started`, the handler module's first line; its imports done now."""
        cold_start = cls(started)
        cold_start.add("imports")
        return cold_start

    def add(self, phase: Phase) -> None:
        now = perf_counter()
        self.phases[phase] += (now - self._mark) * 1000
        self._mark = now

    def ready(self) -> None:
        self.add("session")

    def metrics(self, first_inference_ms: float) -> dict[str, float]:
        """The `init_*` metrics: the phases, and their sum with the first inference."""
        init_ms = sum(self.phases.values())
        return {
            "init_imports_ms": self.phases["imports"],
            "init_artifact_ms": self.phases["artifact"],
            "init_session_ms": self.phases["session"],
            "init_first_inference_ms": first_inference_ms,
            "init_total_ms": init_ms + first_inference_ms,
        }
