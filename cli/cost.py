"""`inferstack cost --stack S --rps 20`: what the stack's models cost for a period at a
request rate, item by item, where each model's warm latency came from, and the rate above
which a GPU endpoint is cheaper than Lambda (pricing/ does the arithmetic).

The one cloud call is here: a deployed stack's warm latency, from CloudWatch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cli.console import console, note
from cli.errors import UserError

if TYPE_CHECKING:
    from pricing.estimate import ModelCost
    from pricing.latency import WarmLatency
    from pricing.prices import PriceFile
    from stacks.schema import ModelConfig, StackConfig

# How far back CloudWatch's average duration reaches.
CLOUDWATCH_HOURS = 24


def _number(option: str, *, zero_allowed: bool) -> Callable[[str], float]:
    """A typer `parser`: a finite number, ≥ 0 or > 0, else one line naming the option."""
    allowed = "a number ≥ 0" if zero_allowed else "a number > 0"

    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise UserError(f"{option} has value {value!r}; allowed: {allowed}") from None
        if not math.isfinite(number) or number < 0 or (number == 0 and not zero_allowed):
            raise UserError(f"{option} has value {value!r}; allowed: {allowed}")
        return number

    return parse


def cost(
    stack: Annotated[str, typer.Option("--stack", "-s", help="stacks/<NAME>.py to price.")],
    rps: Annotated[
        float,
        typer.Option(
            parser=_number("--rps", zero_allowed=True), help="Requests per second to each model."
        ),
    ],
    hours: Annotated[
        float,
        typer.Option(
            parser=_number("--hours", zero_allowed=False), help="The period (a month: 730)."
        ),
    ] = 730.0,
    prices_file: Annotated[
        Path | None,
        typer.Option("--prices", help="A price file (the schema of pricing/aws-us-east-1.json)."),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option(help="Write a PNG of cost against request rate here.")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Only this model.")] = None,
) -> None:
    """Estimate the stack's cost at a request rate: Lambda requests and GB-s, provisioned
    concurrency, API Gateway, S3 storage, GPU node-hours, and the GPU break-even rate."""
    from infra.stack_loader import load_stack
    from layers.package import project_root
    from pricing.estimate import estimate
    from pricing.prices import DEFAULT_PRICES, load_prices
    from pricing.usage import gpu_twins, usage_of

    if plot is not None and plot.suffix.lower() != ".png":
        raise UserError(f"--plot has value '{plot}'; allowed: a path ending in .png")
    config = load_stack(stack)
    models = _chosen(config, stack, model)
    price_file = load_prices(prices_file or DEFAULT_PRICES)
    root = project_root()
    deployed = deployed_latencies(stack, [m.name for m in models if m.lambda_ is not None])
    twins = gpu_twins(list(config.models))
    usages = [usage_of(m, root, deployed.get(m.name), twins.get(m.name)) for m in models]
    costs = [estimate(usage, rps, hours, price_file.prices) for usage in usages]
    console.print(cost_table(stack, rps, hours, costs))
    console.print(latency_table(costs, price_file))
    console.print(prices_lines(_shown(prices_file or DEFAULT_PRICES), price_file), highlight=False)
    if plot is not None:
        from pricing.plot import plot_costs

        plot.parent.mkdir(parents=True, exist_ok=True)
        left_out = plot_costs(usages, rps, hours, price_file.prices, plot)
        console.print(
            f"plot: {plot}" + (f" (not drawn: {', '.join(left_out)})" if left_out else "")
        )


def _shown(path: Path) -> Path:
    """`path` relative to the working directory when it is below it."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def _chosen(config: StackConfig, stack: str, model: str | None) -> list[ModelConfig]:
    if model is None:
        return list(config.models)
    found = [declared for declared in config.models if declared.name == model]
    if not found:
        known = ", ".join(declared.name for declared in config.models)
        raise UserError(f"no model named {model!r} in stack {stack!r}; known models: {known}")
    return found


def deployed_latencies(stack: str, models: list[str]) -> dict[str, WarmLatency]:
    """Each deployed model's mean warm duration over the last day, from the AWS/Lambda
    `Duration` metric of its function's `live` alias. Empty when the stack is not deployed,
    and missing a model CloudWatch has no data for (LocalStack often has none): the
    estimate then falls back to the benchmarks. A unit test replaces this function."""
    from botocore.exceptions import BotoCoreError, ClientError

    from cli import deployment
    from infra.errors import InfraError
    from localdev.errors import DeployError
    from pricing.latency import from_cloudwatch

    if not models:
        return {}
    try:
        functions = deployment.outputs(stack).get("functions") or {}
    except (DeployError, InfraError) as exc:
        note(f"latency: the stack's outputs cannot be read ({exc}); not asking CloudWatch")
        return {}
    found: dict[str, WarmLatency] = {}
    named = {model: functions[model] for model in models if functions.get(model)}
    if not named:
        return found
    client = _cloudwatch(stack)
    if client is None:
        note("latency: LocalStack is not running; using the benchmarks")
        return found
    try:
        for model, function in named.items():
            ms = _mean_duration_ms(client, function)
            if ms is not None:
                found[model] = from_cloudwatch(ms, function, CLOUDWATCH_HOURS)
    except (BotoCoreError, ClientError) as exc:
        note(f"latency: CloudWatch did not answer ({exc}); using the benchmarks")
    return found


