"""The estimate against hand computations, with the literal us-east-1 prices written out:
each line item, the rounding of duration, provisioned concurrency's share of requests, the
unknown-latency path and the GPU break-even rate."""

from __future__ import annotations

import pytest

from pricing.estimate import (
    GpuUsage,
    LambdaUsage,
    ModelUsage,
    billed_ms,
    break_even,
    estimate,
    gpu_usd,
    lambda_usd,
)
from pricing.latency import WarmLatency, unknown
from pricing.prices import Prices, load_prices

HOURS = 730
RPS = 20
# 20 requests/s for 730 h
REQUESTS = 20 * 730 * 3600
assert REQUESTS == 52_560_000


@pytest.fixture(scope="module")
def prices() -> Prices:
    return load_prices().prices


def model(
    latency_ms: float | None,
    function: LambdaUsage | None,
    gpu: GpuUsage | None = None,
    artifact_bytes: int | None = 2 * 1024**3,
) -> ModelUsage:
    latency = WarmLatency(latency_ms, "a test") if latency_ms is not None else unknown("a test")
    return ModelUsage("m", latency, artifact_bytes, function, gpu)


def items(cost: object) -> dict[str, float | None]:
    return {item.item: item.usd for item in cost.items}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("latency", "billed"), [(4.0, 4), (4.001, 5), (4.999, 5), (0.3, 1), (0.0, 1), (100.2, 101)]
)
def test_duration_is_rounded_up_to_the_millisecond(latency: float, billed: int) -> None:
    assert billed_ms(latency) == billed


def test_a_provisioned_x86_model_with_a_gpu_endpoint_by_hand(prices: Prices) -> None:
    # digits in stacks/prod.py: 2048 MB x86_64, 2 provisioned, 2 GPU replicas; 4.2 ms warm.
    usage = model(
        4.2,
        LambdaUsage(memory_mb=2048, architecture="x86_64", provisioned_min=2),
        GpuUsage(min_replicas=2, gpus_per_replica=1),
    )
    cost = estimate(usage, RPS, HOURS, prices)

    requests_usd = 52.56 * 0.20  # million requests x $0.20
    # 4.2 ms bills as 5 ms; 2048 MB is 2 GB.
    gb_s = 52_560_000 * 0.005 * 2
    assert gb_s == 525_600
    # 2 environments busy 5 ms a request serve 400 requests/s: all 20 run on provisioned
    # concurrency, at its duration rate.
    duration_usd = 525_600 * 0.0000097222
    provisioned_usd = 2 * 2 * 730 * 3600 * 0.0000041667  # 10,512,000 GB-s
    api_usd = 52.56 * 3.50
    s3_usd = 2 * 0.023  # 2 GB for a 730 h month
    gpu = 2 * 730 * 1.006  # node-hours x g5.xlarge

    assert items(cost) == {
        "Lambda requests": pytest.approx(requests_usd),
        "Lambda duration (x86_64)": pytest.approx(duration_usd),
        "provisioned concurrency (x86_64)": pytest.approx(provisioned_usd),
        "API Gateway REST requests": pytest.approx(api_usd),
        "S3 Standard (model artifact)": pytest.approx(s3_usd),
        "GPU nodes (g5.xlarge, on-demand)": pytest.approx(gpu),
    }
    assert requests_usd == pytest.approx(10.512)
    assert duration_usd == pytest.approx(5.10998832)
    assert provisioned_usd == pytest.approx(43.8003504)
    assert api_usd == pytest.approx(183.96)
    assert gpu == pytest.approx(1468.76)
    total = requests_usd + duration_usd + provisioned_usd + api_usd + s3_usd + gpu
    assert cost.usd == pytest.approx(total)
    assert cost.usd == pytest.approx(1712.188173)
    assert cost.complete


