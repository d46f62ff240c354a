"""`inferstack demo`: the README's main job, end to end on this machine."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from infra.commands.build import build_model, sample_path
from infra.commands.local_server import local_server
from infra.commands.predict import predict_remote
from infra.commands.render import build_table, response_table

MODEL = "digits"


def run_demo(console: Console, *, models_dir: str = "build/models", port: int = 0) -> None:
    """Build the digits model (cached), serve it with the app Lambda runs, and send one
    held-out handwritten digit through HTTP."""
    results = build_model(
        MODEL, Path(models_dir), quantize=True, exporter="torchscript", force=False, console=console
    )
    fp32 = next(result for result in results if result.manifest.quantization is None)
    accuracy = fp32.manifest.evaluation.accuracy if fp32.manifest.evaluation else float("nan")
    console.print(build_table(f"model {MODEL!r}: held-out accuracy {accuracy:.2%}", results))
    with (
        console.status("starting the model server on 127.0.0.1"),
        local_server([fp32.directory]) as url,
    ):
        console.print(f"server ready at {url}; POST {url}/v2/models/{MODEL}/infer")
        response = predict_remote(url, MODEL, sample_path(MODEL))
    console.print(response_table(response))
    outputs = {output["name"]: output for output in response["outputs"]}
    label = outputs["label"]["data"][0]
    probability = outputs["probabilities"]["data"][label]
    expected = response.get("parameters", {}).get("expected_label")
    console.print(
        Panel(
            f"predicted digit [bold]{label}[/] with probability {probability:.4f}"
            f" (true label of this held-out image: {expected})",
            title="prediction over HTTP (Open Inference Protocol v2)",
        )
    )
