"""The cold-start phases are timed back to back: they add up to the init's wall time."""

from __future__ import annotations

import time

from model_runtime.telemetry.coldstart import ColdStart


def test_phases_are_charged_the_time_since_the_previous_mark() -> None:
    started = time.perf_counter()
    time.sleep(0.01)
    cold_start = ColdStart.after_imports(started)
    time.sleep(0.02)
    cold_start.add("artifact")
    time.sleep(0.005)
    cold_start.add("session")
    time.sleep(0.005)
    cold_start.ready()  # the rest of the init: the session's
    wall_ms = (time.perf_counter() - started) * 1000
    phases = cold_start.phases
    assert 10 <= phases["imports"] < 20
    assert 20 <= phases["artifact"] < 30
    assert 10 <= phases["session"] < 20
    assert 0 <= wall_ms - sum(phases.values()) < 1


def test_metrics_add_the_first_inference_to_the_init() -> None:
    cold_start = ColdStart(started=0.0)
    cold_start.phases.update({"imports": 1.0, "artifact": 2.0, "session": 3.0})
    metrics = cold_start.metrics(first_inference_ms=4.0)
    assert metrics == {
        "init_imports_ms": 1.0,
        "init_artifact_ms": 2.0,
        "init_session_ms": 3.0,
        "init_first_inference_ms": 4.0,
        "init_total_ms": 10.0,
    }
