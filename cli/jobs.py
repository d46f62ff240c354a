"""`inferstack jobs submit|status|wait`: queued inference through a deployed stack's API
(`POST/GET /v2/models/<model>/jobs`), a typer group the app mounts as `jobs`. Also where
the batch command finds a model's jobs outputs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from cli import deployment
from cli.console import console, err_console, note
from cli.deploy import EngineOption
from cli.deployment import DeployEngine
from cli.errors import UserError
from cli.predict import call_api, remote_request
from cli.render import response_table

TERMINAL = ("succeeded", "failed")
State = TypeVar("State")

app = typer.Typer(
    name="jobs",
    help="Queued inference: submit a request, read its status, wait for its result.",
    no_args_is_help=True,
)

StackOption = Annotated[str, typer.Option("--stack", "-s", help="The deployed stack's name.")]
ModelOption = Annotated[str, typer.Option("--model", "-m", help="The model's name.")]
JobId = Annotated[str, typer.Argument(help="The job id `jobs submit` printed.")]
RawOption = Annotated[bool, typer.Option("--json", help="Print the raw JSON.")]


@dataclass(frozen=True)
class ModelJobs:
    """What a deployed stack says about one model's jobs: its API and its stack outputs
    `jobs[<model>]` (queueUrl, deadLetterQueueUrl, jobsUrl, batchPrefix)."""

    stack: str
    model: str
    api_url: str
    api_key: str | None
    outputs: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key} if self.api_key else {}

    def submit(self, request: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        headers = self.headers
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        return call_api(self.api_url, "POST", self._path(), request, headers=headers)

    def record(self, job_id: str) -> dict[str, Any]:
        return call_api(self.api_url, "GET", self._path(job_id), headers=self.headers)

    def url(self, path: str) -> str:
        """The full URL of an API path the API answered with (e.g. a status_url)."""
        return f"{self.api_url.rstrip('/')}{path}"

    def _path(self, job_id: str | None = None) -> str:
        path = f"/v2/models/{self.model}/jobs"
        return path if job_id is None else f"{path}/{job_id}"


def model_jobs(stack: str, model: str, engine: DeployEngine = DeployEngine.auto) -> ModelJobs:
    """The model's jobs on the deployed stack, or a UserError saying which of the stack,
    the model or its jobs is missing."""
    from infra.stack_loader import load_stack

    models = [declared.name for declared in load_stack(stack).models]
    return jobs_of(stack, model, models, deployment.outputs(stack, engine))


def jobs_of(stack: str, model: str, models: list[str], outputs: dict[str, Any]) -> ModelJobs:
    """`model_jobs` from the stack's declared `models` and its deployed `outputs`."""
    if model not in models:
        raise UserError(
            f"stack {stack} has no model {model!r}; its models: {', '.join(models) or '(none)'}"
        )
    url = outputs.get("url")
    if not isinstance(url, str):
        raise UserError(f"stack {stack} is not deployed: run `inferstack up --stack {stack}`")
    jobs = outputs.get("jobs") or {}
    if model not in jobs:
        enabled = ", ".join(sorted(jobs)) or "none"
        raise UserError(
            f"model {model!r} has no jobs in the deployed stack {stack} (models with jobs: "
            f"{enabled}); enable its `async` section in stacks/{stack}.py and run "
            f"`inferstack up --stack {stack}`"
        )
    keys = outputs.get("apiKeys") or {}
    api_key = next(iter(keys.values()), None)
    return ModelJobs(stack, model, url, api_key, dict(jobs[model]))


