"""`inferstack up|down|status|preview --stack NAME`: thin commands over cli/deployment.py, and how
their results are printed (the demo prints `up` the same way)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cli import deployment
from cli.console import console, note
from cli.deployment import DeployEngine, Deployment, Teardown

if TYPE_CHECKING:
    from localdev.deploy.engine import StackStatus, Summary
    from localdev.deploy.state import NotEmulated

StackOption = Annotated[str, typer.Option("--stack", "-s", help="stacks/<NAME>.py to deploy.")]
EngineOption = Annotated[
    DeployEngine,
    typer.Option(
        help="auto: Pulumi if its CLI is installed, else the in-process engine (LocalStack only)."
    ),
]


def up(
    stack: StackOption = "local",
    engine: EngineOption = DeployEngine.auto,
    build: Annotated[bool, typer.Option(help="Build missing models and layers first.")] = True,
) -> None:
    """Build what is missing, start LocalStack if the stack targets it, deploy, and print
    the API URL, function names, bucket and a sample curl."""
    print_deployment(deployment.up(stack, engine, build=build, echo=note))


def down(stack: StackOption = "local", engine: EngineOption = DeployEngine.auto) -> None:
    """Delete everything the stack's `up` created (safe to re-run)."""
    _print_teardown(deployment.down(stack, engine, echo=note))


