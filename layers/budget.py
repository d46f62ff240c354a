"""Lambda's size limits, checked before anything is deployed.

On a violation the error carries the table of every part and what to change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from layers.errors import BudgetError

MAX_LAYERS = 5
# Function code + all its layers, unzipped.
MAX_UNZIPPED_BYTES = 262_144_000  # 250 MB
# A zip passed in the API call itself; bigger ones must be uploaded to S3 first.
MAX_DIRECT_ZIP_BYTES = 52_428_800  # 50 MB
# Ephemeral storage (/tmp), where S3-delivered models land: default and maximum.
DEFAULT_TMP_BYTES = 512 * 1024 * 1024
MAX_TMP_BYTES = 10_240 * 1024 * 1024

# What /tmp holds beyond an S3-delivered model's files: a share of them, and a floor.
TMP_HEADROOM = 0.2
TMP_HEADROOM_BYTES = 64 * 1024 * 1024

Kind = Literal["function", "layer", "s3"]
Delivery = Literal["layer", "s3"]


@dataclass(frozen=True)
class Part:
    name: str
    kind: Kind
    zipped_bytes: int
    unzipped_bytes: int
    status: str = ""

    @property
    def upload(self) -> str:
        if self.kind == "s3":
            return "S3 objects, downloaded to /tmp at cold start"
        return "via S3 (zip > 50 MB)" if self.zipped_bytes > MAX_DIRECT_ZIP_BYTES else "direct"


@dataclass(frozen=True)
class Budget:
    parts: list[Part]
    violations: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)

    @property
    def layers(self) -> int:
        return sum(part.kind == "layer" for part in self.parts)

    @property
    def unzipped_bytes(self) -> int:
        return sum(part.unzipped_bytes for part in self.parts if part.kind != "s3")

    @property
    def ok(self) -> bool:
        return not self.violations

    def rows(self) -> list[dict[str, str]]:
        """The size table as rows of text (for a rich table or plain printing)."""
        rows = [
            {
                "part": part.name,
                "kind": part.kind,
                "zipped": _mb(part.zipped_bytes),
                "unzipped": _mb(part.unzipped_bytes),
                "upload": part.upload,
                "build": part.status,
            }
            for part in self.parts
        ]
        rows.append(
            {
                "part": f"total (function + {self.layers} layer{'s' * (self.layers != 1)})",
                "kind": "",
                "zipped": _mb(sum(p.zipped_bytes for p in self.parts if p.kind != "s3")),
                "unzipped": f"{_mb(self.unzipped_bytes)} of {_mb(MAX_UNZIPPED_BYTES)}",
                "upload": f"{self.layers} of {MAX_LAYERS} layers",
                "build": "OK" if self.ok else "OVER BUDGET",
            }
        )
        return rows

    def table(self) -> str:
        rows = self.rows()
        columns = list(rows[0])
        widths = {c: max(len(c), *(len(row[c]) for row in rows)) for c in columns}
        lines = ["  ".join(c.ljust(widths[c]) for c in columns).rstrip()]
        lines.append("  ".join("-" * widths[c] for c in columns))
        lines += ["  ".join(row[c].ljust(widths[c]) for c in columns).rstrip() for row in rows]
        for violation in self.violations:
            lines.append(f"over budget: {violation}")
        for advice in self.advice:
            lines.append(f"  to fix: {advice}")
        return "\n".join(lines)


def check_budget(parts: Sequence[Part], *, model_quantized: bool | None = None) -> Budget:
    """The parts against Lambda's limits; raises BudgetError (with the table) when over."""
    budget = Budget(list(parts))
    model_layers = [p for p in parts if p.kind == "layer" and p.name.startswith("model")]
    s3_models = [p for p in parts if p.kind == "s3"]
    if budget.layers > MAX_LAYERS:
        budget.violations.append(f"{budget.layers} layers; Lambda allows {MAX_LAYERS}")
        budget.advice.append("merge layers (e.g. several models into one model layer)")
    if budget.unzipped_bytes > MAX_UNZIPPED_BYTES:
        over = budget.unzipped_bytes - MAX_UNZIPPED_BYTES
        budget.violations.append(
            f"function + layers unzip to {_mb(budget.unzipped_bytes)}, over Lambda's"
            f" {_mb(MAX_UNZIPPED_BYTES)} by {_mb(over)}"
        )
        if model_quantized is False:
            budget.advice.append(
                "quantize the model to int8 (`inferstack build` writes <name>-int8; about"
                " 2.5-4x smaller) and package that artifact"
            )
        for layer in model_layers:
            budget.advice.append(
                f"deliver the model from S3 instead of a layer (delivery='s3', MODEL_URI="
                f"s3://<bucket>/<prefix>): frees {_mb(layer.unzipped_bytes)}; it then needs"
                f" /tmp space (ephemeral storage) instead"
            )
        if not model_layers:
            budget.advice.append(
                "the code and runtime layer alone are too big: trim runtime dependencies"
                " or serve from a container image (10 GB limit)"
            )
    for model in s3_models:
        if model.unzipped_bytes > MAX_TMP_BYTES:
            budget.violations.append(
                f"{model.name} needs {_mb(model.unzipped_bytes)} in /tmp; Lambda's"
                f" ephemeral storage is at most {_mb(MAX_TMP_BYTES)}"
            )
            budget.advice.append("quantize the model or serve it from a GPU endpoint")
        elif model.unzipped_bytes > DEFAULT_TMP_BYTES * 0.8:
            budget.advice.append(
                f"{model.name} needs {_mb(model.unzipped_bytes)} in /tmp: leave"
                " lambda.ephemeral_storage_mb unset (sized from the files) or set it above"
                " the 512 MB default"
            )
    if budget.violations:
        raise BudgetError("the Lambda package does not fit:\n" + budget.table())
    return budget