def test_provisioned_spillover_is_billed_on_demand_by_hand(prices: Prices) -> None:
    # arm64, 1024 MB, 1 provisioned environment, 100.2 ms warm (billed 101 ms).
    function = LambdaUsage(memory_mb=1024, architecture="arm64", provisioned_min=1)
    cost = estimate(model(100.2, function), RPS, HOURS, prices)

    gb_s = 52_560_000 * 0.101 * 1
    on_provisioned = (1 / 0.101) / 20  # one environment serves 9.90 of the 20 requests/s
    duration_usd = gb_s * (on_provisioned * 0.0000077778 + (1 - on_provisioned) * 0.0000133334)
    provisioned_usd = 1 * 1 * 730 * 3600 * 0.0000033334
    assert items(cost)["Lambda duration (arm64)"] == pytest.approx(duration_usd)
    assert duration_usd == pytest.approx(56.181037)
    assert items(cost)["provisioned concurrency (arm64)"] == pytest.approx(provisioned_usd)
    assert provisioned_usd == pytest.approx(8.7601752)


def test_without_provisioned_concurrency_all_duration_is_on_demand(prices: Prices) -> None:
    cost = estimate(model(4.2, LambdaUsage(1024, "x86_64")), RPS, HOURS, prices)
    assert items(cost)["Lambda duration (x86_64)"] == pytest.approx(
        52_560_000 * 0.005 * 0.0000166667
    )
    assert "provisioned concurrency (x86_64)" not in items(cost)


def test_the_lambda_items_add_up_to_the_lambda_sum_break_even_uses(prices: Prices) -> None:
    function = LambdaUsage(memory_mb=1024, architecture="arm64", provisioned_min=1)
    cost = estimate(model(100.2, function, artifact_bytes=0), RPS, HOURS, prices)
    assert cost.usd == pytest.approx(lambda_usd(function, 101, RPS, HOURS, prices))


def test_an_unknown_latency_computes_no_duration_and_says_so(prices: Prices) -> None:
    usage = model(None, LambdaUsage(1024, "x86_64"), GpuUsage(1, 1))
    cost = estimate(usage, RPS, HOURS, prices)
    duration = next(item for item in cost.items if item.item == "Lambda duration (x86_64)")
    assert duration.usd is None
    assert duration.usage == "not computed: latency unknown"
    assert not cost.complete
    assert cost.usd == pytest.approx(52.56 * 0.20 + 52.56 * 3.50 + 2 * 0.023 + 730 * 1.006)
    assert cost.break_even.rps is None
    assert cost.break_even.reason == "needs the warm latency"


def test_an_artifact_not_built_is_not_computed(prices: Prices) -> None:
    cost = estimate(model(4.2, LambdaUsage(1024, "x86_64"), artifact_bytes=None), 1, 1, prices)
    storage = items(cost)["S3 Standard (model artifact)"]
    assert storage is None
    assert not cost.complete


def test_storage_is_prorated_to_the_period(prices: Prices) -> None:
    cost = estimate(model(4.2, LambdaUsage(1024, "x86_64")), 0, 73, prices)
    assert items(cost)["S3 Standard (model artifact)"] == pytest.approx(2 * 0.023 * 73 / 730)
    assert items(cost)["Lambda requests"] == 0


def test_break_even_without_provisioned_concurrency_by_hand(prices: Prices) -> None:
    usage = model(4.2, LambdaUsage(1024, "x86_64"), GpuUsage(min_replicas=1, gpus_per_replica=1))
    gpu = 1 * 730 * 1.006
    # Lambda's cost per request/s for a month: requests, API Gateway and 5 ms at 1 GB.
    per_rps = 730 * 3600 * (0.20 / 1e6 + 3.50 / 1e6 + 0.005 * 1 * 0.0000166667)
    assert per_rps == pytest.approx(9.942600)
    even = break_even(usage, HOURS, prices)
    assert even.rps == pytest.approx(gpu / per_rps)
    assert even.rps == pytest.approx(73.862, abs=1e-3)
    assert lambda_usd(LambdaUsage(1024, "x86_64"), 5, even.rps, HOURS, prices) == pytest.approx(
        gpu_usd(GpuUsage(1, 1), HOURS, prices)
    )


