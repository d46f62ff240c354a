"""Event-driven inference on LocalStack: jobs per second end to end, batch rows per second.

One run deploys stacks/local.py's `digits` (its jobs and batches as declared there) under
the stack name `bench-ev` (state in build/deploy/bench-ev.json), then measures:
- jobs: N single-image jobs submitted over HTTP from C concurrent clients, through API
  Gateway -> Lambda (submit) -> SQS -> event source mapping -> Lambda (worker) -> S3;
  jobs/s is N over the time from the first submit to the last job finished, beside the
  submit rate alone and each job's latency (finished_at - submitted_at, from its record);
- batch: a JSONL file of M lines (OIP requests and `{"image": ...}` objects in turn) put
  under the batch prefix; rows/s is M over the time from the put to its summary, beside
  the summary's own seconds (from the first invocation to the summary written).
It prints a table, writes build/bench/events.json and takes the stack down, also on
failure. LocalStack is started if it is not running (and then stopped at the end).

    .venv/bin/python -m benchmarks.events [--jobs 500] [--clients 8] [--lines 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from layers.package import project_root

REPO = project_root()
OUT = REPO / "build" / "bench" / "events.json"
STACK = "bench-ev"
MODEL = "digits"


def bench_config() -> Any:
    from infra.stack_loader import load_stack

    local = load_stack("local")
    models = [model for model in local.models if model.name == MODEL]
    if not models or models[0].async_ is None or models[0].batch is None:
        raise SystemExit(f"stacks/local.py must declare {MODEL!r} with async and batch sections")
    return local.model_copy(update={"models": models})


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def images() -> Any:
    from model_build.reference_models.digits import load_split

    _, held_out, _, _ = load_split()
    return held_out


def request_body(image: Any) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": "image",
                "shape": list(image.shape),
                "datatype": "FP32",
                "data": image.ravel().tolist(),
            }
        ]
    }


def bench_jobs(url: str, s3: Any, bucket: str, count: int, clients: int) -> dict[str, Any]:
    import httpx

    pool_images = images()
    bodies = [request_body(pool_images[index % len(pool_images)][None]) for index in range(count)]

    def submit_slice(part: list[dict[str, Any]]) -> list[str]:
        with httpx.Client(base_url=url, timeout=60.0) as http:
            ids = []
            for body in part:
                response = http.post(f"/v2/models/{MODEL}/jobs", json=body)
                if response.status_code != 202:
                    raise SystemExit(f"submit: HTTP {response.status_code}: {response.text[:500]}")
                ids.append(response.json()["id"])
            return ids

    _say(f"jobs: submitting {count} from {clients} clients")
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        parts = pool.map(submit_slice, [bodies[index::clients] for index in range(clients)])
        ids = [job_id for part in parts for job_id in part]
    submitted_s = time.perf_counter() - started
    _say(f"jobs: submitted in {submitted_s:.1f} s; waiting for them")
    records = wait_jobs(s3, bucket, ids, timeout_s=600)
    done_s = time.perf_counter() - started
    failed = [record for record in records if record["status"] != "succeeded"]
    if failed:
        raise SystemExit(f"{len(failed)} jobs failed, e.g. {failed[0]}")
    latencies = sorted(_seconds(r["submitted_at"], r["finished_at"]) for r in records)
    return {
        "jobs": count,
        "clients": clients,
        "submit_s": submitted_s,
        "submit_per_s": count / submitted_s,
        "seconds": done_s,
        "jobs_per_s": count / done_s,
        "latency_p50_s": statistics.median(latencies),
        "latency_p99_s": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "max_attempts": max(record["attempts"] for record in records),
    }


def wait_jobs(s3: Any, bucket: str, ids: list[str], timeout_s: float) -> list[dict[str, Any]]:
    """Each job's record once it is succeeded or failed, read from the bucket."""
    done: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while len(done) < len(ids):
        for job_id in ids:
            if job_id in done:
                continue
            try:
                body = s3.get_object(Bucket=bucket, Key=f"jobs/{MODEL}/{job_id}/status.json")
            except s3.exceptions.NoSuchKey:
                continue
            record = json.loads(body["Body"].read())
            if record["status"] in ("succeeded", "failed"):
                done[job_id] = record
        if len(done) < len(ids):
            if time.monotonic() > deadline:
                raise SystemExit(f"{len(ids) - len(done)} jobs not done after {timeout_s:.0f} s")
            time.sleep(0.5)
    return [done[job_id] for job_id in ids]