def plan_delivery(parts: Sequence[Part], model_bytes: int) -> Delivery:
    """Where a model of `model_bytes` (unzipped) goes beside `parts` (the function code and
    runtime layer): a layer of its own when that fits Lambda's limits, else S3 (downloaded
    to /tmp at cold start)."""
    layers = sum(part.kind == "layer" for part in parts) + 1
    unzipped = sum(part.unzipped_bytes for part in parts if part.kind != "s3") + model_bytes
    return "layer" if layers <= MAX_LAYERS and unzipped <= MAX_UNZIPPED_BYTES else "s3"


def ephemeral_storage_mb(delivery: Delivery, model_bytes: int) -> int:
    """The /tmp a function needs, in MB (Lambda's unit, MiB): Lambda's default for a model
    in a layer; for one from S3, its files plus headroom, never under the default."""
    if delivery == "layer":
        return DEFAULT_TMP_BYTES // 1_048_576
    needed = model_bytes * (1 + TMP_HEADROOM) + TMP_HEADROOM_BYTES
    return max(DEFAULT_TMP_BYTES // 1_048_576, math.ceil(needed / 1_048_576))


def check_ephemeral_storage(requested_mb: int | None, needed_mb: int, field: str) -> int:
    """The function's ephemeral storage: `requested_mb` when set (`field` in the stack)
    and enough, else the `needed_mb` the artifact needs; raises BudgetError naming the
    field and the size when a requested value is too small."""
    if requested_mb is None:
        return needed_mb
    if requested_mb < needed_mb:
        raise BudgetError(
            f"{field}: {requested_mb} MB is too small for the model, delivered from S3 to"
            f" /tmp; it needs ≥ {needed_mb} MB (its files and headroom); raise it or leave it"
            " unset to have it sized from the artifact"
        )
    return requested_mb


def _mb(size: int) -> str:
    return f"{size / 1_048_576:.1f} MB"
