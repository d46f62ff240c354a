"""Runtime latency: raw onnxruntime vs Engine vs the full Lambda handler path vs torch.

Trains and exports the digits reference model (so torch and ONNX share weights), then
measures p50/p99 per call at batch 1 and 32:
  (i) session.run, (ii) Engine.infer, (iii) an API Gateway REST proxy event answered by
  `functions.handler.handler` as Lambda calls it (the direct infer path), with metrics
  off (as outside Lambda) and on (the EMF line per request Lambda writes; stdout to
  /dev/null), measured in alternating rounds so that drift hits both alike, (iv) the same
  event through Mangum -> FastAPI (the path every request took before the direct one,
  and the one the app's other routes take), (v) torch eager.
What the handler path adds over session.run, and what the metrics add, are medians of
the differences of adjacent pairs of calls on the same inputs (timing.paired_difference).
Prints a table and writes build/bench/runtime.json.

    .venv/bin/python -m benchmarks.runtime [--iterations 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.timing import measure, paired_difference
from localdev.lambda_runner import api_gateway_event

OUT = Path("build/bench/runtime.json")
MODEL_DIR = Path("build/bench/models/digits")
TARGET_HANDLER_OVERHEAD_MS = 0.3
TARGET_ORT_SPEEDUP = 1.5
TARGET_METRICS_OVERHEAD_MS = 0.05
HANDLER = "Lambda handler (API GW event)"
HANDLER_METRICS = "Lambda handler, metrics on"
ASGI = "Mangum -> FastAPI app (same event)"
ROUNDS = 5
# What the Lambda runtime passes (the attributes the handler reads).
CONTEXT = SimpleNamespace(
    aws_request_id="8476a536-e9f4-11e8-9739-2dfe598c3fcd",
    function_name="inferstack-bench-digits",
    function_version="1",
)


def measure_alternating(
    paths: dict[str, Callable[[], Any]], iterations: int
) -> dict[str, dict[str, float]]:
    """`measure` each path in ROUNDS alternating rounds (stdout to /dev/null): per path
    the median of the rounds' p50, p99 and mean."""
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in paths}
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for _ in range(ROUNDS):
            for name, fn in paths.items():
                rounds[name].append(measure(fn, max(1, iterations // ROUNDS)))
    return {
        name: {
            key: statistics.median(result[key] for result in results)
            for key in ("p50_ms", "p99_ms", "mean_ms")
        }
        | {"iterations": sum(result["iterations"] for result in results)}
        for name, results in rounds.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()
    console = Console()

    import torch

    from model_build.export import export_model
    from model_build.spec import resolve
    from model_runtime.app import create_app
    from model_runtime.backends.onnxruntime_backend import create_session
    from model_runtime.engine import Engine
    from model_runtime.events.entry import LambdaEntry
    from model_runtime.telemetry.coldstart import ColdStart
    from model_runtime.telemetry.emf import EmfWriter

    with console.status("training and exporting the digits model"):
        spec = resolve("digits").factory()
        export_model(spec, MODEL_DIR)
    os.environ["MODEL_DIR"] = str(MODEL_DIR)
    os.environ["INFERSTACK_METRICS"] = "off"
    handler_module = importlib.import_module("functions.handler")
    # The same engines behind an app that writes EMF: the two paths differ in the metrics
    # alone (a second onnxruntime session would compete for the cores).
    with_metrics = LambdaEntry(
        create_app(handler_module.app.state.dataplane, telemetry=EmfWriter(ColdStart()))
    )
    engine = Engine.load(MODEL_DIR)
    session = create_session(MODEL_DIR / engine.manifest.model_file)
    assert spec.eval_data is not None
    images = spec.eval_data.inputs["image"]

    rows = []
    for batch in (1, 32):
        x = np.ascontiguousarray(images[:batch])
        feed = {"image": x}
        event = api_gateway_event(
            "POST",
            "/v2/models/digits/infer",
            {
                "inputs": [
                    {
                        "name": "image",
                        "shape": list(x.shape),
                        "datatype": "FP32",
                        "data": x.ravel().tolist(),
                    }
                ]
            },
            base64_body=False,
        )
        check = handler_module.handler(event, CONTEXT)
        assert check["statusCode"] == 200, check
        with contextlib.redirect_stdout(sys.stderr):  # its first line: the init breakdown
            assert with_metrics(event, CONTEXT)["statusCode"] == 200
        tensor = torch.from_numpy(x)
        iterations = args.iterations if batch == 1 else max(200, args.iterations // 4)

        def run_torch(t: Any = tensor) -> Any:
            with torch.inference_mode():
                return spec.module(t)

        with console.status(f"measuring batch {batch}"):
            results = {
                "onnxruntime session.run": measure(lambda f=feed: session.run(None, f), iterations),
                "Engine.infer": measure(lambda f=feed: engine.infer(f), iterations),
                "torch eager": measure(run_torch, iterations),
                ASGI: measure(lambda e=event: handler_module.handler.http(e, CONTEXT), iterations),
            }
            results |= measure_alternating(
                {
                    HANDLER: lambda e=event: handler_module.handler(e, CONTEXT),
                    HANDLER_METRICS: lambda e=event: with_metrics(e, CONTEXT),
                },
                iterations,
            )
            if batch == 1:
                run = functools.partial(session.run, None, feed)
                handler_added = paired_difference(
                    run, functools.partial(handler_module.handler, event, CONTEXT), iterations * 2
                )
                asgi_added = paired_difference(
                    run, functools.partial(handler_module.handler.http, event, CONTEXT), iterations
                )
                with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
                    metrics_added = paired_difference(
                        functools.partial(handler_module.handler, event, CONTEXT),
                        functools.partial(with_metrics, event, CONTEXT),
                        iterations * 2,
                    )
        for path, stats in results.items():
            rows.append({"batch": batch, "path": path, **stats})

    def p50(batch: int, path: str) -> float:
        return next(r["p50_ms"] for r in rows if r["batch"] == batch and r["path"] == path)

    # Not the differences of p50s: each carries ~0.1 ms of noise on these machines; the
    # median of paired differences settles it.
    overhead = handler_added["median_ms"]
    metrics_overhead = metrics_added["median_ms"]
    speedup = p50(1, "torch eager") / p50(1, "onnxruntime session.run")
    summary = {
        "handler_overhead_p50_ms_batch1": overhead,
        "handler_overhead_quartiles_ms": [handler_added["q1_ms"], handler_added["q3_ms"]],
        "handler_overhead_pairs": handler_added["pairs"],
        "handler_overhead_target_ms": TARGET_HANDLER_OVERHEAD_MS,
        "handler_overhead_met": overhead <= TARGET_HANDLER_OVERHEAD_MS,
        "asgi_overhead_p50_ms_batch1": asgi_added["median_ms"],
        "asgi_overhead_quartiles_ms": [asgi_added["q1_ms"], asgi_added["q3_ms"]],
        "ort_vs_torch_speedup_batch1": speedup,
        "ort_vs_torch_target": TARGET_ORT_SPEEDUP,
        "ort_vs_torch_met": speedup >= TARGET_ORT_SPEEDUP,
        "metrics_overhead_p50_ms_batch1": metrics_overhead,
        "metrics_overhead_quartiles_ms": [metrics_added["q1_ms"], metrics_added["q3_ms"]],
        "metrics_overhead_pairs": metrics_added["pairs"],
        "metrics_overhead_target_ms": TARGET_METRICS_OVERHEAD_MS,
        "metrics_overhead_met": metrics_overhead <= TARGET_METRICS_OVERHEAD_MS,
    }

    table = Table(title="digits CNN runtime latency (ms per call)")
    for column in ("batch", "path", "p50", "p99", "mean"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for row in rows:
        table.add_row(
            str(row["batch"]),
            row["path"],
            f"{row['p50_ms']:.3f}",
            f"{row['p99_ms']:.3f}",
            f"{row['mean_ms']:.3f}",
        )
    console.print(table)
    verdict = {True: "met", False: "MISSED"}
    console.print(
        f"handler path overhead over session.run at batch 1: {overhead:.3f} ms, median of"
        f" {handler_added['pairs']:.0f} paired calls (quartiles {handler_added['q1_ms']:.3f} /"
        f" {handler_added['q3_ms']:.3f}) (target <= {TARGET_HANDLER_OVERHEAD_MS} ms:"
        f" {verdict[overhead <= TARGET_HANDLER_OVERHEAD_MS]})"
    )
    console.print(
        f"the same event through Mangum -> FastAPI: {asgi_added['median_ms']:.3f} ms over"
        f" session.run (quartiles {asgi_added['q1_ms']:.3f} / {asgi_added['q3_ms']:.3f})"
    )
    console.print(
        f"metrics (EMF) added to the handler path at batch 1: {metrics_overhead:.3f} ms,"
        f" median of {metrics_added['pairs']:.0f} paired calls (quartiles"
        f" {metrics_added['q1_ms']:.3f} / {metrics_added['q3_ms']:.3f})"
        f" (target <= {TARGET_METRICS_OVERHEAD_MS} ms:"
        f" {verdict[metrics_overhead <= TARGET_METRICS_OVERHEAD_MS]})"
    )
    console.print(
        f"onnxruntime vs torch eager at batch 1: {speedup:.2f}x"
        f" (target >= {TARGET_ORT_SPEEDUP}x: {verdict[speedup >= TARGET_ORT_SPEEDUP]})"
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": sys.version.split()[0],
                    "platform": platform.platform(),
                    "torch": torch.__version__,
                    "onnxruntime": importlib.import_module("onnxruntime").__version__,
                },
                "rows": rows,
                "summary": summary,
            },
            indent=2,
        )
        + "\n"
    )
    console.print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
