"""Comparing a candidate model's outputs with a reference's, output by output."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from model_runtime.manifest import OutputParity, ParityReport

Arrays = dict[str, np.ndarray[Any, Any]]
RunFn = Callable[[Arrays], Arrays]


def random_batches(example: Arrays, batch_sizes: Sequence[int], seed: int = 0) -> list[Arrays]:
    """Random inputs shaped like `example` (batch axis resized), within its value range."""
    rng = np.random.default_rng(seed)
    batches = []
    for size in batch_sizes:
        batch: Arrays = {}
        for name, array in example.items():
            shape = (size, *array.shape[1:])
            low, high = array.min(), array.max()
            if array.dtype.kind == "f":
                batch[name] = rng.uniform(low, high, shape).astype(array.dtype)
            elif array.dtype.kind in "iu":
                batch[name] = rng.integers(low, high, shape, endpoint=True).astype(array.dtype)
            else:
                batch[name] = np.resize(array, shape)
        batches.append(batch)
    return batches


def compare(
    reference: RunFn,
    candidate: RunFn,
    batches: Sequence[Arrays],
    *,
    reference_name: str,
    atol: float,
    rtol: float,
) -> ParityReport:
    """Run both on every batch. Float outputs pass when |c - r| <= atol + rtol * |r|
    everywhere; integer outputs (labels) must match exactly."""
    per_output: dict[str, dict[str, float]] = {}
    passed = True
    samples = 0
    for batch in batches:
        samples += len(next(iter(batch.values())))
        expected, actual = reference(batch), candidate(batch)
        for name, want in expected.items():
            got = actual[name]
            stats = per_output.setdefault(name, {"abs": 0.0, "rel": 0.0, "mismatches": 0})
            if got.shape != want.shape:
                # Broadcasting would compare the wrong elements, or hide a missing batch.
                stats["mismatches"] += max(got.size, want.size)
                passed = False
            elif want.dtype.kind == "f":
                diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
                scale = float(np.abs(want).max()) or 1.0
                stats["abs"] = max(stats["abs"], float(diff.max(initial=0.0)))
                stats["rel"] = max(stats["rel"], float(diff.max(initial=0.0)) / scale)
                passed &= bool(np.all(diff <= atol + rtol * np.abs(want)))
            else:
                mismatches = int(np.count_nonzero(got != want))
                stats["mismatches"] += mismatches
                passed &= mismatches == 0
    outputs = {
        name: OutputParity(
            max_abs_error=stats["abs"],
            max_rel_error=stats["rel"],
            mismatches=int(stats["mismatches"]),
        )
        for name, stats in per_output.items()
    }
    return ParityReport(
        reference=reference_name,
        batch_sizes=[len(next(iter(b.values()))) for b in batches],
        samples=samples,
        atol=atol,
        rtol=rtol,
        max_abs_error=max((o.max_abs_error for o in outputs.values()), default=0.0),
        max_rel_error=max((o.max_rel_error for o in outputs.values()), default=0.0),
        outputs=outputs,
        passed=passed,
    )


def describe_failure(report: ParityReport) -> str:
    worst = ", ".join(
        f"{name}: max abs {o.max_abs_error:.3g}, max rel {o.max_rel_error:.3g}"
        + (f", {o.mismatches} mismatches" if o.mismatches else "")
        for name, o in report.outputs.items()
    )
    return (
        f"outputs differ from {report.reference} beyond tolerance"
        f" (atol {report.atol:g}, rtol {report.rtol:g}) on {report.samples} samples: {worst}"
    )
