"""Lambda cold start and MiniLM warm latency: onnxruntime (fp32, int8) vs torch.

Cold start = process spawn -> first successful response to an API Gateway event, with
the packaged function zip + layers extracted into a Lambda-shaped tree and the handler
run by pyenv's python3.12 in isolated mode (localdev.lambda_runner), for digits, MiniLM
fp32 and MiniLM int8. Beside them, the same MiniLM app served with the torch backend
(same handler code, `import torch` + model.pt2 load; the venv's Python, since torch is
not in any layer). Warm: p50/p99 of the model call on the same token tensors at batch
1 (a short text) and batch 16 x 128 tokens, torch eager vs onnxruntime fp32 vs int8.

Prints a table and writes build/bench/coldstart.json.

    .venv/bin/python -m benchmarks.coldstart [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks.timing import measure
from layers.bytecode import find_interpreter
from layers.package import package, project_root
from localdev.lambda_runner import LambdaTree, api_gateway_event, invoke

ROOT = project_root()
OUT = ROOT / "build" / "bench" / "coldstart.json"
MODELS = ROOT / "build" / "bench" / "models"
SHORT_TEXT = "How do I reset my password?"
TARGETS = {
    "ort_fp32_speedup_b1": 2.5,
    "ort_int8_speedup_b1": 5.0,
    "int8_cold_start_s": 1.0,
    "torch_cold_start_ratio": 3.0,
    "runtime_layer_unzipped_mb": 150.0,
    "int8_package_unzipped_mb": 250.0,
}

# The torch-based handler: the very same app, with the torch backend.
TORCH_HANDLER = """
import json, sys, time
from mangum import Mangum
from model_runtime.app import create_app
from model_runtime.backends import BackendOptions
from model_runtime.settings import RuntimeSettings
settings = RuntimeSettings.from_env()
engines = settings.load_engines(BackendOptions(backend="torch", device="cpu"))
handler = Mangum(create_app(engines), lifespan="off")
for line in sys.stdin:
    print(json.dumps(handler(json.loads(line), None)), flush=True)