def poll(
    fetch: Callable[[], State],
    done: Callable[[State], bool],
    timeout_s: float,
    *,
    show: Callable[[State, float], None] = lambda _state, _elapsed: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> State:
    """Call `fetch` until `done` says its answer is final or `timeout_s` has passed, backing
    off from a quarter second to two; `show` sees each answer. Returns the last one."""
    started = clock()
    delay = 0.25
    while True:
        state = fetch()
        elapsed = clock() - started
        show(state, elapsed)
        if done(state) or elapsed >= timeout_s:
            return state
        sleep(min(delay, timeout_s - elapsed))
        delay = min(delay * 2, 2.0)


def wait_for_job(jobs: ModelJobs, job_id: str, timeout_s: float) -> dict[str, Any]:
    """The job's record once it succeeded; a failed job or a timeout is a UserError."""

    with err_console.status(f"job {job_id}: waiting") as spinner:

        def show(record: dict[str, Any], elapsed: float) -> None:
            attempts = record.get("attempts") or 0
            attempt = f", attempt {attempts}" if attempts > 1 else ""
            spinner.update(f"job {job_id}: {record.get('status')}{attempt} ({elapsed:.0f} s)")

        record = poll(lambda: jobs.record(job_id), _finished, timeout_s, show=show)
    if not _finished(record):
        raise UserError(
            f"job {job_id} is still {record.get('status')} after {timeout_s:g} s; "
            f"`inferstack jobs wait {job_id} --stack {jobs.stack} --model {jobs.model}` "
            "waits again"
        )
    if record.get("status") == "failed":
        raise UserError(f"job {job_id} failed: {failure(record)}")
    return record


def failure(record: dict[str, Any]) -> str:
    """Why a failed job failed, as the record says it."""
    error = record.get("error") or {}
    message = str(error.get("message") or "no reason recorded")
    status = error.get("status")
    return f"{message} (status {status})" if status else message


def record_table(record: dict[str, Any]) -> Table:
    table = Table(title=f"job {record.get('id')} ({record.get('model')})", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for field in ("status", "submitted_at", "started_at", "finished_at", "attempts"):
        table.add_row(field, _shown(record.get(field)))
    for field in ("input_uri", "last_error"):
        if record.get(field):
            table.add_row(field, _shown(record[field]))
    if record.get("status") == "failed":
        table.add_row("error", failure(record))
    return table


def _finished(record: dict[str, Any]) -> bool:
    return record.get("status") in TERMINAL


def _shown(value: Any) -> str:
    return "-" if value is None else str(value)


def _print_result(record: dict[str, Any], raw: bool) -> None:
    if raw:
        console.print_json(data=record["response"])
    else:
        console.print(response_table(record["response"]))


@app.command()
def submit(
    model: ModelOption,
    file: Annotated[
        Path | None,
        typer.Argument(help="A request file as `predict --input` reads it (.json or .npy)."),
    ] = None,
    stack: StackOption = "local",
    input_uri: Annotated[
        str | None,
        typer.Option(
            help="An input already in the jobs bucket: s3://<bucket>/jobs/<model>/inputs/..."
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="The same key returns the same job.")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the result and print it.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 300.0,
    engine: EngineOption = DeployEngine.auto,
    raw: RawOption = False,
) -> None:
    """Queue one request for MODEL; prints the job's id and status URL (or, with --wait,
    its result)."""
    if (file is None) == (input_uri is None):
        raise UserError("give either a request FILE or --input-uri s3://..., not both")
    if file is not None and not file.is_file():
        raise UserError(f"{file}: no such file")
    jobs = model_jobs(stack, model, engine)
    if file is not None:
        request = remote_request(jobs.api_url, model, file, headers=jobs.headers)
    else:
        request = {"input_uri": input_uri}
    job = jobs.submit(request, idempotency_key)
    if wait:
        _print_result(wait_for_job(jobs, job["id"], timeout), raw)
        return
    if raw:
        console.print_json(data=job)
        return
    console.print(f"[bold]job[/]     {job['id']}", highlight=False)
    console.print(f"[bold]status[/]  {job.get('status')}", highlight=False)
    console.print(
        f"[bold]url[/]     {jobs.url(job['status_url'])}", highlight=False, soft_wrap=True
    )
    note(f"wait for it: inferstack jobs wait {job['id']} --stack {stack} --model {model}")


@app.command()
def status(
    job_id: JobId,
    model: ModelOption,
    stack: StackOption = "local",
    engine: EngineOption = DeployEngine.auto,
    raw: RawOption = False,
) -> None:
    """The job's record: its status, timings, and its error or outputs."""
    record = model_jobs(stack, model, engine).record(job_id)
    if raw:
        console.print_json(data=record)
        return
    console.print(record_table(record))
    if record.get("status") == "succeeded":
        console.print(response_table(record["response"]))


@app.command()
def wait(
    job_id: JobId,
    model: ModelOption,
    stack: StackOption = "local",
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 300.0,
    engine: EngineOption = DeployEngine.auto,
    raw: RawOption = False,
) -> None:
    """Wait until the job is done: prints its result and exits 0 when it succeeded; a
    failed job (with its reason) or a timeout exits 1."""
    _print_result(wait_for_job(model_jobs(stack, model, engine), job_id, timeout), raw)
