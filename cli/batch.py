"""`inferstack batch run FILE --model M --stack S`: a JSONL file through the stack's data
bucket. The upload under `<batch prefix>/in/` starts the batch (a bucket notification);
progress is read from its work prefix (plan.json, one file per finished chunk); its
summary under out/, written last, says it is done."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli import deployment
from cli.console import console, err_console
from cli.deploy import EngineOption
from cli.deployment import DeployEngine
from cli.errors import UserError
from cli.jobs import ModelOption, StackOption, model_jobs, poll

CHUNK_FILE = re.compile(r"chunk-\d{5}\.jsonl")

app = typer.Typer(
    name="batch",
    help="Batches: a JSONL file in the stack's bucket, one result line per input line.",
    no_args_is_help=True,
)


@dataclass(frozen=True)
class BatchKeys:
    """Where one batch file's objects live in the data bucket."""

    bucket: str
    prefix: str  # <batch prefix>/<model>, e.g. batches/digits
    name: str  # the file's name without .jsonl

    @classmethod
    def of(cls, batch_prefix: str, file: Path) -> BatchKeys:
        """The keys for `file` under the stack output `batchPrefix`,
        s3://<bucket>/<prefix>/in/."""
        match = re.fullmatch(r"s3://([^/]+)/(.+)/in/?", batch_prefix)
        if match is None:
            raise UserError(
                f"the stack output batchPrefix {batch_prefix!r} is not s3://<bucket>/<prefix>/in/"
            )
        return cls(match[1], match[2], file.name.removesuffix(".jsonl"))

    @property
    def input(self) -> str:
        return f"{self.prefix}/in/{self.name}.jsonl"

    @property
    def results(self) -> dict[str, str]:
        """The batch's result objects by local file name."""
        names = (f"{self.name}.jsonl", f"{self.name}.errors.jsonl", f"{self.name}.summary.json")
        return {name: f"{self.prefix}/out/{name}" for name in names}

    @property
    def summary(self) -> str:
        return f"{self.prefix}/out/{self.name}.summary.json"

    def work(self, run: str) -> str:
        """The run's work prefix; a run is the input object's ETag without quotes."""
        return f"{self.prefix}/work/{self.name}/{run}/"


def chunks_done(keys: Iterable[str], work: str) -> int:
    """How many chunks have finished, from a listing of the run's work prefix."""
    return sum(1 for key in keys if CHUNK_FILE.fullmatch(key.removeprefix(work)))


@dataclass(frozen=True)
class BatchProgress:
    done: int  # chunks finished
    planned: int | None  # chunks in the plan; None until plan.json is written
    finished: bool  # the summary is written


@dataclass
class Batch:
    """One batch file's run on the bucket: upload, watch, download."""

    s3: Any  # a boto3 S3 client
    keys: BatchKeys
    run: str = ""
    planned: int | None = None  # chunks, from plan.json once it is written

    def upload(self, file: Path) -> None:
        # A summary left by an earlier run of the same name would read as this run done.
        self.s3.delete_object(Bucket=self.keys.bucket, Key=self.keys.summary)
        with file.open("rb") as body:
            put = self.s3.put_object(Bucket=self.keys.bucket, Key=self.keys.input, Body=body)
        self.run = str(put["ETag"]).strip('"')

    def progress(self) -> BatchProgress:
        work = self.keys.work(self.run)
        listed = _list(self.s3, self.keys.bucket, work)
        if self.planned is None and f"{work}plan.json" in listed:
            self.planned = int(self._json(f"{work}plan.json")["chunks"])
        return BatchProgress(
            chunks_done(listed, work), self.planned, self._exists(self.keys.summary)
        )

    def download(self, out: Path) -> dict[str, Path]:
        """The result files written under `out`, by name (a result the run did not
        write, e.g. no errors file, is left out)."""
        out.mkdir(parents=True, exist_ok=True)
        written = {}
        for name, key in self.keys.results.items():
            if self._exists(key):
                body = self.s3.get_object(Bucket=self.keys.bucket, Key=key)["Body"]
                path = out / name
                with path.open("wb") as target:
                    for chunk in body.iter_chunks():
                        target.write(chunk)
                written[name] = path
        return written

    def _json(self, key: str) -> dict[str, Any]:
        body = self.s3.get_object(Bucket=self.keys.bucket, Key=key)["Body"].read()
        loaded: dict[str, Any] = json.loads(body)
        return loaded

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        from localdev.deploy.aws import error_code

        try:
            self.s3.head_object(Bucket=self.keys.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey"):
                return False
            raise
        return True


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"batch {summary.get('input')} ({summary.get('model')})")
    columns = ("lines", "succeeded", "failed", "chunks", "seconds", "rows/s")
    for column in columns:
        table.add_column(column, justify="right")
    seconds = float(summary.get("seconds") or 0.0)
    lines = int(summary.get("lines") or 0)
    rate = f"{lines / seconds:.1f}" if seconds > 0 else "-"
    table.add_row(
        *(str(summary.get(column, "-")) for column in columns[:4]), f"{seconds:.2f}", rate
    )
    return table


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="A .jsonl file: one request per line.")],
    model: ModelOption,
    stack: StackOption = "local",
    out: Annotated[
        Path | None, typer.Option(help="Where the results go; default build/batches/<stack>/.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the batch.")] = 900.0,
    engine: EngineOption = DeployEngine.auto,
) -> None:
    """Upload FILE to the model's batch prefix, follow it to the end, download its
    results, errors and summary, and print the summary."""
    if not file.is_file():
        raise UserError(f"{file}: no such file")
    if file.suffix != ".jsonl":
        raise UserError(f"{file}: a batch file must end in .jsonl (only those start a batch)")
    jobs = model_jobs(stack, model, engine)
    batch_prefix = jobs.outputs.get("batchPrefix")
    if not isinstance(batch_prefix, str):
        raise UserError(
            f"model {model!r} has no batches in the deployed stack {stack}; enable its "
            f"`batch` section in stacks/{stack}.py and run `inferstack up --stack {stack}`"
        )
    batch = Batch(deployment.s3_client(stack), BatchKeys.of(batch_prefix, file))
    started = time.monotonic()
    with _progress_bar() as bar:
        task = bar.add_task(f"uploading {file.name}", total=None)
        batch.upload(file)
        bar.update(task, description=f"{model}: {file.name}")

        def show(state: BatchProgress, _elapsed: float) -> None:
            done = state.planned if state.finished else state.done
            bar.update(task, completed=done, total=state.planned)

        state = poll(batch.progress, lambda state: state.finished, timeout, show=show)
    keys = batch.keys
    if not state.finished:
        raise UserError(
            f"batch {file.name} is not done after {timeout:g} s ({state.done} of "
            f"{state.planned or '?'} chunks done); it keeps running: its results will be "
            f"under s3://{keys.bucket}/{keys.prefix}/out/"
        )
    written = batch.download(out if out is not None else Path("build", "batches", stack))
    summary = json.loads(written[f"{keys.name}.summary.json"].read_text(encoding="utf-8"))
    console.print(summary_table(summary))
    console.print(f"done in {time.monotonic() - started:.1f} s (upload to download)")
    for path in written.values():
        console.print(f"  {path}", highlight=False, soft_wrap=True)


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunks"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )


def _list(s3: Any, bucket: str, prefix: str) -> set[str]:
    keys: set[str] = set()
    token: dict[str, str] = {}
    while True:
        page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, **token)
        keys.update(item["Key"] for item in page.get("Contents", []))
        if not page.get("IsTruncated"):
            return keys
        token = {"ContinuationToken": page["NextContinuationToken"]}