"""


def build_models() -> dict[str, Path]:
    """digits, minilm and minilm-int8 artifacts (built once into build/bench/models)."""
    from model_build.export import export_model
    from model_build.quantize import quantize_artifact
    from model_build.spec import resolve

    dirs = {name: MODELS / name for name in ("digits", "minilm", "minilm-int8")}
    for reference in ("digits", "minilm"):
        fp32, int8 = dirs[reference], MODELS / f"{reference}-int8"
        if (fp32 / "manifest.json").is_file() and (int8 / "manifest.json").is_file():
            continue
        spec = resolve(reference).factory()
        export_model(spec, fp32)
        quantize_artifact(fp32, int8, spec)
    return dirs


def text_event(model: str, texts: list[str]) -> dict[str, Any]:
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]}
    return api_gateway_event("POST", f"/v2/models/{model}/infer", body)


def digits_event() -> dict[str, Any]:
    from model_build.reference_models.digits import load_split

    image = load_split()[1][:1]
    body = {
        "inputs": [
            {
                "name": "image",
                "datatype": "FP32",
                "shape": [1, 1, 8, 8],
                "data": image.ravel().tolist(),
            }
        ]
    }
    return api_gateway_event("POST", "/v2/models/digits/infer", body)


def lambda_cold_starts(
    model_dir: Path, event: dict[str, Any], runs: int, python: Path
) -> dict[str, Any]:
    result = package(model_dir)
    layers = [layer.path for layer in result.layers]
    samples = []
    with tempfile.TemporaryDirectory(prefix="coldstart-") as tmp:
        for run in range(runs):
            # A fresh environment each time: new tree (empty /tmp), new process.
            tree = LambdaTree.extract(Path(tmp) / f"run{run}", result.function.path, layers)
            env = {"MODEL_URI": f"{tree.opt}/models/{model_dir.name}"}
            invocation = invoke(tree, python, [event], env)
            status = invocation.responses[0]["statusCode"]
            if status != 200:
                raise SystemExit(f"{model_dir.name}: status {status}: {invocation.responses[0]}")
            samples.append(invocation.cold_start_s)
    return {
        **summary(samples),
        "function_zip_bytes": result.function.zipped_bytes,
        "runtime_layer_unzipped_bytes": result.runtime_layer.unzipped_bytes,
        "model_layer_unzipped_bytes": result.model_layer.unzipped_bytes
        if result.model_layer
        else 0,
        "package_unzipped_bytes": result.budget.unzipped_bytes,
        "read_only_mounts": invocation.read_only_mounts,
    }


def torch_cold_starts(model_dir: Path, event: dict[str, Any], runs: int) -> dict[str, Any]:
    samples = []
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": tempfile.gettempdir(),
        "MODEL_URI": str(model_dir),
    }
    for _ in range(runs):
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-c", TORCH_HANDLER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert process.stdin and process.stdout
        process.stdin.write(json.dumps(event) + "\n")
        process.stdin.flush()
        line = process.stdout.readline()
        elapsed = time.perf_counter() - started
        process.stdin.close()
        process.wait(timeout=60)
        if not line or json.loads(line)["statusCode"] != 200:
            stderr = process.stderr.read() if process.stderr else ""
            raise SystemExit(f"torch handler failed: {line[:300]} {stderr[-2000:]}")
        samples.append(elapsed)
    return {**summary(samples), "python": platform.python_version()}


def warm_latencies(dirs: dict[str, Path], iterations: int) -> dict[str, Any]:
    import torch

    from model_build.reference_models.minilm import sentence_embedder, tokenize
    from model_runtime.backends.onnxruntime_backend import create_session
    from model_runtime.host import available_cpus

    threads = available_cpus()
    torch.set_num_threads(threads)
    module = sentence_embedder()
    long_texts = [
        f"{i} " + " ".join(["the quick brown fox jumps over the lazy dog"] * 20) for i in range(16)
    ]
    inputs = {
        "batch 1 (short text)": tokenize([SHORT_TEXT]),
        "batch 16 x 128 tokens": tokenize(long_texts, max_length=128),
    }
    assert inputs["batch 16 x 128 tokens"]["input_ids"].shape == (16, 128)
    sessions = {
        "onnxruntime fp32": create_session(dirs["minilm"] / "model.onnx", threads),
        "onnxruntime int8": create_session(dirs["minilm-int8"] / "model.onnx", threads),
    }
    results: dict[str, Any] = {}
    for shape, feed in inputs.items():
        tensors = {name: torch.from_numpy(array) for name, array in feed.items()}

        def run_torch(tensors: dict[str, Any] = tensors) -> Any:
            with torch.inference_mode():
                return module(**tensors)

        runners: dict[str, Callable[[], Any]] = {"torch eager": run_torch}
        for name, session in sessions.items():
            runners[name] = partial(session.run, None, feed)
        count = iterations if shape.startswith("batch 1 ") else max(20, iterations // 10)
        results[shape] = {name: measure(fn, count) for name, fn in runners.items()}
        reference = np.asarray(run_torch())
        for name, session in sessions.items():
            got = session.run(None, feed)[0]
            results[shape][name]["min_cosine_vs_torch"] = float((got * reference).sum(axis=1).min())
    return results


def summary(samples: list[float]) -> dict[str, Any]:
    return {
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
        "runs": len(samples),
        "samples_s": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="cold starts per model")
    parser.add_argument("--iterations", type=int, default=300, help="warm calls at batch 1")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    console = Console()
    python = find_interpreter("3.12")
    if python is None:
        raise SystemExit("no python3.12 (pyenv versions or PATH): needed for the Lambda tree")
    with console.status("building models and packages"):
        dirs = build_models()
        cold = {
            "digits": lambda_cold_starts(dirs["digits"], digits_event(), args.runs, python),
            "minilm fp32": lambda_cold_starts(
                dirs["minilm"], text_event("minilm", [SHORT_TEXT]), args.runs, python
            ),
            "minilm int8": lambda_cold_starts(
                dirs["minilm-int8"], text_event("minilm-int8", [SHORT_TEXT]), args.runs, python
            ),
        }
    with console.status("torch-based handler cold starts"):
        cold["minilm torch handler"] = torch_cold_starts(
            dirs["minilm"], text_event("minilm", [SHORT_TEXT]), max(3, args.runs // 2)
        )
    with console.status("warm latency"):
        warm = warm_latencies(dirs, args.iterations)
    report = assemble(cold, warm, python)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    render(console, report)
    console.print(f"wrote {OUT.relative_to(ROOT)}")


def assemble(cold: dict[str, Any], warm: dict[str, Any], python: Path) -> dict[str, Any]:
    b1 = warm["batch 1 (short text)"]
    torch_b1 = b1["torch eager"]["p50_ms"]
    int8_cold = cold["minilm int8"]["median_s"]
    measured = {
        "ort_fp32_speedup_b1": torch_b1 / b1["onnxruntime fp32"]["p50_ms"],
        "ort_int8_speedup_b1": torch_b1 / b1["onnxruntime int8"]["p50_ms"],
        "int8_cold_start_s": int8_cold,
        "torch_cold_start_ratio": cold["minilm torch handler"]["median_s"] / int8_cold,
        "runtime_layer_unzipped_mb": cold["minilm int8"]["runtime_layer_unzipped_bytes"] / 2**20,
        "int8_package_unzipped_mb": cold["minilm int8"]["package_unzipped_bytes"] / 2**20,
    }
    lower_is_better = {"int8_cold_start_s", "runtime_layer_unzipped_mb", "int8_package_unzipped_mb"}
    return {
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "lambda_python": str(python),
        },
        "cold_start": cold,
        "warm": warm,
        "targets": {
            name: {
                "target": target,
                "measured": measured[name],
                "met": measured[name] <= target
                if name in lower_is_better
                else measured[name] >= target,
            }
            for name, target in TARGETS.items()
        },
    }


def render(console: Console, report: dict[str, Any]) -> None:
    cold = Table(title="Cold start: spawn -> first response (isolated python3.12 Lambda tree)")
    for column in ("model", "median s", "min s", "max s", "runs", "package unzipped"):
        cold.add_column(column)
    for name, row in report["cold_start"].items():
        size = row.get("package_unzipped_bytes")
        cold.add_row(
            name,
            f"{row['median_s']:.3f}",
            f"{row['min_s']:.3f}",
            f"{row['max_s']:.3f}",
            str(row["runs"]),
            f"{size / 2**20:.1f} MB" if size else "torch (not a Lambda package)",
        )
    console.print(cold)
    warm = Table(title="MiniLM warm latency (model call, same token tensors)")
    for column in (
        "input",
        "backend",
        "p50 ms",
        "p99 ms",
        "speedup vs torch (p50)",
        "cos vs torch",
    ):
        warm.add_column(column)
    for shape, backends in report["warm"].items():
        torch_p50 = backends["torch eager"]["p50_ms"]
        for name, row in backends.items():
            warm.add_row(
                shape,
                name,
                f"{row['p50_ms']:.2f}",
                f"{row['p99_ms']:.2f}",
                f"{torch_p50 / row['p50_ms']:.1f}x",
                f"{row['min_cosine_vs_torch']:.4f}" if "min_cosine_vs_torch" in row else "",
            )
    console.print(warm)
    targets = Table(title="Targets")
    for column in ("target", "wanted", "measured", "met"):
        targets.add_column(column)
    for name, row in report["targets"].items():
        wanted = (
            f"<= {row['target']}"
            if "cold_start_s" in name or "mb" in name
            else f">= {row['target']}"
        )
        targets.add_row(name, wanted, f"{row['measured']:.2f}", "yes" if row["met"] else "NO")
    console.print(targets)
    console.print(f"load average during the run: {report['machine']['load_average']}")


if __name__ == "__main__":
    main()
