"""`inferstack versions | rollout | compare | promote | rollback --stack S --model M`: a
deployed model's published Lambda versions and the `live` alias that API Gateway invokes.

Every move of traffic is one UpdateAlias call, which Lambda applies atomically: a request
is served by the old routing or the new one, never by neither. The model version each
Lambda version serves is the label a deploy wrote into its description
(model_runtime/versions/label.py).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cli import alias_deployments, deployment
from cli.alias_deployments import DeploymentGroup
from cli.compare import CompareReport, Latency, Side, compare_outputs, gate_failure
from cli.console import console, note
from cli.errors import UserError
from cli.logs import ModelOption, StackOption, function_of
from model_runtime.versions.catalog import (
    PublishedVersion,
    model_versions,
    published_versions,
    route_target,
)

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

RequestsOption = Annotated[
    Path | None,
    typer.Option(
        "--requests",
        help="One OIP request (.json) or one per line (.jsonl); default: the model's samples.",
    ),
]
RawOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
# Lambda cold starts behind API Gateway can take seconds.
HTTP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class DeployedModel:
    """A model of a deployed stack: its function, the API in front of it, and a Lambda
    client for the stack's cloud."""

    stack: str
    model: str
    function: str
    api_url: str
    api_key: str | None
    client: Any  # a botocore lambda client
    # Set when CodeDeploy moves `live` (the model's alarm_rollback): moves are deployments.
    deployments: DeploymentGroup | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key} if self.api_key else {}


@dataclass(frozen=True)
class LiveAlias:
    """The `live` alias: its primary Lambda version and the candidate, if any, that gets
    `weight` percent of the requests."""

    primary: int
    candidate: int | None = None
    weight: float = 0.0


@dataclass(frozen=True)
class VersionRow:
    version: int
    model_version: str | None
    sha256: str | None
    created: str
    weight: float
    routes: list[str]


def deployed_model(stack: str, model: str) -> DeployedModel:
    function = function_of(stack, model)  # unknown stack or model, or not deployed: stops
    outputs = deployment.outputs(stack)
    keys = outputs.get("apiKeys") or {}
    group = (outputs.get("deployments") or {}).get(model)
    return DeployedModel(
        stack,
        model,
        function,
        str(outputs["url"]),
        next(iter(keys.values()), None),
        deployment.aws_client(stack, "lambda"),
        None
        if group is None
        else DeploymentGroup(
            stack,
            group["application"],
            group["deploymentGroup"],
            deployment.aws_client(stack, "codedeploy"),
        ),
    )


