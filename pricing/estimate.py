"""The estimate: what one model costs for a period at a request rate, item by item, and the
request rate above which its GPU endpoint is cheaper than its Lambda function.

Lambda: every request is billed once, and for its duration rounded up to 1 ms times the
function's memory. Invocations that run on provisioned concurrency are billed at the lower
provisioned duration rate, on top of the provisioned concurrency kept ready (min x memory x
time); how many requests they take follows from Little's law: N environments busy `d`
seconds a request serve N / d requests a second, the rest spill over to on-demand.
A GPU endpoint costs its minimum replicas' nodes for the whole period, whatever the rate
(the HPA's extra replicas under load are not counted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pricing.latency import WarmLatency
from pricing.prices import Architecture, Prices

HOURS_PER_MONTH = 730
# S3 bills storage per GB-month of 2^30 bytes.
GB = 1024**3


@dataclass(frozen=True)
class LambdaUsage:
    memory_mb: int
    architecture: Architecture
    provisioned_min: int = 0

    @property
    def memory_gb(self) -> float:
        return self.memory_mb / 1024


@dataclass(frozen=True)
class GpuUsage:
    min_replicas: int
    gpus_per_replica: int


@dataclass(frozen=True)
class ModelUsage:
    """What a model's declaration and artifact say about its bill."""

    name: str
    latency: WarmLatency
    artifact_bytes: int | None  # None: the artifact is not built
    lambda_: LambdaUsage | None
    gpu: GpuUsage | None
    # A GPU-served model of the stack with the same artifact (`digits-gpu` beside
    # `digits`): what the Lambda path is compared with when the model has no GPU endpoint.
    gpu_twin: tuple[str, GpuUsage] | None = None

    @property
    def compared_gpu(self) -> GpuUsage | None:
        """The GPU endpoint the break-even compares the Lambda path with."""
        if self.gpu is not None:
            return self.gpu
        return self.gpu_twin[1] if self.gpu_twin is not None else None


@dataclass(frozen=True)
class LineItem:
    item: str
    usage: str
    usd: float | None  # None: not computed; `usage` says why


@dataclass(frozen=True)
class BreakEven:
    """The request rate above which the GPU endpoint is cheaper (0: at any rate), or why
    there is none."""

    rps: float | None
    reason: str = ""
    # The GPU-served model compared with, when it is not the model itself.
    against: str | None = None


@dataclass(frozen=True)
class ModelCost:
    name: str
    latency: WarmLatency
    items: list[LineItem]
    break_even: BreakEven

    @property
    def usd(self) -> float:
        """The items that could be computed."""
        return sum(item.usd for item in self.items if item.usd is not None)

    @property
    def complete(self) -> bool:
        return all(item.usd is not None for item in self.items)


def billed_ms(latency_ms: float) -> int:
    """Lambda bills duration rounded up to the next millisecond (at least 1 ms)."""
    return max(1, math.ceil(latency_ms))


def requests_in(rps: float, hours: float) -> float:
    return rps * hours * 3600


def provisioned_rps(function: LambdaUsage, billed: int) -> float:
    """The request rate the provisioned environments absorb (Little's law)."""
    return function.provisioned_min / (billed / 1000)


def lambda_usd(function: LambdaUsage, billed: int, rps: float, hours: float, p: Prices) -> float:
    """The Lambda path's bill at `rps`: requests, duration, provisioned concurrency and the
    API Gateway requests in front of it. The break-even and the plot use this one sum."""
    seconds = hours * 3600
    per_request = (p.lambda_requests_per_million.usd + p.api_gateway_rest_per_million.usd) / 1e6
    gb_s_per_request = function.memory_gb * billed / 1000
    on_provisioned = min(rps, provisioned_rps(function, billed))
    duration = (
        gb_s_per_request
        * seconds
        * (
            on_provisioned * p.provisioned_duration_gb_s(function.architecture)
            + (rps - on_provisioned) * p.duration_gb_s(function.architecture)
        )
    )
    return rps * seconds * per_request + duration + _provisioned_usd(function, hours, p)


def gpu_node_hours(gpu: GpuUsage, hours: float, p: Prices) -> float:
    nodes_per_replica = math.ceil(gpu.gpus_per_replica / p.gpu_node_hour.gpus)
    return gpu.min_replicas * nodes_per_replica * hours


def gpu_usd(gpu: GpuUsage, hours: float, p: Prices) -> float:
    return gpu_node_hours(gpu, hours, p) * p.gpu_node_hour.usd


