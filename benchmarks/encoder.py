"""MiniLM warm latency: torch eager vs onnxruntime fp32 (optimized graph) vs int8 (searched).

The model call alone, on the same token tensors, at batch 1 (a short text) and batch
16 x 128 tokens. The three run side by side in one process: in rounds, each runs a block
of calls, the order rotating from round to round, so drift and other load hit all
three alike. torch is sentence-transformers' own module (its default SDPA attention);
torch and onnxruntime get the same number of threads.

Each block starts after a pause (SETTLE_S) and one untimed call. An onnxruntime
session's threads spin for some 30-50 ms after its last run, waiting for more work
(measured here): without the pause, the next block's runner shares the two cores with
the previous runner's spinning threads, which no served model meets (a process serves
one session) and which cost int8 at batch 1 half its speed (3.5 ms alone, 7-8 ms right
after the fp32 session ran).

Beside the timings, each model's min cosine against sentence-transformers on the
built-in evaluation texts (model_build/reference_models/eval_texts.py) at batch 1, 8
and 32. The tests' parity sentences are checked by tests/integration/minilm/test_parity.py,
which asserts the same bar on them; a benchmark does not import tests.

Uses build/models/minilm{,-int8}, building them first when they are missing or stale
(`inferstack build minilm`). Prints a table and writes build/bench/encoder.json.

    .venv/bin/python -m benchmarks.encoder [--rounds 40]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

OUT = Path("build/bench/encoder.json")
MODELS = Path("build/models")
SHORT_TEXT = "How do I reset my password?"
LONG_TEXT = " ".join(["the quick brown fox jumps over the lazy dog"] * 20)
TORCH = "torch eager"
FP32 = "onnxruntime fp32"
INT8 = "onnxruntime int8"
TARGETS = {
    "fp32_speedup_batch_1": 3.0,
    "fp32_speedup_16x128": 1.5,
    "int8_speedup_batch_1": 5.0,
    "int8_min_cosine": 0.98,
}
COSINE_BATCH_SIZES = (1, 8, 32)
# Longer than the previous runner's threads spin after its last call (see above).
SETTLE_S = 0.1


def build_artifacts() -> dict[str, Path]:
    from model_build.build import build_model

    build_model(
        "minilm",
        MODELS,
        quantize=True,
        exporter="torchscript",
        force=False,
        progress=lambda step: None,
    )
    return {FP32: MODELS / "minilm", INT8: MODELS / "minilm-int8"}


def interleaved(
    runners: dict[str, Callable[[], Any]], rounds: int, block: int
) -> dict[str, dict[str, float]]:
    """p50/p99 per runner over `rounds` rounds of `block` timed calls each (after a pause
    for the previous runner's threads to stop spinning, and one untimed call that wakes
    this runner's own), in rotating order."""
    names = list(runners)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            run = runners[name]
            time.sleep(SETTLE_S)
            run()
            for _ in range(block):
                start = time.perf_counter_ns()
                run()
                samples[name].append((time.perf_counter_ns() - start) / 1e6)
    return {name: _percentiles(values) for name, values in samples.items()}


def _percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {
        "p50_ms": statistics.median(values),
        # What `inferstack cost` reads for minilm-int8 (pricing/latency.py).
        "mean_ms": statistics.fmean(values),
        "p99_ms": values[min(len(values) - 1, int(len(values) * 0.99))],
        "calls": len(values),
    }


def latencies(dirs: dict[str, Path], threads: int, rounds: int) -> dict[str, Any]:
    import torch

    from model_build.reference_models.minilm import tokenize
    from model_runtime.backends.onnxruntime_backend import create_session

    torch.set_num_threads(threads)
    reference = _sentence_transformer()
    feeds = {
        "batch 1 (short text)": tokenize([SHORT_TEXT]),
        "batch 16 x 128 tokens": tokenize([f"{i} {LONG_TEXT}" for i in range(16)], 128),
    }
    assert feeds["batch 16 x 128 tokens"]["input_ids"].shape == (16, 128)
    sessions = {name: create_session(path / "model.onnx", threads) for name, path in dirs.items()}
    results: dict[str, Any] = {}
    for shape, feed in feeds.items():
        tensors = {name: torch.from_numpy(array) for name, array in feed.items()}

        def run_torch(tensors: dict[str, Any] = tensors) -> Any:
            with torch.inference_mode():
                return reference(dict(tensors))["sentence_embedding"]

        runners: dict[str, Callable[[], Any]] = {TORCH: run_torch}
        for name, session in sessions.items():
            runners[name] = partial(session.run, None, feed)
        small = shape.startswith("batch 1 ")
        results[shape] = interleaved(
            runners, rounds if small else max(4, rounds // 8), block=10 if small else 2
        )
    return results


def cosines(dirs: dict[str, Path]) -> dict[str, dict[str, float]]:
    """Min cosine against sentence-transformers on the evaluation texts, per batch size."""
    from model_build.reference_models.eval_texts import EVALUATION_TEXTS
    from model_build.reference_models.minilm import reference_embeddings, tokenize
    from model_runtime.backends.onnxruntime_backend import create_session

    expected = reference_embeddings(EVALUATION_TEXTS)
    result: dict[str, dict[str, float]] = {}
    for name, path in dirs.items():
        session = create_session(path / "model.onnx")
        result[name] = {}
        for size in COSINE_BATCH_SIZES:
            rows = [
                session.run(None, tokenize(EVALUATION_TEXTS[i : i + size]))[0]
                for i in range(0, len(EVALUATION_TEXTS), size)
            ]
            got = np.concatenate(rows)
            got = got / np.linalg.norm(got, axis=1, keepdims=True)
            result[name][f"batch {size}"] = float((got * expected).sum(axis=1).min())
    return result


def _sentence_transformer() -> Any:
    from sentence_transformers import SentenceTransformer

    from model_build.reference_models.minilm import weights_dir

    return SentenceTransformer(str(weights_dir()), device="cpu").eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="rounds at batch 1")
    parser.add_argument("--threads", type=int, default=None, help="default: this host's CPUs")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from model_runtime.host import available_cpus

    threads = args.threads or available_cpus()
    console = Console()
    with console.status("building / checking build/models/minilm{,-int8}"):
        dirs = build_artifacts()
    with console.status("warm latency, side by side"):
        warm = latencies(dirs, threads, args.rounds)
    with console.status("cosine against sentence-transformers"):
        cosine = cosines(dirs)
    report = assemble(dirs, warm, cosine, threads)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    render(console, report)
    console.print(f"wrote {OUT}")


def assemble(
    dirs: dict[str, Path], warm: dict[str, Any], cosine: dict[str, Any], threads: int
) -> dict[str, Any]:
    from model_runtime.manifest import Manifest

    def speedup(shape: str, name: str) -> float:
        row = warm[shape]
        return float(row[TORCH]["p50_ms"] / row[name]["p50_ms"])

    measured = {
        "fp32_speedup_batch_1": speedup("batch 1 (short text)", FP32),
        "fp32_speedup_16x128": speedup("batch 16 x 128 tokens", FP32),
        "int8_speedup_batch_1": speedup("batch 1 (short text)", INT8),
        "int8_min_cosine": min(cosine[INT8].values()),
    }
    int8 = Manifest.load(dirs[INT8]).quantization
    fp32 = Manifest.load(dirs[FP32]).optimization
    return {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "threads": threads,
            "load_average": os.getloadavg(),
        },
        "warm": warm,
        "min_cosine_vs_sentence_transformers": cosine,
        "optimization": fp32.model_dump() if fp32 else None,
        "quantization": int8.model_dump() if int8 else None,
        "targets": {
            name: {"target": target, "measured": measured[name], "met": measured[name] >= target}
            for name, target in TARGETS.items()
        },
    }


