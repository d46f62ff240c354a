"""The `inferstack` command line: every command on one typer app.

Every failure the user can cause prints one readable line and exits non-zero (cli/errors.py);
tracebacks are for bugs only. Heavy imports (torch, onnxruntime, boto3, pulumi) happen
inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, get_args

import typer
from typer.core import TyperGroup

from cli import batch, cost, deploy, jobs, localstack, logs, metrics, versions
from cli.console import console, err_console, note, spinner
from cli.errors import UserError, describe, expected_errors, fail
from cli.options import one_of
from layers.package import DELIVERIES, Delivery
from layers.targets import ARCHITECTURES, DEFAULT_ARCH, DEFAULT_RUNTIME
from model_build.export import Exporter
from model_build.reference_models.hf import TASKS, Task

DEFAULT_MODELS_DIR = Path("build/models")


class Commands(TyperGroup):
    """The app's group: an expected error in any command (or a bad choice option) becomes
    `fail()`'s one line, under the `inferstack` script and typer's CliRunner alike."""

    def invoke(self, ctx: Any) -> Any:  # a click Context (typer's own copy of click)
        try:
            return super().invoke(ctx)
        except expected_errors() as exc:
            fail(describe(exc))


app = typer.Typer(
    name="inferstack",
    cls=Commands,
    help="Declare, build, serve and deploy ML models on AWS Lambda (or LocalStack).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.command()
def build(
    model: Annotated[
        str,
        typer.Argument(
            help="Built-in name (digits), module:function, or hf:PATH (a local Hugging Face"
            " directory, with --task)."
        ),
    ] = "digits",
    out: Annotated[
        Path, typer.Option(help="Directory for artifact directories.")
    ] = DEFAULT_MODELS_DIR,
    quantize: Annotated[bool, typer.Option(help="Also write a dynamic int8 artifact.")] = True,
    exporter: Annotated[
        Exporter,
        typer.Option(parser=one_of("--exporter", get_args(Exporter)), help="The ONNX exporter."),
    ] = "torchscript",
    force: Annotated[bool, typer.Option(help="Rebuild even when up to date.")] = False,
    task: Annotated[
        Task | None,
        typer.Option(parser=one_of("--task", TASKS), help="What an hf: model does."),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="The model's name (hf:; default: the directory's).")
    ] = None,
) -> None:
    """Train/load a declared model, export it to ONNX with a parity check, and quantize it."""
    from cli.render import build_table, exporter_log_note
    from model_build.build import build_model

    with spinner() as progress:
        report = build_model(
            model,
            out,
            quantize=quantize,
            exporter=exporter,
            force=force,
            progress=progress,
            task=task,
            name=name,
        )
    console.print(build_table(f"inferstack build {model}", report.artifacts))
    if report.log is not None:
        note(exporter_log_note(report.log))


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

    if url is not None and model_dir is None:
        if not model:
            raise UserError("--model is required with --url")
        response = predict_remote(url, model, input_file)
    elif model_dir is not None and url is None:
        response = predict_local(model_dir, input_file)
    else:
        raise UserError("give either --url (with --model) or --model-dir")
    if raw:
        console.print_json(data=response)
    else:
        from cli.render import response_table

        console.print(response_table(response))


@app.command()
def package(
    model_dir: Annotated[Path, typer.Argument(help="The artifact directory to package.")],
    runtime: Annotated[
        str, typer.Option(help="Lambda runtime, e.g. python3.12.")
    ] = DEFAULT_RUNTIME,
    arch: Annotated[
        str, typer.Option(parser=one_of("--arch", ARCHITECTURES), help="x86_64 or arm64.")
    ] = DEFAULT_ARCH,
    delivery: Annotated[
        Delivery,
        typer.Option(
            parser=one_of("--delivery", DELIVERIES), help="layer (under /opt) or s3 (to /tmp)."
        ),
    ] = "layer",
    force: Annotated[bool, typer.Option(help="Rebuild even when cached.")] = False,
) -> None:
    """Build the function zip, runtime layer and model layer (or S3 objects), and check
    them against Lambda's size limits."""
    from cli.render import package_table
    from layers.package import package as build_package

    with console.status(f"packaging {model_dir} for {runtime}/{arch}"):
        result = build_package(model_dir, runtime, arch, delivery, force=force)
    console.print(package_table(result, delivery))
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

    run_demo(keep=keep)


for command in (deploy.up, deploy.down, deploy.status, deploy.preview):
    app.command()(command)
app.command()(cost.cost)
app.command()(logs.logs)
app.command()(metrics.metrics)
app.command()(versions.versions)
app.command()(versions.rollout)
app.command()(versions.compare)
app.command()(versions.promote)
app.command()(versions.rollback)
app.add_typer(localstack.app, name="localstack")
app.add_typer(jobs.app, name="jobs")
app.add_typer(batch.app, name="batch")


def main() -> None:
    """The `inferstack` script."""
    app()


if __name__ == "__main__":
    main()
