"""The price file: the shipped one loads, every price names its page and date, and a bad
file is one error naming the file and the field."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pricing.errors import PricingError
from pricing.prices import DEFAULT_PRICES, Price, Prices, load_prices


def shipped() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DEFAULT_PRICES.read_text(encoding="utf-8"))
    return data


def test_the_shipped_file_loads_and_every_price_has_a_source_and_a_date() -> None:
    prices = load_prices()
    assert prices.region == "us-east-1"
    assert prices.source and prices.read_on == date(2026, 12, 1)
    names = list(Prices.model_fields)
    assert len(names) == 10
    for name in names:
        entry = getattr(prices.prices, name)
        assert isinstance(entry, Price)
        assert entry.source.startswith("https://aws.amazon.com/"), name
        assert entry.read_on == date(2026, 12, 1), name


def test_the_issues_prices_are_the_files() -> None:
    p = load_prices().prices
    assert p.lambda_duration_x86_64_gb_s.usd == 0.0000166667
    assert p.lambda_duration_arm64_gb_s.usd == 0.0000133334
    assert p.lambda_requests_per_million.usd == 0.20
    assert p.lambda_provisioned_duration_x86_64_gb_s.usd == 0.0000097222
    assert p.api_gateway_rest_per_million.usd == 3.50
    assert p.gpu_node_hour.instance_type == "g5.xlarge"
    assert p.gpu_node_hour.gpus == 1


def test_the_per_architecture_lookups() -> None:
    p = load_prices().prices
    assert p.duration_gb_s("arm64") == 0.0000133334
    assert p.duration_gb_s("x86_64") == 0.0000166667
    assert p.provisioned_gb_s("arm64") == 0.0000033334
    assert p.provisioned_gb_s("x86_64") == 0.0000041667
    assert p.provisioned_duration_gb_s("arm64") == 0.0000077778
    assert p.provisioned_duration_gb_s("x86_64") == 0.0000097222


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["prices"]["lambda_requests_per_million"].update(usd=-1), "usd"),
        (lambda d: d["prices"]["s3_standard_gb_month"].update(usd="cheap"), "usd"),
        (lambda d: d["prices"]["gpu_node_hour"].pop("source"), "source"),
        (lambda d: d["prices"]["gpu_node_hour"].update(read_on="yesterday"), "read_on"),
        (lambda d: d["prices"]["gpu_node_hour"].pop("instance_type"), "instance_type"),
        (lambda d: d["prices"].pop("api_gateway_rest_per_million"), "api_gateway_rest"),
        (lambda d: d["prices"].update(lambda_typo_gb_s=d["prices"]["gpu_node_hour"]), "typo"),
    ],
)
def test_a_bad_file_is_one_error_naming_the_field(tmp_path: Path, change: Any, field: str) -> None:
    data = shipped()
    change(data)
    path = write(tmp_path, data)
    with pytest.raises(PricingError) as raised:
        load_prices(path)
    message = str(raised.value)
    assert message.startswith(f"price file {path}: prices.")
    assert field in message
    assert "\n" not in message


def test_a_missing_or_unparsable_file_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(PricingError, match="cannot read price file"):
        load_prices(tmp_path / "none.json")
    path = tmp_path / "broken.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(PricingError, match=r"price file .*broken.json: \(root\): Invalid JSON"):
        load_prices(path)