@contextmanager
def lambda_calls(target: DeployedModel) -> Iterator[None]:
    """Lambda's errors as one line each, saying what to do."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        raise UserError(_lambda_error(target, exc)) from exc
    except BotoCoreError as exc:  # unreachable endpoint, no credentials
        raise UserError(f"cannot call Lambda for stack {target.stack}: {exc}") from exc


def _lambda_error(target: DeployedModel, exc: ClientError) -> str:
    code = exc.response["Error"]["Code"]
    if code == "ResourceNotFoundException":
        return (
            f"function {target.function} or its alias is not in the cloud of stack"
            f" {target.stack}: run `inferstack up --stack {target.stack}`"
        )
    if code in ("ResourceConflictException", "TooManyRequestsException"):
        return f"Lambda is busy with function {target.function} ({code}): try again in a moment"
    message = exc.response["Error"].get("Message", "")
    return f"Lambda refused a call on function {target.function}: {code}: {message}"


def read_alias(target: DeployedModel) -> LiveAlias:
    from infra.lambda_model import ALIAS

    with lambda_calls(target):
        alias = target.client.get_alias(FunctionName=target.function, Name=ALIAS)
    primary = alias["FunctionVersion"]
    if not primary.isdigit():
        raise UserError(
            f"the {ALIAS} alias of {target.function} points to {primary}, not a published"
            f" version: run `inferstack up --stack {target.stack}`"
        )
    weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
    for candidate, weight in weights.items():  # the stack declares one at most
        # Rounded: 0.07 * 100 is 7.000000000000001.
        return LiveAlias(int(primary), int(candidate), round(float(weight) * 100, 6))
    return LiveAlias(int(primary))


def move_alias(
    target: DeployedModel, primary: int, candidate: int | None = None, weight: float = 0.0
) -> None:
    """Point `live` at `primary`, with `weight` percent to `candidate`; one call."""
    from infra.lambda_model import ALIAS

    weights = {str(candidate): weight / 100} if candidate is not None and weight > 0 else {}
    with lambda_calls(target):
        target.client.update_alias(
            FunctionName=target.function,
            Name=ALIAS,
            FunctionVersion=str(primary),
            RoutingConfig={"AdditionalVersionWeights": weights},
        )


def versions_of(target: DeployedModel) -> list[PublishedVersion]:
    with lambda_calls(target):
        return published_versions(target.client, target.function)


def version_rows(
    versions: Sequence[PublishedVersion], alias: LiveAlias, model: str
) -> list[VersionRow]:
    """One row per published version: what it serves, its share of `live`, and the routes
    that reach it."""
    routes: dict[int, list[str]] = {}
    for found in versions:
        if _weight(found, alias) > 0:
            routes.setdefault(found.number, []).append("live")
    for version in model_versions(versions, model):
        reached = route_target(versions, model, version)
        if reached is not None:
            routes.setdefault(reached.number, []).append(f"/v2/models/{model}/versions/{version}")
    return [
        VersionRow(
            found.number,
            found.label.version if found.label else None,
            found.label.sha256 if found.label else None,
            found.created,
            _weight(found, alias),
            routes.get(found.number, []),
        )
        for found in versions
    ]


def _weight(found: PublishedVersion, alias: LiveAlias) -> float:
    if found.number == alias.primary:
        return round(100 - alias.weight, 6)
    return alias.weight if found.number == alias.candidate else 0.0


def versions_table(model: str, rows: Sequence[VersionRow]) -> Table:
    """The rows as a table that fits 80 columns: routes under the model's path, Lambda's
    timestamps (always UTC) to the minute."""
    prefix = f"/v2/models/{model}"
    table = Table(title=f"{model}: published versions", caption=f"routes under {prefix}")
    for column in ("version", "model version", "artifact", "created", "weight", "routes"):
        table.add_column(
            column,
            justify="right" if column in ("version", "weight") else "left",
            no_wrap=column != "model version",
        )
    for row in rows:
        table.add_row(
            str(row.version),
            row.model_version or "-",
            row.sha256[:12] if row.sha256 else "-",
            row.created[:16].replace("T", " "),
            f"{row.weight:g} %",
            "\n".join(route.removeprefix(prefix) for route in row.routes) or "-",
        )
    return table


def named(versions: Sequence[PublishedVersion], model: str, version: str) -> PublishedVersion:
    """The Lambda version `/versions/{version}/` reaches, or a UserError listing the model
    versions there are."""
    found = route_target(versions, model, version)
    if found is None:
        known = ", ".join(repr(v) for v in model_versions(versions, model)) or "none"
        raise UserError(f"model {model!r} has no version {version!r}; versions: {known}")
    return found


def by_number(versions: Sequence[PublishedVersion], number: int) -> PublishedVersion:
    for found in versions:
        if found.number == number:
            return found
    raise UserError(f"the live alias routes to Lambda version {number}, which is not published")


def version_name(found: PublishedVersion, model: str) -> str:
    """'digits version 2 (Lambda version 5)'."""
    if found.label is None or found.label.model != model:
        return f"Lambda version {found.number} (no {model} label)"
    return f"{model} version {found.label.version} (Lambda version {found.number})"


def check_weight(value: str) -> float:
    """A typer `parser` for --weight: a percent from 0 to 100."""
    try:
        weight = float(value)
    except ValueError:
        weight = math.nan
    if not 0 <= weight <= 100:  # NaN fails too
        raise UserError(f"--weight has value {value!r}; allowed: a percent from 0 to 100")
    return weight


def labelled(found: PublishedVersion, model: str, role: str) -> str:
    """The model version `found` serves, or a UserError when it carries no label of
    `model` (no versioned route can reach it)."""
    if found.label is None or found.label.model != model:
        raise UserError(
            f"the {role} Lambda version {found.number} of {model} has no inferstack label,"
            " so no versioned route reaches it: deploy it with `inferstack up`"
        )
    return found.label.version


# --- compare -------------------------------------------------------------------------


def compare_candidate(
    versions: Sequence[PublishedVersion], alias: LiveAlias, model: str, version: str | None
) -> PublishedVersion:
    """--candidate V, else the version the alias sends a share to, else the newest one that
    serves another model version than live."""
    if version is not None:
        return named(versions, model, version)
    if alias.candidate is not None:
        return by_number(versions, alias.candidate)
    live = by_number(versions, alias.primary).label
    live_version = live.version if live else None
    for found in reversed(versions):
        if found.label and found.label.model == model and found.label.version != live_version:
            return found
    raise UserError(
        f"{model} has no version to compare with the live one: deploy another model version"
        " or give --candidate V"
    )


def read_requests(path: Path) -> list[dict[str, Any]]:
    """The OIP requests in `path`: one JSON object, or (.jsonl) one per line."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    else:
        lines = [(1, text)]
    requests = []
    for number, line in lines:
        where = f"{path} line {number}" if path.suffix == ".jsonl" else str(path)
        try:
            request = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where}: invalid JSON: {exc}") from exc
        if not isinstance(request, dict) or "inputs" not in request:
            raise UserError(f"{where}: not an inference request (a JSON object with inputs)")
        requests.append(request)
    if not requests:
        raise UserError(f"{path}: no requests")
    return requests


