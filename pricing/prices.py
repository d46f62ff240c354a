"""The price file: one price per field, each with the page it was read from and when.

The field names carry the unit (`..._gb_s` per GB-second, `..._per_million` per million
requests), so a file is checked by name and a number cannot be read in the wrong unit.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pricing.errors import PricingError

DEFAULT_PRICES = Path(__file__).with_name("aws-us-east-1.json")
Architecture = Literal["x86_64", "arm64"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(_Strict):
    usd: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    source: Annotated[str, Field(pattern=r"^https?://\S+$")]
    read_on: date
    note: str | None = None


class NodePrice(Price):
    """An hourly node price, and which instance it is: GpuConfig names no instance type."""

    instance_type: Annotated[str, Field(min_length=1)]
    gpus: Annotated[int, Field(ge=1)]


class Prices(_Strict):
    lambda_requests_per_million: Price
    lambda_duration_x86_64_gb_s: Price
    lambda_duration_arm64_gb_s: Price
    lambda_provisioned_x86_64_gb_s: Price
    lambda_provisioned_arm64_gb_s: Price
    lambda_provisioned_duration_x86_64_gb_s: Price
    lambda_provisioned_duration_arm64_gb_s: Price
    api_gateway_rest_per_million: Price
    s3_standard_gb_month: Price
    gpu_node_hour: NodePrice

    def duration_gb_s(self, arch: Architecture) -> float:
        """On-demand duration, per GB-s."""
        return (
            self.lambda_duration_arm64_gb_s if arch == "arm64" else self.lambda_duration_x86_64_gb_s
        ).usd

    def provisioned_gb_s(self, arch: Architecture) -> float:
        """Provisioned concurrency kept ready, per GB-s configured."""
        return (
            self.lambda_provisioned_arm64_gb_s
            if arch == "arm64"
            else self.lambda_provisioned_x86_64_gb_s
        ).usd

    def provisioned_duration_gb_s(self, arch: Architecture) -> float:
        """Duration of an invocation that runs on provisioned concurrency, per GB-s."""
        return (
            self.lambda_provisioned_duration_arm64_gb_s
            if arch == "arm64"
            else self.lambda_provisioned_duration_x86_64_gb_s
        ).usd


class PriceFile(_Strict):
    region: Annotated[str, Field(min_length=1)]
    currency: Literal["USD"]
    source: Annotated[str, Field(min_length=1)]
    read_on: date
    prices: Prices


def load_prices(path: Path = DEFAULT_PRICES) -> PriceFile:
    """Read and validate a price file; an error is one line naming the file and the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PricingError(f"cannot read price file {path}: {exc.strerror}") from exc
    try:
        return PriceFile.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(root)"
        raise PricingError(f"price file {path}: {where}: {first['msg']}") from exc