def status(
    stack: StackOption = "local",
    engine: EngineOption = DeployEngine.auto,
    raw: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What is deployed, whether LocalStack is up, and whether each resource still exists."""
    current = deployment.status(stack, engine)
    if isinstance(current, dict):  # deployed by Pulumi: its outputs
        console.print_json(data=current) if raw else _print_outputs(current)
    elif raw:
        console.print_json(data=status_json(current))
    else:
        _print_status(current)


def print_deployment(done: Deployment) -> None:
    if done.summary is None:
        console.print(f"[bold]pulumi up[/] {done.stack}: done in {done.seconds:.1f} s")
    else:
        _print_summary(done.summary, done.seconds)
    _print_outputs(done.outputs, done.not_emulated)


def sample_curl(outputs: dict[str, Any], root: Path) -> str | None:
    url, functions = outputs.get("url"), outputs.get("functions") or {}
    if not isinstance(url, str) or not functions:
        return None
    model = sorted(functions)[0]
    command = ["curl", "-s"]
    keys = outputs.get("apiKeys") or {}
    if keys:
        command += ["-H", f"x-api-key: {next(iter(keys.values()))}"]
    sample = root / "build" / "samples" / f"{model.removesuffix('-int8')}.json"
    if sample.is_file():
        data = f"@{sample.relative_to(root)}" if sample.is_relative_to(root) else f"@{sample}"
        command += ["-H", "content-type: application/json", "-d", data]
        command.append(f"{url}/v2/models/{model}/infer")
    else:
        command.append(f"{url}/v2/models/{model}")
    return shlex.join(command)


def status_json(current: StackStatus) -> dict[str, Any]:
    return {
        "stack": current.stack,
        "endpoint": current.endpoint,
        "localstack_up": current.localstack_up,
        "deployed": current.deployed,
        "resources": len(current.resources),
        "missing": [f"{r.type} {r.name}" for r in current.missing],
        "not_emulated": [f"{n.type} {n.name}: {n.reason}" for n in current.not_emulated],
        "outputs": current.outputs,
    }


def preview(
    stack: StackOption = "local",
    engine: EngineOption = DeployEngine.auto,
    build: Annotated[bool, typer.Option(help="Build missing models and layers first.")] = True,
) -> None:
    """What `up` would create, update, replace or delete, and why; changes nothing."""
    summary = deployment.preview(stack, engine, build=build, echo=note)
    if summary is not None:  # else Pulumi printed its own preview
        print_preview(summary)


def print_preview(summary: Summary) -> None:
    from localdev.deploy.engine import short_type

    planned = [change for change in summary.changes if change.action != "same"]
    if not planned:
        console.print(f"[bold]preview[/] {summary.stack}: no changes")
        return
    counts = {action: 0 for action in ("create", "update", "replace", "delete", "retain")}
    for change in planned:
        counts[change.action] += 1
    listed = ", ".join(f"{count} to {action}" for action, count in counts.items() if count)
    console.print(f"[bold]preview[/] {summary.stack}: {listed}")
    table = Table()
    for column in ("action", "resource", "type", "why"):
        table.add_column(column)
    for change in planned:
        table.add_row(change.action, change.name, short_type(change.type), change.reason)
    console.print(table)


def _print_teardown(done: Teardown) -> None:
    if done.forgotten is not None:
        console.print(
            f"LocalStack is not running, so none of the stack's {done.forgotten} resources "
            "exist any more; cleared the deploy state"
        )
    elif done.summary is not None:
        _print_summary(done.summary, done.summary.seconds)
    else:
        console.print(f"[bold]pulumi destroy[/] {done.stack}: done")


def _print_summary(summary: Summary, seconds: float) -> None:
    counts = ", ".join(f"{count} {verb}" for verb, count in summary.counts.items() if count)
    verb = "changes" if summary.changed != 1 else "change"
    console.print(
        f"[bold]{summary.operation}[/] {summary.stack}: {summary.changed} {verb} "
        f"({counts or 'nothing deployed'}) in {seconds:.1f} s"
    )
    if summary.not_emulated:
        table = Table(title="declared, not emulated (not deployed to LocalStack)")
        for column in ("resource", "type", "why"):
            table.add_column(column)
        for item in summary.not_emulated:
            table.add_row(item.name, item.type, item.reason)
        console.print(table)


def _print_outputs(outputs: dict[str, Any], not_emulated: Sequence[NotEmulated] = ()) -> None:
    from layers.package import project_root

    rows = []
    if outputs.get("url"):
        rows.append(("API", str(outputs["url"])))
    for model, jobs in sorted((outputs.get("jobs") or {}).items()):
        rows.append((f"jobs {model}", str(jobs.get("jobsUrl"))))
        if jobs.get("batchPrefix"):
            rows.append((f"batches {model}", str(jobs["batchPrefix"])))
    for model, function in sorted((outputs.get("functions") or {}).items()):
        rows.append((f"function {model}", str(function)))
    if outputs.get("bucket"):
        rows.append(("bucket", str(outputs["bucket"])))
    # Declared in-cluster addresses; with no cluster, nothing answers there.
    declared_only = any(item.type.startswith("kubernetes:") for item in not_emulated)
    for name, value in sorted((outputs.get("gpuServices") or {}).items()):
        suffix = " (declared, not emulated)" if declared_only else ""
        rows.append((f"GPU service {name}", f"{value}{suffix}"))
    # What stands in for them on LocalStack: the model server as a local process.
    for name, server in sorted((outputs.get("localServers") or {}).items()):
        rows.append((f"local server {name}", f"{server.get('url')} (pid {server.get('pid')})"))
    width = max((len(label) for label, _ in rows), default=0)
    for label, value in rows:
        # soft_wrap: URLs stay whole (copyable) whatever the terminal width.
        console.print(f"  [bold]{label:<{width}}[/]  {value}", highlight=False, soft_wrap=True)
    curl = sample_curl(outputs, project_root())
    if curl:
        console.print("try:", highlight=False)
        console.print(f"  {curl}", highlight=False, soft_wrap=True)


def _print_status(current: StackStatus) -> None:
    from localdev.deploy.engine import short_type

    where = current.endpoint or "(unknown endpoint)"
    console.print(f"LocalStack at {where}: {'up' if current.localstack_up else 'not running'}")
    if not current.deployed:
        console.print(f"stack {current.stack}: not deployed")
        return
    missing = current.missing
    console.print(f"stack {current.stack}: {len(current.resources)} resources deployed", end="")
    if not current.localstack_up:
        console.print(" (cannot check: LocalStack is down; `inferstack up` recovers)")
    elif missing:
        console.print(
            f", [bold red]{len(missing)} missing[/] (LocalStack restarted?); "
            "`inferstack up` recreates them"
        )
    else:
        console.print(", all present")
    table = Table()
    for column in ("type", "count", "missing"):
        table.add_column(column)
    by_type: dict[str, list[bool | None]] = {}
    for resource in current.resources:
        by_type.setdefault(resource.type, []).append(resource.present)
    for type_, present in sorted(by_type.items()):
        gone = str(sum(1 for p in present if p is False))
        table.add_row(short_type(type_), str(len(present)), gone)
    console.print(table)
    for item in current.not_emulated:
        console.print(f"declared, not emulated: {item.type} {item.name} ({item.reason})")
    _print_outputs(current.outputs, current.not_emulated)