def default_requests(model: str) -> Path:
    """build/samples/<model>.compare.jsonl (`inferstack build` writes it), else the model's
    one sample; an int8 artifact takes its fp32 model's."""
    from layers.package import project_root
    from model_build.build import compare_path, sample_path

    root = project_root()
    base = model.removesuffix("-int8")
    candidates = [root / compare_path(base), root / sample_path(base)]
    for path in candidates:
        if path.is_file():
            return path
    raise UserError(
        f"no requests to compare {model} with: neither {candidates[0]} nor {candidates[1]}"
        f" exists; run `inferstack build {base}` or give --requests FILE"
    )


def compare_versions(
    target: DeployedModel,
    versions: Sequence[PublishedVersion],
    live: PublishedVersion,
    candidate: PublishedVersion,
    requests: Sequence[dict[str, Any]],
) -> CompareReport:
    """Send each request to the versioned routes of `live`'s and `candidate`'s model
    versions, alternating which goes first so neither version is always the warmer one,
    and compare the answers."""
    import httpx

    model = target.model
    names = (labelled(live, model, "live"), labelled(candidate, model, "candidate"))
    if names[0] == names[1]:
        raise UserError(
            f"live and candidate both serve {model} version {names[0]} (Lambda versions"
            f" {live.number} and {candidate.number}): its route reaches only one of them"
        )
    # What each route reaches: the newest Lambda version of that model version.
    sides = (named(versions, model, names[0]), named(versions, model, names[1]))
    answers: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
    seconds: tuple[list[float], list[float]] = ([], [])
    base = target.api_url.rstrip("/")
    with httpx.Client(timeout=HTTP_TIMEOUT_S, headers=target.headers) as client:
        for number, request in enumerate(requests, start=1):
            for side in (0, 1) if number % 2 else (1, 0):
                url = f"{base}/v2/models/{model}/versions/{names[side]}/infer"
                started = time.perf_counter()
                try:
                    response = client.post(url, json=request)
                except httpx.HTTPError as exc:
                    raise UserError(f"cannot reach {base}: {exc}") from exc
                seconds[side].append(time.perf_counter() - started)
                answers[side].append(_answer(response, version_name(sides[side], model), number))
    for side in (0, 1):
        _check_served(answers[side], names[side], version_name(sides[side], model))
    labels = (f"{model} version {names[0]}", f"{model} version {names[1]}")
    return CompareReport(
        model,
        Side(names[0], sides[0].number, Latency.of(seconds[0])),
        Side(names[1], sides[1].number, Latency.of(seconds[1])),
        compare_outputs(answers[0], answers[1], labels),
    )


def _answer(response: Any, version: str, number: int) -> dict[str, Any]:
    """The decoded answer; a 4xx/5xx is a UserError naming the version and the API's error."""
    try:
        body = response.json()
    except ValueError:
        body = {"error": response.text[:200]}
    if response.status_code >= 400:
        error = body.get("error", body) if isinstance(body, dict) else body
        raise UserError(f"{version} answered {response.status_code} to request {number}: {error}")
    if not isinstance(body, dict):
        raise UserError(f"{version} answered request {number} with {body!r}, not a response")
    return body


def _check_served(answers: Sequence[dict[str, Any]], version: str, described: str) -> None:
    """Responses say which model version answered: a route that reached another one would
    make the comparison compare a version with itself."""
    for number, answer in enumerate(answers, start=1):
        served = answer.get("model_version")
        if served is not None and str(served) != version:
            raise UserError(
                f"the route of {described} was answered by model version {served}"
                f" (request {number}): redeploy with `inferstack up`"
            )


