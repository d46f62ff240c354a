"""`inferstack up|down|status --stack NAME`.

With the Pulumi CLI on PATH these drive real Pulumi (Automation API, local backend under
build/pulumi/). Without it, the in-process engine deploys LocalStack stacks; an AWS stack
stops with a message to install the Pulumi CLI. `--engine` picks one explicitly.

Mounted at the top level of the main CLI with ``app.add_typer(deploy_app)`` (no name).
"""

from __future__ import annotations

import shlex
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from infra import automation
from localdev.deploy.engine import ROOT, StackStatus, Summary, short_type
from localdev.deploy.state import NotEmulated
from localdev.errors import DeployError

app = typer.Typer(
    help="Deploy stacks: real Pulumi where its CLI is installed, else LocalStack in-process.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

StackOption = Annotated[str, typer.Option("--stack", "-s", help="stacks/<NAME>.py to deploy.")]


class Engine(StrEnum):
    auto = "auto"
    pulumi = "pulumi"
    local = "local"


EngineOption = Annotated[
    Engine,
    typer.Option(
        help="auto: Pulumi if its CLI is installed, else the in-process engine (LocalStack only)."
    ),
]


@app.command()
def up(
    stack: StackOption = "local",
    engine: EngineOption = Engine.auto,
    build: Annotated[bool, typer.Option(help="Build missing models and layers first.")] = True,
) -> dict[str, Any]:
    """Build what is missing, start LocalStack if the stack targets it, deploy, and print
    the API URL, function names, bucket and a sample curl."""
    from cli.prepare import prepare

    started = time.monotonic()
    with _errors():
        config = _config(stack)
        use_pulumi = _use_pulumi(engine, config)
        if build:
            prepare(config, ROOT, _note, err_console)
        endpoint = _ensure_localstack(config)
        not_emulated: Sequence[NotEmulated] = ()
        if use_pulumi:
            outputs = automation.up(stack, ROOT, _note)
            if endpoint is not None and isinstance(outputs.get("url"), str):
                outputs["url"] = localstack_url(outputs["url"], endpoint)
            console.print(f"[bold]pulumi up[/] {stack}: done in {time.monotonic() - started:.1f} s")
        else:
            from localdev.deploy import engine as local_engine

            summary = local_engine.up(stack, config=config, root=ROOT, echo=_note)
            _print_summary(summary, time.monotonic() - started)
            outputs = summary.outputs
            not_emulated = summary.not_emulated
        _print_outputs(outputs, not_emulated)
    return outputs


@app.command()
def down(stack: StackOption = "local", engine: EngineOption = Engine.auto) -> None:
    """Delete everything the stack's `up` created (safe to re-run)."""
    with _errors():
        config = _config(stack)
        if _use_pulumi(engine, config):
            automation.down(stack, ROOT, _note)
            console.print(f"[bold]pulumi destroy[/] {stack}: done")
            return
        from localdev.deploy import engine as local_engine
        from localdev.localstack import manager

        endpoint = local_engine.localstack_endpoint(config)
        if _is_managed(endpoint) and not manager.status().running:
            # LocalStack community keeps nothing across restarts: what the state file
            # lists died with the process that held it.
            forgotten = local_engine.forget(stack, root=ROOT)
            console.print(
                f"LocalStack is not running, so none of the stack's {forgotten} resources "
                "exist any more; cleared the deploy state"
            )
            return
        summary = local_engine.down(stack, root=ROOT, echo=_note)
        _print_summary(summary, summary.seconds)


@app.command()
def status(
    stack: StackOption = "local",
    engine: EngineOption = Engine.auto,
    raw: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What is deployed, whether LocalStack is up, and whether each resource still exists."""
    with _errors():
        config = _config(stack)
        if _use_pulumi(engine, config):
            outputs = automation.outputs(stack, ROOT)
            console.print_json(data=outputs) if raw else _print_outputs(outputs)
            return
        from localdev.deploy import engine as local_engine

        current = local_engine.status(stack, root=ROOT)
        if raw:
            console.print_json(data=status_json(current))
        else:
            _print_status(current)


def localstack_url(url: str, endpoint: str) -> str:
    """https://<api>.execute-api.<region>.amazonaws.com/<stage> -> the same stage's URL on
    LocalStack (real Pulumi computes the AWS hostname, which resolves nowhere locally)."""
    parsed = urllib.parse.urlparse(url)
    host = parsed.hostname or ""
    if ".execute-api." not in host:
        return url
    api = host.split(".", 1)[0]
    stage = parsed.path.strip("/").split("/", 1)[0]
    return f"{endpoint.rstrip('/')}/restapis/{api}/{stage}/_user_request_"


def sample_curl(outputs: dict[str, Any], root: Path = ROOT) -> str | None:
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


def _config(stack: str) -> Any:
    from infra.stack_loader import load_stack

    return load_stack(stack)


def _use_pulumi(engine: Engine, config: Any) -> bool:
    from stacks.schema import LocalStackTarget

    if engine is Engine.pulumi or (engine is Engine.auto and automation.available()):
        if not automation.available():
            raise DeployError(
                "--engine pulumi needs the Pulumi CLI (https://www.pulumi.com/docs/install/)"
            )
        return True
    if not isinstance(config.target, LocalStackTarget):
        raise DeployError(
            f"this stack deploys to AWS ({config.target.region}), which needs the Pulumi CLI: "
            "install it (https://www.pulumi.com/docs/install/) and run this again. Without it, "
            "inferstack deploys only LocalStack stacks (e.g. --stack local)"
        )
    return False


def _is_managed(endpoint: str) -> bool:
    """Whether `endpoint` is where `inferstack localstack start` runs LocalStack."""
    from localdev.localstack import manager

    parsed = urllib.parse.urlparse(endpoint)
    return (parsed.hostname, parsed.port) == (manager.DEFAULT_HOST, manager.DEFAULT_PORT)


def _ensure_localstack(config: Any) -> str | None:
    """Start LocalStack for a LocalStack stack (or reuse the running one)."""
    from localdev.deploy.aws import reachable
    from localdev.deploy.engine import localstack_endpoint
    from localdev.localstack import manager
    from stacks.schema import LocalStackTarget

    if not isinstance(config.target, LocalStackTarget):
        return None
    endpoint = localstack_endpoint(config)
    if _is_managed(endpoint):
        current = manager.start(echo=_note)
        if not current.reused:
            _note(f"LocalStack started (pid {current.pid})")
    elif not reachable(endpoint):
        raise DeployError(f"LocalStack is not answering at {endpoint}")
    return endpoint


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
    rows = []
    if outputs.get("url"):
        rows.append(("API", str(outputs["url"])))
    for model, function in sorted((outputs.get("functions") or {}).items()):
        rows.append((f"function {model}", str(function)))
    if outputs.get("bucket"):
        rows.append(("bucket", str(outputs["bucket"])))
    # Declared in-cluster addresses; with no cluster, nothing answers there.
    declared_only = any(item.type.startswith("kubernetes:") for item in not_emulated)
    for name, value in sorted((outputs.get("gpuServices") or {}).items()):
        note = " (declared, not emulated)" if declared_only else ""
        rows.append((f"GPU service {name}", f"{value}{note}"))
    width = max((len(label) for label, _ in rows), default=0)
    for label, value in rows:
        # soft_wrap: URLs stay whole (copyable) whatever the terminal width.
        console.print(f"  [bold]{label:<{width}}[/]  {value}", highlight=False, soft_wrap=True)
    curl = sample_curl(outputs)
    if curl:
        console.print("try:", highlight=False)
        console.print(f"  {curl}", highlight=False, soft_wrap=True)


def _print_status(current: StackStatus) -> None:
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


def _note(message: str) -> None:
    err_console.print(message, style="dim", highlight=False, soft_wrap=True)


@contextmanager
def _errors() -> Iterator[None]:
    """Expected failures print one line and exit 1; tracebacks are for bugs."""
    from pulumi.automation.errors import CommandError

    from infra.errors import InfraError
    from layers.errors import PackagingError
    from localdev.errors import LocalStackError
    from model_runtime.errors import InferstackError

    try:
        yield
    except (
        DeployError,
        InfraError,
        LocalStackError,
        PackagingError,
        InferstackError,
        CommandError,
    ) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
