"""How command results look: rich tables and the lines around them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:
    from layers.package import PackageResult
    from model_build.build import BuildResult


def build_table(title: str, results: Sequence[BuildResult]) -> Table:
    table = Table(title=title)
    for column in ("artifact", "status", "size", "parity max abs", "accuracy", "top-1 vs fp32"):
        table.add_column(column, justify="left" if column in ("artifact", "status") else "right")
    for result in results:
        manifest = result.manifest
        size = sum(entry.size for entry in manifest.files.values())
        quant = manifest.quantization
        table.add_row(
            str(result.directory),
            result.status,
            f"{size / 1024:.0f} KiB",
            f"{manifest.parity.max_abs_error:.2e} vs {manifest.parity.reference.split(' ')[0]}",
            f"{manifest.evaluation.accuracy:.2%}" if manifest.evaluation else "-",
            f"{quant.top1_agreement:.2%}" if quant and quant.top1_agreement is not None else "-",
        )
    return table


def exporter_log_note(log: Path) -> str:
    return f"exporter warnings logged to {log}"


def package_table(result: PackageResult, delivery: str) -> Table:
    target = result.target
    table = Table(
        title=f"Lambda package: {result.model.name} ({target.runtime}, {target.arch}, {delivery})"
    )
    rows = result.budget.rows()
    for column in rows[0]:
        table.add_column(column, justify="right" if column in ("zipped", "unzipped") else "left")
    for row in rows:
        table.add_row(*row.values())
    return table


def response_table(response: dict[str, Any], max_values: int = 10) -> Table:
    table = Table(title=f"{response.get('model_name')} (version {response.get('model_version')})")
    for column in ("output", "datatype", "shape", "data"):
        table.add_column(column)
    for output in response.get("outputs", []):
        data = output["data"]
        shown = ", ".join(_format_value(v) for v in data[:max_values])
        table.add_row(
            output["name"],
            output["datatype"],
            str(output["shape"]),
            shown + (" ..." if len(data) > max_values else ""),
        )
    return table


def _format_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