def compare_tables(report: CompareReport) -> list[Table]:
    tables = []
    for output in report.outputs:
        table = Table(title=f"output {output.name}")
        table.add_column("metric")
        table.add_column("value", justify="right")
        table.add_row("datatype", output.datatype)
        table.add_row("rows", str(output.rows))
        for metric, value in (
            ("top-1 agreement", output.top1_agreement),
            ("agreement", output.agreement),
            ("min cosine", output.min_cosine),
            ("mean cosine", output.mean_cosine),
            ("max abs diff", output.max_abs_diff),
        ):
            if value is not None:
                table.add_row(metric, f"{value:.6g}")
        tables.append(table)
    latency = Table(title="latency through the API")
    for column in ("version", "Lambda version", "requests", "p50 ms", "p99 ms"):
        latency.add_column(column, justify="left" if column == "version" else "right")
    for role, side in (("live", report.live), ("candidate", report.candidate)):
        latency.add_row(
            f"{side.model_version} ({role})",
            str(side.lambda_version),
            str(side.latency.requests),
            f"{side.latency.p50_ms:.1f}",
            f"{side.latency.p99_ms:.1f}",
        )
    tables.append(latency)
    return tables


def print_compare(report: CompareReport) -> None:
    live, candidate = report.live, report.candidate
    _say(
        f"{report.model}: version {candidate.model_version} (Lambda version"
        f" {candidate.lambda_version}) against live version {live.model_version} (Lambda"
        f" version {live.lambda_version}), {live.latency.requests} requests"
    )
    for table in compare_tables(report):
        console.print(table)


def _say(line: str) -> None:
    console.print(line, highlight=False, soft_wrap=True)


def _run_compare(
    target: DeployedModel,
    versions: Sequence[PublishedVersion],
    alias: LiveAlias,
    candidate: PublishedVersion,
    requests_file: Path | None,
) -> CompareReport:
    live = by_number(versions, alias.primary)
    path = requests_file if requests_file is not None else default_requests(target.model)
    report = compare_versions(target, versions, live, candidate, read_requests(path))
    for meant, side in ((live, report.live), (candidate, report.candidate)):
        if side.lambda_version != meant.number:
            note(
                f"the route of {target.model} version {side.model_version} reaches Lambda"
                f" version {side.lambda_version}, the newest that serves it, not"
                f" {meant.number}: compared that one"
            )
    return report


# --- commands ------------------------------------------------------------------------


def versions(stack: StackOption, model: ModelOption, raw: RawOption = False) -> None:
    """A table of the model's published versions: model version, artifact, weight, routes."""
    target = deployed_model(stack, model)
    rows = version_rows(versions_of(target), read_alias(target), model)
    if raw:
        console.print_json(data=[asdict(row) for row in rows])
    else:
        console.print(versions_table(model, rows))


def rollout(
    stack: StackOption,
    model: ModelOption,
    version: Annotated[str, typer.Option("--version", help="The model version to try.")],
    weight: Annotated[
        float,
        typer.Option(parser=check_weight, help="Percent of live requests it gets (0 to 100)."),
    ],
) -> None:
    """Send a share of live requests to model version V (0 ends a canary; 100 makes V live)."""
    target = deployed_model(stack, model)
    if target.deployments is not None:
        raise UserError(
            f"{model} of stack {stack} moves traffic through CodeDeploy (alarm_rollback):"
            " its steps are the stack's alarm_rollback; `inferstack promote` starts one"
        )
    found = versions_of(target)
    candidate = named(found, model, version)
    alias = read_alias(target)
    primary = by_number(found, alias.primary)
    if candidate.number == alias.primary:
        raise UserError(f"{version_name(candidate, model)} is the live version already")
    if weight == 100:
        move_alias(target, candidate.number)
        _print_move(candidate, primary, model)
    elif weight == 0:
        move_alias(target, alias.primary)
        _say(f"live: {version_name(primary, model)} 100 % — {version_name(candidate, model)} 0 %")
    else:
        move_alias(target, alias.primary, candidate.number, weight)
        _say(
            f"live: {version_name(primary, model)} {100 - weight:g} %,"
            f" {version_name(candidate, model)} {weight:g} %"
        )


def compare(
    stack: StackOption,
    model: ModelOption,
    requests: RequestsOption = None,
    candidate: Annotated[
        str | None,
        typer.Option(help="The model version to compare with live (default: the canary's)."),
    ] = None,
    raw: RawOption = False,
) -> None:
    """Send the same requests to the live and a candidate version; compare outputs, latency."""
    target = deployed_model(stack, model)
    found = versions_of(target)
    alias = read_alias(target)
    chosen = compare_candidate(found, alias, model, candidate)
    report = _run_compare(target, found, alias, chosen, requests)
    if raw:
        console.print_json(data=report.to_json())
    else:
        print_compare(report)


