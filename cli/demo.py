"""`inferstack demo`: the README's main job, end to end on this machine.

Builds the digits and MiniLM models, starts LocalStack, deploys the `local` stack
(`inferstack up --stack local`), and sends real requests through LocalStack's API
Gateway to the Lambda functions, then one digits job through the queue.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from rich.panel import Panel

from cli import deployment
from cli.console import console, note
from cli.deploy import print_deployment
from cli.jobs import jobs_of, wait_for_job
from cli.predict import infer_remote, predict_remote, remote_request
from cli.render import response_table
from model_build.build import sample_path

STACK = "local"
SENTENCES = [
    "A man is playing a guitar on stage.",
    "Someone performs music with a string instrument.",
    "The central bank raised interest rates again.",
]


def run_demo(*, keep: bool) -> None:
    """Deploy the local stack and print one digit prediction and MiniLM similarities
    served by Lambda behind API Gateway, a digits job, and the digit again from the model
    server that stands in for the GPU endpoint. LocalStack is stopped at the end (by PID)
    unless it was already running or `keep` is set."""
    from localdev.localstack import manager

    was_running = manager.status().running
    try:
        deployed = deployment.up(STACK, build=True, echo=note)
        print_deployment(deployed)
        url = deployed.outputs["url"]
        functions = deployed.outputs.get("functions") or {}
        console.rule("predictions through API Gateway → Lambda (LocalStack)")
        _digit(url, "digits")
        text_model = next((name for name in sorted(functions) if name.startswith("minilm")), None)
        if text_model is None:
            console.print("the local stack serves no MiniLM model; skipped the text demo")
        else:
            _similarities(url, text_model)
        _digit_job(deployed.outputs)
        servers = deployed.outputs.get("localServers") or {}
        for model in sorted(servers):
            console.rule(
                f"through API Gateway → the model server standing in for {model}'s GPU endpoint"
                f" (pid {servers[model]['pid']})"
            )
            _digit(url, model)
    finally:
        if keep or was_running:
            console.print("LocalStack keeps running; stop it with `inferstack localstack stop`")
        else:
            manager.stop()
            # The stack died with LocalStack; its model servers run outside it: stop them.
            deployment.down(STACK, echo=note)
            console.print("stopped LocalStack (run `inferstack demo --keep` to keep it up)")


def _digit(url: str, model: str) -> None:
    """A held-out digit through `model` (digits' artifact, served by Lambda or a server)."""
    response = predict_remote(url, model, sample_path("digits"))
    console.print(response_table(response))
    outputs = {output["name"]: output for output in response["outputs"]}
    label = outputs["label"]["data"][0]
    probability = outputs["probabilities"]["data"][label]
    expected = response.get("parameters", {}).get("expected_label")
    console.print(
        Panel(
            f"predicted digit [bold]{label}[/] with probability {probability:.4f}"
            f" (true label of this held-out image: {expected})",
            title=f"{model} via {url}/v2/models/{model}/infer",
        )
    )


def _digit_job(outputs: dict[str, Any]) -> None:
    if "digits" not in (outputs.get("jobs") or {}):
        console.print("the local stack has no jobs for digits; skipped the job demo")
        return
    jobs = jobs_of(STACK, "digits", ["digits"], outputs)
    started = time.monotonic()
    request = remote_request(jobs.api_url, "digits", sample_path("digits"), jobs.headers)
    job = jobs.submit(request, idempotency_key=None)
    record = wait_for_job(jobs, job["id"], timeout_s=120)
    label = next(o for o in record["response"]["outputs"] if o["name"] == "label")["data"][0]
    console.print(
        Panel(
            f"job {job['id']} {record['status']} in {time.monotonic() - started:.1f} s "
            f"(queued, then run by the function): predicted digit [bold]{label}[/]",
            title=f"digits job via {jobs.url(job['status_url'])}",
        )
    )


def _similarities(url: str, model: str) -> None:
    request = {
        "inputs": [
            {"name": "text", "shape": [len(SENTENCES)], "datatype": "BYTES", "data": SENTENCES}
        ]
    }
    response = infer_remote(url, model, request)
    output = response["outputs"][0]
    embeddings = np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])
    similarity = embeddings @ embeddings.T
    lines = [f"{len(SENTENCES)} sentences → embeddings of shape {output['shape']}"]
    for i in range(1, len(SENTENCES)):
        lines.append(f"cosine({SENTENCES[0]!r}, {SENTENCES[i]!r}) = {similarity[0, i]:.3f}")
    console.print(Panel("\n".join(lines), title=f"{model} via {url}/v2/models/{model}/infer"))
