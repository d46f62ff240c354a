"""`inferstack cost --plot`: monthly cost against request rate, Lambda against the GPU
endpoint, one panel per model. matplotlib (a dev dependency) is imported only here."""

from __future__ import annotations

from pathlib import Path

from pricing.errors import PricingError
from pricing.estimate import ModelUsage, billed_ms, break_even, gpu_usd, lambda_usd
from pricing.prices import Prices

POINTS = 200


def plot_costs(
    models: list[ModelUsage], rps: float, hours: float, prices: Prices, path: Path
) -> list[str]:
    """Write the PNG; return the models left out of it, each with the reason."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: a file only
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PricingError("--plot needs matplotlib: pip install matplotlib") from exc

    drawn = [m for m in models if m.lambda_ is not None and m.latency.ms is not None]
    left_out = [f"{m.name} (no Lambda function)" for m in models if m.lambda_ is None] + [
        f"{m.name} (latency unknown)"
        for m in models
        if m.lambda_ is not None and m.latency.ms is None
    ]
    if not drawn:
        raise PricingError("--plot: no model has both a Lambda function and a known latency")
    figure, axes = plt.subplots(len(drawn), 1, figsize=(8, 3.5 * len(drawn)), squeeze=False)
    for axis, model in zip(axes[:, 0], drawn, strict=True):
        assert model.lambda_ is not None and model.latency.ms is not None
        billed = billed_ms(model.latency.ms)
        even = break_even(model, hours, prices).rps
        top = max(2 * rps, 2 * even if even else 0, 1.0)
        rates = [top * i / (POINTS - 1) for i in range(POINTS)]
        axis.plot(
            rates,
            [lambda_usd(model.lambda_, billed, r, hours, prices) for r in rates],
            label=f"Lambda ({model.lambda_.architecture}, {model.lambda_.memory_mb} MB)",
        )
        compared = model.compared_gpu
        if compared is not None:
            gpu = gpu_usd(compared, hours, prices)
            twin = f"{model.gpu_twin[0]}: " if model.gpu is None and model.gpu_twin else ""
            axis.plot(
                rates,
                [gpu] * len(rates),
                label=f"GPU ({twin}{compared.min_replicas} x {prices.gpu_node_hour.instance_type})",
            )
            if even:
                axis.axvline(
                    even, linestyle=":", color="grey", label=f"break-even {even:,.1f} req/s"
                )
        axis.axvline(rps, linestyle="--", color="black", linewidth=0.8, label=f"{rps:g} req/s")
        axis.set_title(f"{model.name}: {billed} ms billed a request")
        axis.set_xlabel("requests per second")
        axis.set_ylabel(f"USD per {hours:g} h")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
    return left_out