def promote(
    stack: StackOption,
    model: ModelOption,
    version: Annotated[
        str | None,
        typer.Option("--version", help="The model version to promote (default: the canary's)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Promote even when the gate fails.")] = False,
    requests: RequestsOption = None,
) -> None:
    """Make V (else the canary) live once compare passes the gate its manifest declares."""
    target = deployed_model(stack, model)
    found = versions_of(target)
    alias = read_alias(target)
    if version is not None:
        candidate = named(found, model, version)
    elif alias.candidate is not None:
        candidate = by_number(found, alias.candidate)
    else:
        known = ", ".join(repr(v) for v in model_versions(found, model)) or "none"
        raise UserError(
            f"no candidate to promote: the live alias of {model} sends no requests to"
            f" another version; give --version V (versions: {known})"
        )
    primary = by_number(found, alias.primary)
    if candidate.number == alias.primary:
        raise UserError(f"{version_name(candidate, model)} is the live version already")
    report = _run_compare(target, found, alias, candidate, requests)
    print_compare(report)
    gate = candidate.label.gate if candidate.label else None
    reason = gate_failure(report, gate) if gate is not None else None
    if reason is not None:
        if not force:
            raise UserError(f"promote refused: {reason}; --force promotes anyway")
        note(f"gate failed ({reason}); promoting anyway (--force)")
    if target.deployments is None:
        move_alias(target, candidate.number)
        _print_move(candidate, primary, model)
        return
    running = alias_deployments.active(target.deployments)
    if running is not None:
        raise UserError(
            f"CodeDeploy deployment {running} of {model} is running: wait for it, or"
            " `inferstack rollback` stops it"
        )
    started = _deploy(target, alias.primary, candidate, "promote")
    _say(
        f"CodeDeploy deployment {started}: live moves to {version_name(candidate, model)} in"
        f" the steps of alarm_rollback (was {version_name(primary, model)}); an alarm rolls it"
        " back"
    )


def rollback(
    stack: StackOption,
    model: ModelOption,
    to: Annotated[
        str | None, typer.Option(help="The model version to go back to (default: the previous).")
    ] = None,
) -> None:
    """Make an earlier version live again: V, else the one published before live (with
    CodeDeploy: a running deployment is stopped, which moves live back)."""
    target = deployed_model(stack, model)
    found = versions_of(target)
    alias = read_alias(target)
    primary = by_number(found, alias.primary)
    running = None if target.deployments is None else alias_deployments.active(target.deployments)
    if running is not None and to is None:
        assert target.deployments is not None
        alias_deployments.stop(target.deployments, running)
        # During a deployment the alias's primary is still the version it started from.
        _say(
            f"stopped CodeDeploy deployment {running}: CodeDeploy moves live back to"
            f" {version_name(primary, model)}"
        )
        return
    if running is not None:
        raise UserError(
            f"CodeDeploy deployment {running} of {model} is running: `inferstack rollback`"
            " without --to stops it first"
        )
    if to is not None:
        back = named(found, model, to)
    else:
        earlier = [
            v
            for v in found
            if v.number < alias.primary and v.label is not None and v.label.model == model
        ]
        if not earlier:
            raise UserError(
                f"no earlier version of {model} to roll back to: live is Lambda version"
                f" {alias.primary}"
            )
        back = earlier[-1]
    if back.number == alias.primary:
        raise UserError(f"{version_name(back, model)} is the live version already")
    if target.deployments is None:
        move_alias(target, back.number)
        _print_move(back, primary, model)
        return
    started = _deploy(target, alias.primary, back, "rollback", all_at_once=True)
    _say(
        f"CodeDeploy deployment {started}: live moves back to {version_name(back, model)} at"
        f" once (was {version_name(primary, model)})"
    )


def _deploy(
    target: DeployedModel,
    current: int,
    to: PublishedVersion,
    why: str,
    *,
    all_at_once: bool = False,
) -> str:
    from infra.lambda_model import ALIAS

    assert target.deployments is not None
    return alias_deployments.start(
        target.deployments,
        target.function,
        ALIAS,
        current,
        to.number,
        description=f"inferstack {why}: {version_name(to, target.model)}",
        all_at_once=all_at_once,
    )


def _print_move(now: PublishedVersion, was: PublishedVersion, model: str) -> None:
    """'live: digits version 2 (Lambda version 5) — was version 1 (Lambda version 3)'."""
    before = version_name(was, model).removeprefix(f"{model} ")
    _say(f"live: {version_name(now, model)} — was {before}")