def bench_batch(s3: Any, bucket: str, batch_prefix: str, lines: int) -> dict[str, Any]:
    pool_images = images()
    rows = []
    for index in range(lines):
        image = pool_images[index % len(pool_images)][None]
        body = request_body(image) if index % 2 == 0 else {"image": image.tolist()}
        rows.append(json.dumps(body))
    data = ("\n".join(rows) + "\n").encode()
    name = f"bench-{int(time.time())}"
    summary_key = f"{batch_prefix}/out/{name}.summary.json"
    _say(f"batch: {lines} lines ({len(data) / 1e6:.1f} MB) under {batch_prefix}/in/")
    started = time.perf_counter()
    s3.put_object(Bucket=bucket, Key=f"{batch_prefix}/in/{name}.jsonl", Body=data)
    deadline = time.monotonic() + 900
    while True:
        try:
            summary = json.loads(s3.get_object(Bucket=bucket, Key=summary_key)["Body"].read())
            break
        except s3.exceptions.NoSuchKey:
            if time.monotonic() > deadline:
                raise SystemExit(f"no {summary_key} after 900 s") from None
            time.sleep(0.5)
    seconds = time.perf_counter() - started
    if summary["succeeded"] != lines:
        raise SystemExit(f"batch: {summary['failed']} of {lines} lines failed: {summary}")
    return {
        "lines": lines,
        "megabytes": len(data) / 1e6,
        "chunks": summary["chunks"],
        "seconds": seconds,
        "rows_per_s": lines / seconds,
        "summary_seconds": summary["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    # More clients start more environments at once, each counting its start inside the
    # function's timeout on LocalStack; on 2 cores 8 keeps them inside stacks/local.py's 10 s.
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--lines", type=int, default=10_000)
    args = parser.parse_args()
    os.chdir(REPO)

    from cli.prepare import prepare
    from localdev.deploy import engine
    from localdev.localstack import manager

    config = bench_config()
    _say("build step (models, function zip, layers; cached)")
    prepare(config, REPO, _say)
    localstack = manager.start(echo=_say)
    results: dict[str, Any] = {}
    try:
        _say(f"deploying {STACK} (digits with jobs and batches)")
        started = time.perf_counter()
        summary = engine.up(STACK, config=config, root=REPO)
        results["deploy_s"] = time.perf_counter() - started
        outputs = summary.outputs
        jobs = outputs["jobs"][MODEL]
        bucket = str(outputs["jobsBucket"])
        batch_prefix = str(jobs["batchPrefix"]).removeprefix(f"s3://{bucket}/").removesuffix("/in/")
        s3 = s3_client(localstack.endpoint)
        model = config.models[0]
        results["config"] = {
            "batch_size": model.async_.batch_size,
            "max_batching_window_s": model.async_.max_batching_window_s,
            "chunk_lines": model.batch.chunk_lines,
            "timeout_s": model.lambda_.timeout_s,
        }
        results["jobs"] = bench_jobs(str(outputs["url"]), s3, bucket, args.jobs, args.clients)
        results["batch"] = bench_batch(s3, bucket, batch_prefix, args.lines)
    finally:
        _say(f"down {STACK}")
        try:
            engine.down(STACK, root=REPO)
        finally:
            if not localstack.reused:
                manager.stop()
    report(results)


def report(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    jobs, batch, config = results["jobs"], results["batch"], results["config"]
    table = Table(title=f"event-driven inference, {MODEL} on LocalStack (stack {STACK!r})")
    for column in ("measure", "rate", "seconds", "what"):
        table.add_column(column, justify="left" if column in ("measure", "what") else "right")
    table.add_row(
        "jobs end to end",
        f"{jobs['jobs_per_s']:.1f} jobs/s",
        f"{jobs['seconds']:.1f}",
        f"{jobs['jobs']} jobs, {jobs['clients']} clients, first submit to last result; "
        f"queue batch {config['batch_size']}",
    )
    table.add_row(
        "  submit only",
        f"{jobs['submit_per_s']:.1f} jobs/s",
        f"{jobs['submit_s']:.1f}",
        "POST .../jobs -> 202",
    )
    table.add_row(
        "  job latency",
        "",
        f"{jobs['latency_p50_s']:.2f} / {jobs['latency_p99_s']:.2f}",
        "p50 / p99, submitted_at to finished_at",
    )
    table.add_row(
        "batch",
        f"{batch['rows_per_s']:.0f} rows/s",
        f"{batch['seconds']:.1f}",
        f"{batch['lines']} lines ({batch['megabytes']:.1f} MB) in {batch['chunks']} chunks of "
        f"{config['chunk_lines']}, put to summary (summary says {batch['summary_seconds']:.1f} s)",
    )
    console.print(table)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "events",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "stack": {"config": "stacks/local.py (digits only)", "name": STACK},
        **results,
    }
    OUT.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    console.print(f"wrote {OUT.relative_to(REPO)}")


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
