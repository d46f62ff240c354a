"""A model's warm latency, the number its Lambda duration cost is computed from, and where
it came from. `inferstack cost` asks CloudWatch first (a deployed stack); else the
project's benchmark JSON under build/bench/ is read here; else the latency is unknown and
no duration cost is computed."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pricing.errors import PricingError

BENCH_DIR = Path("build/bench")


@dataclass(frozen=True)
class WarmLatency:
    """Mean warm duration of one request in ms (None: unknown), and what measured it."""

    ms: float | None
    source: str


def unknown(reason: str) -> WarmLatency:
    return WarmLatency(None, f"unknown: {reason}")


def from_cloudwatch(ms: float, function: str, hours: float) -> WarmLatency:
    return WarmLatency(
        ms, f"CloudWatch AWS/Lambda Duration of {function}:live, average over the last {hours:g} h"
    )


@dataclass(frozen=True)
class BenchmarkRow:
    """Which row of which benchmark file measured a model, read as its mean in ms."""

    file: str
    row: str
    mean_ms: Callable[[Any], Any]
    # What the row measures beside the request's own work, said with the number.
    caveat: str


def _runtime_handler_row(data: Any) -> Any:
    return next(
        row["mean_ms"]
        for row in data["rows"]
        if row["batch"] == 1 and row["path"] == "Lambda handler (API GW event)"
    )


# Only models a benchmark measures as they are served. benchmarks/runtime.py times the
# whole handler path (API Gateway event -> Mangum -> FastAPI -> Engine -> JSON) for the
# fp32 digits model; benchmarks/encoder.py times the int8 MiniLM session on tokenized
# input. Nothing measures digits-int8, so its latency stays unknown rather than borrowed.
BENCHMARK_ROWS: dict[str, BenchmarkRow] = {
    "digits": BenchmarkRow(
        "runtime.json",
        "batch 1, 'Lambda handler (API GW event)'",
        _runtime_handler_row,
        "the whole handler path, on the benchmark's machine, not on Lambda",
    ),
    "minilm-int8": BenchmarkRow(
        "encoder.json",
        "warm 'batch 1 (short text)', 'onnxruntime int8'",
        lambda data: data["warm"]["batch 1 (short text)"]["onnxruntime int8"]["mean_ms"],
        "the model call only (no tokenizer, no handler), on the benchmark's machine",
    ),
}


def warm_latency(model: str, root: Path, deployed: WarmLatency | None) -> WarmLatency:
    """CloudWatch's number when the stack is deployed and has one, else the benchmark's,
    else unknown."""
    if deployed is not None:
        return deployed
    measured = from_benchmarks(model, root)
    if measured is not None:
        return measured
    return unknown(f"no CloudWatch data, and no benchmark result for {model} in {BENCH_DIR}/")


def from_benchmarks(model: str, root: Path) -> WarmLatency | None:
    """The model's mean latency from its benchmark row; None when no benchmark measures
    this model or its file has not been written (run the benchmark to make one)."""
    row = BENCHMARK_ROWS.get(model)
    if row is None:
        return None
    path = BENCH_DIR / row.file
    if not (root / path).is_file():
        return None
    try:
        value = row.mean_ms(json.loads((root / path).read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise PricingError(f"benchmark file {path} is not valid JSON: {exc}") from exc
    except (KeyError, TypeError, StopIteration) as exc:
        raise PricingError(f"benchmark file {path} has no row {row.row} with a mean_ms") from exc
    if not isinstance(value, int | float) or value <= 0:
        raise PricingError(f"benchmark file {path}: {row.row}: mean_ms {value!r} is not positive")
    return WarmLatency(float(value), f"{path}: {row.row}, mean ({row.caveat})")