def render(console: Console, report: dict[str, Any]) -> None:
    table = Table(title=f"MiniLM warm latency ({report['machine']['threads']} threads each)")
    for column in ("input", "model", "p50 ms", "p99 ms", "speedup vs torch (p50)"):
        table.add_column(column)
    for shape, rows in report["warm"].items():
        torch_p50 = rows[TORCH]["p50_ms"]
        for name, row in rows.items():
            table.add_row(
                shape,
                name,
                f"{row['p50_ms']:.2f}",
                f"{row['p99_ms']:.2f}",
                f"{torch_p50 / row['p50_ms']:.2f}x",
            )
    console.print(table)
    cosine = Table(title="Min cosine vs sentence-transformers (evaluation texts)")
    cosine.add_column("model")
    for size in COSINE_BATCH_SIZES:
        cosine.add_column(f"batch {size}")
    for name, row in report["min_cosine_vs_sentence_transformers"].items():
        cosine.add_row(name, *(f"{value:.4f}" for value in row.values()))
    console.print(cosine)
    quantization = report["quantization"]
    if quantization:
        console.print(
            f"int8: {len(quantization['kept_fp32'])} node(s) kept in fp32, gate"
            f" {quantization['gate']['metric']} >= {quantization['gate']['minimum']}"
            f" measured {quantization['gate_measured']:.4f} against fp32,"
            f" {quantization['search_evaluations']} search evaluations"
        )
    targets = Table(title="Targets")
    for column in ("target", "wanted", "measured", "met"):
        targets.add_column(column)
    for name, row in report["targets"].items():
        targets.add_row(
            name, f">= {row['target']}", f"{row['measured']:.3f}", "yes" if row["met"] else "NO"
        )
    console.print(targets)
    console.print(f"load average during the run: {report['machine']['load_average']}")


if __name__ == "__main__":
    main()