def _mean_duration_ms(client: Any, function: str) -> float | None:
    end = datetime.now(UTC)
    answer = client.get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="Duration",
        Dimensions=[
            {"Name": "FunctionName", "Value": function},
            {"Name": "Resource", "Value": f"{function}:live"},
        ],
        StartTime=end - timedelta(hours=CLOUDWATCH_HOURS),
        EndTime=end,
        Period=3600,
        Statistics=["Average", "SampleCount"],
    )
    points = [p for p in answer.get("Datapoints", []) if p.get("SampleCount")]
    count = sum(p["SampleCount"] for p in points)
    if not count:
        return None
    return float(sum(p["Average"] * p["SampleCount"] for p in points) / count)


def _cloudwatch(stack: str) -> Any | None:
    """The stack's CloudWatch client; None for a LocalStack that is not running (rather
    than waiting out the client's connect retries)."""
    from cli import deployment
    from infra.stack_loader import load_stack
    from localdev.deploy.aws import reachable
    from stacks.schema import LocalStackTarget

    target = load_stack(stack).target
    if isinstance(target, LocalStackTarget) and not reachable(target.endpoint):
        return None
    return deployment.aws_client(stack, "cloudwatch")


def usd(value: float | None) -> str:
    if value is None:
        return "not computed"
    if 0 < value < 0.01:
        return "<$0.01"
    return f"${value:,.2f}"


def cost_table(stack: str, rps: float, hours: float, costs: list[ModelCost]) -> Table:
    from pricing.estimate import requests_in

    table = Table(
        title=f"inferstack cost --stack {stack}: {rps:g} requests/s to each model for {hours:g} h "
        f"({requests_in(rps, hours):,.0f} requests each)"
    )
    for column in ("model", "item", "usage", "USD"):
        table.add_column(column, justify="right" if column == "USD" else "left")
    for model_cost in costs:
        for index, item in enumerate(model_cost.items):
            table.add_row(
                model_cost.name if index == 0 else "", item.item, item.usage, usd(item.usd)
            )
        table.add_row("", "[bold]model total[/]", _partial(model_cost), usd(model_cost.usd))
        table.add_section()
    total = sum(model_cost.usd for model_cost in costs)
    incomplete = [c.name for c in costs if not c.complete]
    table.add_row(
        "[bold]total[/]",
        "",
        f"without what is not computed ({', '.join(incomplete)})" if incomplete else "",
        f"[bold]{usd(total)}[/]",
    )
    return table


def _partial(model_cost: ModelCost) -> str:
    return "" if model_cost.complete else "without what is not computed"


def latency_table(costs: list[ModelCost], price_file: PriceFile) -> Table:
    from pricing.estimate import billed_ms

    instance = price_file.prices.gpu_node_hour.instance_type
    table = Table(title=f"warm latency, and where a GPU endpoint ({instance}) is cheaper")
    for column in ("model", "warm latency", "source", "GPU cheaper above"):
        table.add_column(column)
    for model_cost in costs:
        ms = model_cost.latency.ms
        even = model_cost.break_even
        against = f" (vs {even.against})" if even.against else ""
        table.add_row(
            model_cost.name,
            "unknown" if ms is None else f"{ms:.3f} ms (billed {billed_ms(ms)} ms)",
            model_cost.latency.source,
            even.reason if even.rps is None else f"{even.rps:,.2f} requests/s{against}",
        )
    return table


def prices_lines(path: Path, price_file: PriceFile) -> str:
    """The price file's source and date, then each page its prices were read from."""
    entries = [getattr(price_file.prices, name) for name in type(price_file.prices).model_fields]
    pages = sorted({(entry.source, entry.read_on.isoformat()) for entry in entries})
    lines = [
        f"prices: {path} ({price_file.region}, {price_file.currency}, read "
        f"{price_file.read_on.isoformat()}): {price_file.source}",
        *(f"  {source} (read {read_on})" for source, read_on in pages),
    ]
    return "\n".join(lines)
