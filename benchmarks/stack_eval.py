"""Time to evaluate each stack's Pulumi program under Pulumi's mock runtime, cold.

Each run is a fresh interpreter (no warm imports, no cached modules): spawn -> import
pulumi/pulumi_aws/the program -> run `define_stack` under `pulumi.runtime.set_mocks`
-> exit. Reported per stack: the median over `--runs` of the whole process wall time,
and of its two phases as the child measured them. Target: prod < 3 s on this machine.

The program reads the model artifacts and the Lambda packages from the project tree
(this checkout, or `--root DIR`), so the figure is for what `pulumi up` evaluates. What
the stacks need and is missing is built first by `inferstack up`'s own build step
(models, function zips, layers; cached: on a built tree it costs a few file hashes), and
reported apart from the timings.

    .venv/bin/python -m benchmarks.stack_eval [--runs 3] [--root DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.timing import run_child_json
from layers.package import project_root

REPO = project_root()
OUT = REPO / "build" / "bench" / "stack_eval.json"
STACKS = ("local", "dev", "prod")
TARGET_S = {"prod": 3.0}


def child(stack: str, root: Path) -> None:
    """Runs in the measured process: import, evaluate, report JSON on stdout."""
    start = time.perf_counter()
    from infra.evaluate import evaluate
    from infra.program import define_stack
    from infra.stack_loader import load_stack

    imported = time.perf_counter()
    config = load_stack(stack)
    evaluation = evaluate(lambda: define_stack(config, stack, root), stack)
    done = time.perf_counter()
    report = {
        "import_s": imported - start,
        "evaluate_s": done - imported,
        "resources": len(evaluation.resources),
        "by_type": dict(sorted(Counter(r.type for r in evaluation.resources).items())),
    }
    print(json.dumps(report))


def run_once(stack: str, root: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.stack_eval", "--child", stack, "--root", str(root)]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return run_child_json(command, env, REPO)


def build_missing(root: Path) -> dict[str, Any]:
    """What the stacks deploy and `root` lacks, built as `inferstack up` builds it."""
    from cli.prepare import prepare
    from infra.stack_loader import load_stack

    started = time.perf_counter()
    built = [part for stack in STACKS for part in prepare(load_stack(stack), root, _say)]
    return {"seconds": time.perf_counter() - started, "built": built}


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--root", type=Path, default=REPO, help="project tree to evaluate")
    parser.add_argument("--child", choices=STACKS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.root)
        return

    root = args.root.resolve()
    build = build_missing(root)
    results = {}
    for stack in STACKS:
        runs = [run_once(stack, root) for _ in range(args.runs)]
        results[stack] = {
            "resources": runs[0]["resources"],
            "by_type": runs[0]["by_type"],
            "wall_s": statistics.median(r["wall_s"] for r in runs),
            "import_s": statistics.median(r["import_s"] for r in runs),
            "evaluate_s": statistics.median(r["evaluate_s"] for r in runs),
            "runs": [round(r["wall_s"], 3) for r in runs],
            "target_s": TARGET_S.get(stack),
        }

    table = Table(title=f"Pulumi program under mocks, cold process (median of {args.runs})")
    for column in ("stack", "resources", "imports s", "program s", "process s", "target"):
        table.add_column(column, justify="left" if column == "stack" else "right")
    for stack, result in results.items():
        target = result["target_s"]
        verdict = (
            ""
            if target is None
            else (f"< {target:.0f} s " + ("met" if result["wall_s"] < target else "MISSED"))
        )
        table.add_row(
            stack,
            str(result["resources"]),
            f"{result['import_s']:.2f}",
            f"{result['evaluate_s']:.2f}",
            f"{result['wall_s']:.2f}",
            verdict,
        )
    Console().print(table)

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "benchmark": "stack_eval",
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                },
                "root": str(root),
                "build": build,
                "stacks": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
