"""API Gateway -> GPU-served model vs API Gateway -> Lambda, on LocalStack, side by side.

One run deploys stacks/local.py's `digits` (Lambda) and `digits-gpu` (the container server
as a local process, reached through an HTTP proxy integration) under the stack name
`bench-gpu`, then drives both routes with closed-loop clients (each sends its next
request when the last is answered, over its own keep-alive connection) at 1 and 64
clients: p50 / p99 latency and throughput, with the rounds of the two routes interleaved
(route A, route B, route B, route A, ...) so that the machine's drift hits both alike. The
server's mean batch size comes from its /metrics. Each (route, clients) point is warmed
first, unmeasured, until every client has been answered: 64 Lambda environments cold-start
at once on this machine's 2 cores, which is not what the point measures.

It prints a table, writes build/bench/gpu_route.json and takes the stack down, also on
failure. LocalStack is started if it is not running (and then stopped at the end).

    .venv/bin/python -m benchmarks.gpu_route [--clients 1,64] [--duration 10] [--rounds 2]

On this stand-in the "GPU" server runs onnxruntime on the same 2 CPU cores as LocalStack
and the Lambda environments: the comparison is of the two paths (HTTP proxy to one
batching server vs a Lambda invocation per request), not of a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from layers.package import project_root

REPO = project_root()
OUT = REPO / "build" / "bench" / "gpu_route.json"
STACK = "bench-gpu"
LAMBDA_MODEL = "digits"
GPU_MODEL = "digits-gpu"
WARMUP_TIMEOUT_S = 180


@dataclass
class Point:
    route: str
    model: str
    clients: int
    rounds: int
    requests: int
    errors: int
    seconds: float
    throughput_rps: float
    p50_ms: float
    p99_ms: float


def bench_config() -> Any:
    from infra.stack_loader import load_stack

    local = load_stack("local")
    models = [model for model in local.models if model.name in (LAMBDA_MODEL, GPU_MODEL)]
    if {model.name for model in models} != {LAMBDA_MODEL, GPU_MODEL}:
        raise SystemExit(f"stacks/local.py must declare {LAMBDA_MODEL!r} and {GPU_MODEL!r}")
    # Only the request path: no jobs or batches beside it.
    models = [model.model_copy(update={"async_": None, "batch": None}) for model in models]
    return local.model_copy(update={"models": models})


def request_body() -> bytes:
    from model_build.reference_models.digits import load_split

    image = load_split()[1][:1]
    body = {
        "inputs": [
            {
                "name": "image",
                "shape": list(image.shape),
                "datatype": "FP32",
                "data": image.ravel().tolist(),
            }
        ]
    }
    return json.dumps(body).encode()


def drive(url: str, body: bytes, clients: int, seconds: float) -> tuple[list[float], int, float]:
    """`clients` closed-loop clients for `seconds`: latencies (s) of 200s, errors, wall s."""
    import httpx

    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client() -> None:
        mine: list[float] = []
        failed = 0
        with httpx.Client(timeout=60.0, headers={"content-type": "application/json"}) as http:
            while (sent := time.perf_counter()) < stop:
                try:
                    status = http.post(url, content=body).status_code
                except httpx.HTTPError:
                    status = 0
                if status == 200:
                    mine.append(time.perf_counter() - sent)
                else:
                    failed += 1
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0], time.perf_counter() - started


def warm(url: str, body: bytes, clients: int) -> None:
    """Until `clients` concurrent requests are all answered 200 (cold starts done)."""
    import httpx

    def call(_: int) -> int:
        with httpx.Client(timeout=WARMUP_TIMEOUT_S) as http:
            try:
                return http.post(url, content=body).status_code
            except httpx.HTTPError:
                return 0

    deadline = time.monotonic() + WARMUP_TIMEOUT_S
    with ThreadPoolExecutor(clients) as pool:
        while (codes := list(pool.map(call, range(clients)))) != [200] * clients:
            if time.monotonic() > deadline:
                raise SystemExit(f"{url}: warm-up never answered all {clients} clients: {codes}")


def server_batches(server_url: str) -> tuple[float, float]:
    """(batches, requests batched) so far, from the server's /metrics."""
    import httpx

    from localdev.server_process import parse_metrics

    values = parse_metrics(httpx.get(f"{server_url}/metrics", timeout=10).text)
    return values.get("inferstack_batch_size_count", 0.0), values.get(
        "inferstack_batch_size_sum", 0.0
    )


