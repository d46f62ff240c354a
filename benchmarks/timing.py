"""Per-call latency sampling shared by the benchmarks."""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def measure(fn: Callable[[], Any], iterations: int, warmup: int = 10) -> dict[str, float]:
    """Call `fn` `warmup` times unmeasured, then `iterations` times: p50/p99/mean in ms."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1e6)
    samples.sort()
    return {
        "p50_ms": statistics.median(samples),
        "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
        "mean_ms": statistics.fmean(samples),
        "iterations": iterations,
    }


def run_child_json(command: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Run a benchmark step in a fresh process; its last stdout line is a JSON report.
    Adds `wall_s`, the whole process's wall time (imports included)."""
    started = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=env, cwd=cwd)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed (exit {result.returncode})")
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    report["wall_s"] = wall
    return report