def break_even(model: ModelUsage, hours: float, p: Prices) -> BreakEven:
    """Where `lambda_usd` (piecewise linear in the rate: one slope while provisioned
    environments absorb the requests, a steeper one after) reaches the GPU's fixed cost."""
    gpu = model.compared_gpu
    if gpu is None:
        return BreakEven(None, "no GPU endpoint declared")
    if model.lambda_ is None:
        return BreakEven(None, "no Lambda function declared")
    if model.latency.ms is None:
        return BreakEven(None, "needs the warm latency")
    function, billed = model.lambda_, billed_ms(model.latency.ms)
    against = model.gpu_twin[0] if model.gpu is None and model.gpu_twin is not None else None
    target = gpu_usd(gpu, hours, p)
    fixed = lambda_usd(function, billed, 0, hours, p)
    if fixed >= target:
        return BreakEven(0.0, against=against)
    knee = provisioned_rps(function, billed)
    at_knee = lambda_usd(function, billed, knee, hours, p)
    if at_knee >= target:
        return BreakEven(knee * (target - fixed) / (at_knee - fixed), against=against)
    slope = lambda_usd(function, billed, knee + 1, hours, p) - at_knee
    return BreakEven(knee + (target - at_knee) / slope, against=against)


def estimate(model: ModelUsage, rps: float, hours: float, p: Prices) -> ModelCost:
    items: list[LineItem] = []
    if model.lambda_ is not None:
        items += _lambda_items(model.lambda_, model.latency, rps, hours, p)
    items.append(_storage_item(model.artifact_bytes, hours, p))
    if model.gpu is not None:
        node_hours = gpu_node_hours(model.gpu, hours, p)
        items.append(
            LineItem(
                f"GPU nodes ({p.gpu_node_hour.instance_type}, on-demand)",
                f"{model.gpu.min_replicas} min replicas x {hours:g} h = {node_hours:,.0f} "
                "node-hours",
                node_hours * p.gpu_node_hour.usd,
            )
        )
    return ModelCost(model.name, model.latency, items, break_even(model, hours, p))


def _provisioned_usd(function: LambdaUsage, hours: float, p: Prices) -> float:
    gb_s = function.provisioned_min * function.memory_gb * hours * 3600
    return gb_s * p.provisioned_gb_s(function.architecture)


def _lambda_items(
    function: LambdaUsage, latency: WarmLatency, rps: float, hours: float, p: Prices
) -> list[LineItem]:
    requests = requests_in(rps, hours)
    arch = function.architecture
    items = [
        LineItem(
            "Lambda requests",
            f"{requests:,.0f} requests",
            requests / 1e6 * p.lambda_requests_per_million.usd,
        )
    ]
    if latency.ms is None:
        items.append(LineItem(f"Lambda duration ({arch})", "not computed: latency unknown", None))
    else:
        billed = billed_ms(latency.ms)
        gb_s = requests * billed / 1000 * function.memory_gb
        on_provisioned = min(rps, provisioned_rps(function, billed))
        share = on_provisioned / rps if rps else 0.0
        usage = f"{gb_s:,.0f} GB-s ({billed} ms billed x {function.memory_mb} MB)"
        if function.provisioned_min:
            usage += f", {share:.0%} on provisioned"
        items.append(
            LineItem(
                f"Lambda duration ({arch})",
                usage,
                gb_s
                * (share * p.provisioned_duration_gb_s(arch) + (1 - share) * p.duration_gb_s(arch)),
            )
        )
    if function.provisioned_min:
        gb_s = function.provisioned_min * function.memory_gb * hours * 3600
        items.append(
            LineItem(
                f"provisioned concurrency ({arch})",
                f"{function.provisioned_min} x {function.memory_mb} MB x {hours:g} h = "
                f"{gb_s:,.0f} GB-s",
                _provisioned_usd(function, hours, p),
            )
        )
    items.append(
        LineItem(
            "API Gateway REST requests",
            f"{requests:,.0f} requests",
            requests / 1e6 * p.api_gateway_rest_per_million.usd,
        )
    )
    return items


def _storage_item(artifact_bytes: int | None, hours: float, p: Prices) -> LineItem:
    if artifact_bytes is None:
        return LineItem("S3 Standard (model artifact)", "not computed: artifact not built", None)
    gb_month = artifact_bytes / GB * hours / HOURS_PER_MONTH
    return LineItem(
        "S3 Standard (model artifact)",
        f"{artifact_bytes:,} bytes = {gb_month:.6f} GB-month",
        gb_month * p.s3_standard_gb_month.usd,
    )