def test_break_even_past_the_provisioned_knee(prices: Prices) -> None:
    # 1 provisioned environment at 5 ms serves 200 requests/s: the break-even lies beyond.
    function = LambdaUsage(memory_mb=1024, architecture="x86_64", provisioned_min=1)
    usage = model(4.2, function, GpuUsage(min_replicas=3, gpus_per_replica=1))
    seconds = 730 * 3600
    fixed = 1 * 1 * seconds * 0.0000041667
    on_provisioned = seconds * (0.20 / 1e6 + 3.50 / 1e6 + 0.005 * 0.0000097222)
    on_demand = seconds * (0.20 / 1e6 + 3.50 / 1e6 + 0.005 * 0.0000166667)
    gpu = 3 * 730 * 1.006
    knee = 200
    assert fixed + knee * on_provisioned < gpu
    expected = knee + (gpu - fixed - knee * on_provisioned) / on_demand
    assert break_even(usage, HOURS, prices).rps == pytest.approx(expected)


def test_break_even_before_the_knee_and_at_zero(prices: Prices) -> None:
    function = LambdaUsage(memory_mb=2048, architecture="x86_64", provisioned_min=50)
    seconds = 730 * 3600
    fixed = 50 * 2 * seconds * 0.0000041667
    slope = seconds * (0.20 / 1e6 + 3.50 / 1e6 + 0.005 * 2 * 0.0000097222)
    usage = model(4.2, function, GpuUsage(min_replicas=2, gpus_per_replica=1))
    gpu = 2 * 730 * 1.006
    assert break_even(usage, HOURS, prices).rps == pytest.approx((gpu - fixed) / slope)
    # 500 provisioned GB: Lambda's fixed cost alone is above one GPU node's.
    big = LambdaUsage(memory_mb=10240, architecture="x86_64", provisioned_min=100)
    assert break_even(model(4.2, big, GpuUsage(1, 1)), HOURS, prices).rps == 0.0


def test_break_even_needs_both_paths(prices: Prices) -> None:
    assert break_even(model(4.2, LambdaUsage(1024, "x86_64")), HOURS, prices).reason == (
        "no GPU endpoint declared"
    )
    assert break_even(model(None, None, GpuUsage(1, 1)), HOURS, prices).reason == (
        "no Lambda function declared"
    )


def test_a_replica_of_more_gpus_than_a_node_takes_more_nodes(prices: Prices) -> None:
    # g5.xlarge has 1 GPU: a 2-GPU replica is counted as 2 nodes.
    assert gpu_usd(GpuUsage(min_replicas=3, gpus_per_replica=2), 10, prices) == pytest.approx(
        3 * 2 * 10 * 1.006
    )


def test_a_lambda_model_is_compared_with_the_gpu_served_twin_of_its_artifact(
    prices: Prices,
) -> None:
    from pricing.usage import gpu_twins
    from stacks.schema import GpuConfig, LambdaConfig, ModelConfig

    lambda_model = ModelConfig(name="digits", lambda_=LambdaConfig())
    gpu_served = ModelConfig(
        name="digits-gpu", artifact="build/models/digits", gpu=GpuConfig(image="r/i:1")
    )
    other = ModelConfig(name="other", lambda_=LambdaConfig())
    assert gpu_twins([lambda_model, gpu_served, other]) == {"digits": gpu_served}
    alone = model(4.2, LambdaUsage(1024, "x86_64"))
    assert break_even(alone, HOURS, prices).reason == "no GPU endpoint declared"
    twin = GpuUsage(min_replicas=1, gpus_per_replica=1)
    paired = ModelUsage(**{**vars(alone), "gpu_twin": ("digits-gpu", twin)})
    with_own = model(4.2, LambdaUsage(1024, "x86_64"), twin)
    even = break_even(paired, HOURS, prices)
    assert even.rps == pytest.approx(break_even(with_own, HOURS, prices).rps)
    assert even.against == "digits-gpu"
    # The twin's nodes are the twin's bill, not this model's.
    assert "GPU nodes" not in " ".join(items(estimate(paired, RPS, HOURS, prices)))
