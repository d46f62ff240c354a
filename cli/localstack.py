"""`inferstack localstack install|start|stop|status`: a typer group the app mounts as
`localstack`."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.console import console, echo
from localdev.localstack import manager

app = typer.Typer(
    name="localstack",
    help="LocalStack community in host mode (no Docker): install, start, stop, status.",
    no_args_is_help=True,
)


@app.command()
def install(
    force: Annotated[bool, typer.Option(help="Reinstall even when up to date.")] = False,
) -> None:
    """Install LocalStack and our Lambda executor into .localstack-venv/ (cached)."""
    result = manager.install(force=force, echo=echo)
    what = ", ".join(result.steps) if result.changed else "nothing to do (up to date)"
    console.print(f"installed: {what} in {result.seconds:.1f} s")


@app.command()
def start(
    port: Annotated[int, typer.Option(help="Gateway port.")] = manager.DEFAULT_PORT,
    host: Annotated[str, typer.Option(help="Gateway address.")] = manager.DEFAULT_HOST,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for health.")] = 120.0,
) -> None:
    """Start LocalStack (or reuse the running one) and wait until it is healthy."""
    status = manager.start(port, host, timeout_s=timeout, echo=echo)
    verb = "already running" if status.reused else "started"
    console.print(f"LocalStack {verb}: {status.endpoint} (pid {status.pid})", soft_wrap=True)


@app.command()
def stop() -> None:
    """Stop our LocalStack by its PID, with every Lambda environment it started."""
    was_running = manager.stop()
    console.print("LocalStack stopped" if was_running else "LocalStack was not running")


@app.command()
def status(
    raw: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Whether our LocalStack is running and healthy. Exit status 1 when it is not running."""
    current = manager.status()
    if raw:
        console.print_json(
            data={
                "running": current.running,
                "healthy": current.healthy,
                "pid": current.pid,
                "endpoint": current.endpoint,
                "version": current.version,
                "log": str(current.log_file),
            }
        )
    elif current.running:
        health = "healthy" if current.healthy else "not answering health checks"
        console.print(
            f"LocalStack running: {current.endpoint} (pid {current.pid}, {health}, "
            f"version {current.version or 'unknown'})"
        )
    else:
        console.print("LocalStack is not running")
    if not current.running:
        raise typer.Exit(1)
