"""Deploying the local stack to LocalStack, and serving through it: how long and how fast.

One run measures:
- build: `inferstack up`'s build step (models, function zip, layers) run first, on its
  own, so that the deploy figures below measure deploying; it is near zero when
  everything is built, and reported separately when it had to build.
- cold up: a LocalStack that is not running is started (its own process on its own port
  and data directory, so a LocalStack you have running is left alone), then the first
  deploy of the stack, in a fresh process as `inferstack up` runs it (imports, the
  cached build check, the Pulumi program under mocks, every resource created).
- no-change re-up: the same again, with nothing to change.
- warm latency p50/p99 of the same request for each model, through API Gateway ->
  Lambda (LocalStack, our process executor), next to the in-process handler: the very
  Mangum + app the function runs, called with an API Gateway proxy event.

The stack is stacks/local.py deployed under the name `bench` (state in
build/deploy/bench.json); it is taken down and the benchmark's LocalStack stopped by PID
at the end, also on failure. Targets: cold up <= 90 s including LocalStack start;
no-change re-up <= 5 s.

    .venv/bin/python -m benchmarks.deploy [--iterations 200] [--port 4577]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from layers.package import project_root

REPO = project_root()
OUT = REPO / "build" / "bench" / "deploy.json"
STACK = "bench"
# The served model -> the sample request `inferstack build` wrote for it.
MODELS = {"digits": "digits", "minilm-int8": "minilm"}
TARGETS_S = {"cold_up": 90.0, "reup": 5.0}


def bench_config(port: int) -> Any:
    from infra.stack_loader import load_stack
    from stacks.schema import LocalStackTarget

    local = load_stack("local")
    target = LocalStackTarget(endpoint=f"http://127.0.0.1:{port}", region=local.target.region)
    return local.model_copy(update={"target": target})


def child_up(port: int) -> None:
    """Runs in the measured process: what `inferstack up` does once LocalStack is up."""
    started = time.perf_counter()
    from cli.prepare import prepare
    from localdev.deploy import engine

    config = bench_config(port)
    imported = time.perf_counter()
    built = prepare(config, REPO, _say)
    prepared = time.perf_counter()
    summary = engine.up(STACK, config=config, root=REPO)
    done = time.perf_counter()
    report = {
        "import_s": imported - started,
        "build_check_s": prepared - imported,
        "deploy_s": done - prepared,
        "built": built,
        "changed": summary.changed,
        "counts": {verb: count for verb, count in summary.counts.items() if count},
        "resources": len(summary.changes),
        "outputs": summary.outputs,
    }
    print(json.dumps(report))


def run_up(port: int) -> dict[str, Any]:
    from benchmarks.timing import run_child_json

    command = [sys.executable, "-m", "benchmarks.deploy", "--child-up", "--port", str(port)]
    return run_child_json(command, dict(os.environ), REPO)


def build_step(config: Any) -> dict[str, Any]:
    from cli.prepare import prepare

    started = time.perf_counter()
    built = prepare(config, REPO, _say)
    return {"seconds": time.perf_counter() - started, "built": built}


def api_latency(url: str, model: str, body: bytes, iterations: int) -> dict[str, Any]:
    import httpx

    from benchmarks.timing import measure

    path = f"/v2/models/{model}/infer"
    headers = {"content-type": "application/json"}
    with httpx.Client(base_url=url, timeout=60.0) as http:

        def call() -> None:
            response = http.post(path, content=body, headers=headers)
            if response.status_code != 200:
                raise SystemExit(f"{model}: HTTP {response.status_code}: {response.text[:500]}")

        started = time.perf_counter()
        call()  # the function's cold start
        first_s = time.perf_counter() - started
        result = measure(call, iterations)
    return {**result, "first_request_s": first_s}


def handler_latency(model_dir: Path, model: str, body: bytes, iterations: int) -> dict[str, Any]:
    """The function's handler in this process (functions/handler.py's construction)."""
    from mangum import Mangum

    from benchmarks.timing import measure
    from localdev.lambda_runner import api_gateway_event
    from model_runtime.app import create_app
    from model_runtime.settings import RuntimeSettings

    settings = RuntimeSettings.from_env({"MODEL_DIR": str(model_dir)})
    app = create_app(settings.load_engines(), max_body_bytes=settings.max_body_bytes)
    handler = Mangum(app, lifespan="off")
    event = api_gateway_event(
        "POST", f"/v2/models/{model}/infer", json.loads(body), base64_body=False
    )

    def call() -> None:
        response = handler(event, None)  # type: ignore[arg-type]
        if response["statusCode"] != 200:
            raise SystemExit(f"{model} in-process: {response['statusCode']} {response['body']}")

    return measure(call, iterations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--port", type=int, default=4577, help="the benchmark's LocalStack")
    parser.add_argument("--child-up", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.chdir(REPO)  # `inferstack build` writes samples under ./build/samples
    if args.child_up:
        child_up(args.port)
        return

    from localdev.deploy import engine
    from localdev.localstack import manager

    config = bench_config(args.port)
    paths = manager.Paths(
        venv=manager.Paths.default().venv, data=REPO / "build" / "bench" / "localstack"
    )
    _say("build step (models, function zip, layers; cached)")
    build = build_step(config)
    # This LocalStack is the benchmark's own: one left by an interrupted run is stopped,
    # and the stack state it held (community LocalStack keeps nothing) dropped.
    manager.stop(paths)
    engine.forget(STACK, root=REPO)
    results: dict[str, Any] = {"build": build}
    try:
        _say(f"cold up: starting LocalStack on 127.0.0.1:{args.port}")
        started = time.perf_counter()
        localstack = manager.start(args.port, paths=paths)
        start_s = time.perf_counter() - started
        _say(f"LocalStack ready in {start_s:.1f} s (pid {localstack.pid}); first deploy")
        first = run_up(args.port)
        results["cold_up"] = {
            "localstack_start_s": start_s,
            **first,
            "seconds": start_s + first["wall_s"],
        }
        _say(f"first deploy: {first['wall_s']:.1f} s; no-change re-up")
        again = run_up(args.port)
        results["reup"] = {**again, "seconds": again["wall_s"]}
        if again["changed"]:
            raise SystemExit(f"the no-change re-up changed {again['changed']} resources")
        url = str(first["outputs"]["url"])
        results["latency"] = {}
        for model, sample in MODELS.items():
            body = (REPO / "build" / "samples" / f"{sample}.json").read_bytes()
            _say(f"{model}: {args.iterations} requests through API Gateway, then in-process")
            results["latency"][model] = {
                "api_gateway": api_latency(url, model, body, args.iterations),
                "in_process": handler_latency(
                    REPO / "build" / "models" / model, model, body, args.iterations
                ),
            }
    finally:
        if paths.pid_file.exists():
            _say(f"down {STACK}, then stopping the benchmark's LocalStack")
            try:
                engine.down(STACK, root=REPO)
            finally:
                manager.stop(paths)
    report(results, args.iterations)


def report(results: dict[str, Any], iterations: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    cold, reup, build = results["cold_up"], results["reup"], results["build"]
    deploy = Table(title=f"inferstack up, stack `local` as {STACK!r}, to LocalStack")
    for column in ("step", "seconds", "what", "target"):
        deploy.add_column(column, justify="right" if column == "seconds" else "left")
    built = ", ".join(build["built"]) or "nothing: all built already"
    deploy.add_row(
        "build (before, not in cold up)", f"{build['seconds']:.1f}", f"built {built}", ""
    )
    deploy.add_row(
        "cold up",
        f"{cold['seconds']:.1f}",
        f"LocalStack start {cold['localstack_start_s']:.1f} s + first deploy "
        f"{cold['wall_s']:.1f} s ({cold['resources']} resources created)",
        _verdict(cold["seconds"], TARGETS_S["cold_up"]),
    )
    deploy.add_row(
        "  first deploy, in its process",
        f"{cold['wall_s']:.1f}",
        f"imports {cold['import_s']:.1f} s, build check {cold['build_check_s']:.1f} s, "
        f"program + create {cold['deploy_s']:.1f} s",
        "",
    )
    deploy.add_row(
        "no-change re-up",
        f"{reup['seconds']:.1f}",
        f"{reup['changed']} changes; imports {reup['import_s']:.1f} s, build check "
        f"{reup['build_check_s']:.1f} s, program + diff {reup['deploy_s']:.1f} s",
        _verdict(reup["seconds"], TARGETS_S["reup"]),
    )
    console.print(deploy)

    latency = Table(title=f"warm latency, same request, {iterations} calls (ms)")
    for column in ("model", "path", "p50", "p99", "mean", "first call"):
        latency.add_column(column, justify="left" if column in ("model", "path") else "right")
    for model, paths in results["latency"].items():
        api, local = paths["api_gateway"], paths["in_process"]
        latency.add_row(
            model,
            "API Gateway -> Lambda",
            f"{api['p50_ms']:.1f}",
            f"{api['p99_ms']:.1f}",
            f"{api['mean_ms']:.1f}",
            f"{api['first_request_s'] * 1000:.0f} (cold start)",
        )
        latency.add_row(
            "",
            "in-process handler",
            f"{local['p50_ms']:.1f}",
            f"{local['p99_ms']:.1f}",
            f"{local['mean_ms']:.1f}",
            "",
        )
    console.print(latency)

    OUT.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "deploy",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "stack": {"config": "stacks/local.py", "name": STACK},
        "targets_s": TARGETS_S,
        **results,
    }
    OUT.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    console.print(f"wrote {OUT.relative_to(REPO)}")


def _verdict(seconds: float, target: float) -> str:
    return f"<= {target:.0f} s " + ("met" if seconds <= target else "MISSED")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