def measure(
    routes: dict[str, str], body: bytes, clients: int, seconds: float, rounds: int
) -> dict[str, Point]:
    samples: dict[str, list[float]] = {route: [] for route in routes}
    errors = dict.fromkeys(routes, 0)
    wall = dict.fromkeys(routes, 0.0)
    names = list(routes)
    for index in range(rounds):
        order = names if index % 2 == 0 else names[::-1]
        for route in order:
            _say(f"  round {index + 1}/{rounds}: {route}, {clients} client(s), {seconds:g} s")
            latencies, failed, elapsed = drive(routes[route], body, clients, seconds)
            samples[route] += latencies
            errors[route] += failed
            wall[route] += elapsed
    points = {}
    for route in names:
        ordered = sorted(samples[route])
        points[route] = Point(
            route=route,
            model=GPU_MODEL if route == "gpu" else LAMBDA_MODEL,
            clients=clients,
            rounds=rounds,
            requests=len(ordered),
            errors=errors[route],
            seconds=wall[route],
            throughput_rps=len(ordered) / wall[route] if wall[route] else 0.0,
            p50_ms=statistics.median(ordered) * 1000 if ordered else float("nan"),
            p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
            if ordered
            else float("nan"),
        )
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,64")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    client_counts = [int(part) for part in args.clients.split(",")]
    os.chdir(REPO)

    from cli.prepare import prepare
    from localdev.deploy import engine
    from localdev.localstack import manager

    config = bench_config()
    _say("build step (models, function zip, layers; cached)")
    prepare(config, REPO, _say)
    localstack = manager.start(echo=_say)
    results: dict[str, Any] = {"points": [], "mean_batch": {}}
    try:
        _say(f"deploying {STACK} ({LAMBDA_MODEL} on Lambda, {GPU_MODEL} on the model server)")
        started = time.perf_counter()
        summary = engine.up(STACK, config=config, root=REPO)
        results["deploy_s"] = time.perf_counter() - started
        url = str(summary.outputs["url"]).rstrip("/")
        server_url = str(summary.outputs["localServers"][GPU_MODEL]["url"])
        routes = {
            "lambda": f"{url}/v2/models/{LAMBDA_MODEL}/infer",
            "gpu": f"{url}/v2/models/{GPU_MODEL}/infer",
        }
        body = request_body()
        for clients in client_counts:
            for route in routes.values():
                _say(f"warming {route} with {clients} concurrent request(s)")
                warm(route, body, clients)
            before = server_batches(server_url)
            points = measure(routes, body, clients, args.duration, args.rounds)
            after = server_batches(server_url)
            batches, batched = after[0] - before[0], after[1] - before[1]
            results["mean_batch"][str(clients)] = batched / batches if batches else None
            results["points"] += [asdict(point) for point in points.values()]
    finally:
        _say(f"down {STACK}")
        try:
            engine.down(STACK, root=REPO)
        finally:
            if not localstack.reused:
                manager.stop()
    report(results, args.duration)


def report(results: dict[str, Any], duration: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(
        title=f"API Gateway -> {GPU_MODEL} (model server) vs -> {LAMBDA_MODEL} (Lambda), "
        f"LocalStack, {duration:g} s rounds"
    )
    for column in ("route", "clients", "requests", "errors", "req/s", "p50 ms", "p99 ms", "batch"):
        table.add_column(column, justify="left" if column == "route" else "right")
    for point in results["points"]:
        mean_batch = results["mean_batch"].get(str(point["clients"]))
        table.add_row(
            f"{point['route']} ({point['model']})",
            str(point["clients"]),
            str(point["requests"]),
            str(point["errors"]),
            f"{point['throughput_rps']:.1f}",
            f"{point['p50_ms']:.1f}",
            f"{point['p99_ms']:.1f}",
            f"{mean_batch:.2f}" if point["route"] == "gpu" and mean_batch else "",
        )
    console.print(table)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "gpu_route",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "stack": {"config": f"stacks/local.py ({LAMBDA_MODEL}, {GPU_MODEL})", "name": STACK},
        **results,
    }
    OUT.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    console.print(f"wrote {OUT.relative_to(REPO)}")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
