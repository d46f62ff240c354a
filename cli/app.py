"""The `inferstack` command line: build, serve, predict, demo.

Every failure the user can cause prints one readable line and exits non-zero; tracebacks
are for bugs only. Heavy imports (torch, onnxruntime) happen inside the commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from cli.deploy import app as deploy_app
from cli.localstack import app as localstack_app
from model_runtime.errors import InferstackError

app = typer.Typer(
    name="inferstack",
    help="Declare, build, serve and deploy ML models on AWS Lambda (or LocalStack).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(localstack_app, name="localstack")
app.add_typer(deploy_app)
console = Console()
err_console = Console(stderr=True)

DEFAULT_MODELS_DIR = Path("build/models")
DEFAULT_SAMPLES_DIR = Path("build/samples")


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


@app.command()
def build(
    model: Annotated[
        str, typer.Argument(help="Built-in name (digits) or module:function.")
    ] = "digits",
    out: Annotated[
        Path, typer.Option(help="Directory for artifact directories.")
    ] = DEFAULT_MODELS_DIR,
    quantize: Annotated[bool, typer.Option(help="Also write a dynamic int8 artifact.")] = True,
    exporter: Annotated[str, typer.Option(help="torchscript or dynamo.")] = "torchscript",
    force: Annotated[bool, typer.Option(help="Rebuild even when up to date.")] = False,
) -> None:
    """Train/load a declared model, export it to ONNX with a parity check, and quantize it."""
    from cli.render import build_table
    from model_build.build import build_model

    if exporter not in ("torchscript", "dynamo"):
        raise UserError(f"--exporter has value {exporter!r}; allowed: torchscript, dynamo")
    results = build_model(
        model, out, quantize=quantize, exporter=exporter, force=force, console=console
    )
    console.print(build_table(f"inferstack build {model}", results))


@app.command()
def serve(
    model_dirs: Annotated[list[Path], typer.Argument(help="Artifact directories to serve.")],
    host: str = "127.0.0.1",
    port: int = 8080,
) -> None:
    """Serve artifacts over Open Inference Protocol v2 with the same app Lambda runs."""
    import uvicorn

    from model_runtime.app import create_app
    from model_runtime.engine import Engine

    engines = [Engine.load(directory) for directory in model_dirs]
    names = ", ".join(engine.name for engine in engines)
    err_console.print(f"serving {names} on http://{host}:{port}/v2")
    uvicorn.run(create_app(engines), host=host, port=port, log_level="warning")


@app.command()
def predict(
    input_file: Annotated[
        Path, typer.Option("--input", help="A .json (OIP request or {name: array}) or .npy file.")
    ],
    url: Annotated[
        str | None, typer.Option(help="Server base URL, e.g. http://127.0.0.1:8080.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model name on the server.")] = None,
    model_dir: Annotated[
        Path | None, typer.Option(help="Run a local artifact instead of a server.")
    ] = None,
    raw: Annotated[bool, typer.Option("--json", help="Print the raw JSON response.")] = False,
) -> None:
    """Send one input to a server (--url --model) or a local artifact (--model-dir)."""
    from cli.predict import predict_local, predict_remote

    if (url is None) == (model_dir is None):
        raise UserError("give either --url (with --model) or --model-dir")
    if url is not None:
        if not model:
            raise UserError("--model is required with --url")
        response = predict_remote(url, model, input_file)
    else:
        assert model_dir is not None
        response = predict_local(model_dir, input_file)
    if raw:
        console.print_json(data=response)
    else:
        from cli.render import response_table

        console.print(response_table(response))


@app.command()
def package(
    model_dir: Annotated[Path, typer.Argument(help="The artifact directory to package.")],
    runtime: Annotated[str, typer.Option(help="Lambda runtime, e.g. python3.12.")] = "python3.12",
    arch: Annotated[str, typer.Option(help="x86_64 or arm64.")] = "x86_64",
    delivery: Annotated[str, typer.Option(help="layer (under /opt) or s3 (to /tmp).")] = "layer",
    force: Annotated[bool, typer.Option(help="Rebuild even when cached.")] = False,
) -> None:
    """Build the function zip, runtime layer and model layer (or S3 objects), and check
    them against Lambda's size limits."""
    from layers.errors import PackagingError
    from layers.package import package as build_package

    if delivery not in ("layer", "s3"):
        raise UserError(f"--delivery has value {delivery!r}; allowed: layer, s3")
    with console.status(f"packaging {model_dir} for {runtime}/{arch}"):
        try:
            result = build_package(model_dir, runtime, arch, delivery, force=force)  # type: ignore[arg-type]
        except PackagingError as exc:
            raise UserError(str(exc)) from exc
    table = Table(title=f"Lambda package: {result.model.name} ({runtime}, {arch}, {delivery})")
    rows = result.budget.rows()
    for column in rows[0]:
        table.add_column(column, justify="right" if column in ("zipped", "unzipped") else "left")
    for row in rows:
        table.add_row(*row.values())
    console.print(table)
    console.print(f"MODEL_URI={result.model_uri}")
    for part in [result.function, *result.layers]:
        console.print(f"  {part.path}")


@app.command()
def demo(
    keep: Annotated[bool, typer.Option(help="Leave LocalStack and the stack running.")] = False,
) -> None:
    """The main job: build the models, deploy the local stack to LocalStack, and send real
    predictions through API Gateway to Lambda."""
    from cli.demo import run_demo

    run_demo(console, keep=keep)


def main() -> None:
    """Entry point: run the app, turning expected failures into one line and exit 1."""
    from pydantic import ValidationError

    from cli.predict import PredictError
    from model_runtime.errors import ConfigError

    try:
        app()
    except (UserError, PredictError, InferstackError, ConfigError, OSError) as exc:
        fail(str(exc))
    except ValidationError as exc:
        fail(str(exc.errors()[0]["msg"]))
    except json.JSONDecodeError as exc:
        fail(f"invalid JSON: {exc}")


def fail(message: str) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(1)


if __name__ == "__main__":
    main()
