"""`--plot`: a PNG of monthly cost against request rate, models it cannot draw named."""

from __future__ import annotations

from pathlib import Path

import pytest

from pricing.errors import PricingError
from pricing.estimate import GpuUsage, LambdaUsage, ModelUsage
from pricing.latency import WarmLatency, unknown
from pricing.plot import plot_costs
from pricing.prices import load_prices


def test_the_plot_is_a_png_and_names_what_it_left_out(tmp_path: Path) -> None:
    known = ModelUsage(
        "digits", WarmLatency(4.2, "a test"), 1, LambdaUsage(2048, "x86_64", 2), GpuUsage(2, 1)
    )
    unknown_latency = ModelUsage("d8", unknown("a test"), 1, LambdaUsage(1024, "x86_64"), None)
    gpu_only = ModelUsage("g", unknown("a test"), 1, None, GpuUsage(1, 1))
    path = tmp_path / "cost.png"
    left_out = plot_costs([known, unknown_latency, gpu_only], 20, 730, load_prices().prices, path)
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert left_out == ["g (no Lambda function)", "d8 (latency unknown)"]


def test_nothing_to_draw_is_an_error(tmp_path: Path) -> None:
    model = ModelUsage("d8", unknown("a test"), 1, LambdaUsage(1024, "x86_64"), None)
    with pytest.raises(PricingError, match="no model has both"):
        plot_costs([model], 20, 730, load_prices().prices, tmp_path / "cost.png")
    assert not (tmp_path / "cost.png").exists()
