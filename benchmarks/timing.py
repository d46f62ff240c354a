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


def paired_difference(
    base: Callable[[], Any], variant: Callable[[], Any], pairs: int, warmup: int = 10
) -> dict[str, float]:
    """What `variant` adds to `base`, call for call: the two are timed in adjacent pairs
    (which goes first alternates), and the median of the pairs' differences is reported
    with its quartiles. Drift and noise hit both calls of a pair alike, so this settles
    a difference far smaller than the noise of either p50."""
    for _ in range(warmup):
        base()
        variant()
    differences = []
    for index in range(pairs):
        order = (base, variant) if index % 2 == 0 else (variant, base)
        times = []
        for fn in order:
            start = time.perf_counter_ns()
            fn()
            times.append(time.perf_counter_ns() - start)
        base_ns, variant_ns = times if index % 2 == 0 else times[::-1]
        differences.append((variant_ns - base_ns) / 1e6)
    q1, median, q3 = statistics.quantiles(differences, n=4)
    return {"median_ms": median, "q1_ms": q1, "q3_ms": q3, "pairs": pairs}


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
