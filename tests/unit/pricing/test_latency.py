"""Where a model's warm latency comes from: CloudWatch's number first, else the benchmark
row that measures the model, else unknown; and a broken benchmark file is one error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pricing.errors import PricingError
from pricing.latency import from_benchmarks, from_cloudwatch, warm_latency


def bench(root: Path, name: str, data: Any) -> None:
    directory = root / "build" / "bench"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(data), encoding="utf-8")


RUNTIME = {
    "rows": [
        {"batch": 1, "path": "Engine.infer", "mean_ms": 0.7},
        {"batch": 1, "path": "Lambda handler (API GW event)", "mean_ms": 4.2, "p50_ms": 0.5},
        {"batch": 32, "path": "Lambda handler (API GW event)", "mean_ms": 12.0},
    ]
}
ENCODER = {"warm": {"batch 1 (short text)": {"onnxruntime int8": {"mean_ms": 21.7}}}}


def test_digits_reads_the_handler_row_at_batch_1(tmp_path: Path) -> None:
    bench(tmp_path, "runtime.json", RUNTIME)
    found = from_benchmarks("digits", tmp_path)
    assert found is not None
    assert found.ms == 4.2
    assert found.source.startswith(
        "build/bench/runtime.json: batch 1, 'Lambda handler (API GW event)', mean"
    )
    assert "not on Lambda" in found.source


def test_minilm_int8_reads_the_int8_session_row_and_says_it_is_the_model_call_only(
    tmp_path: Path,
) -> None:
    bench(tmp_path, "encoder.json", ENCODER)
    found = from_benchmarks("minilm-int8", tmp_path)
    assert found is not None
    assert found.ms == 21.7
    assert "build/bench/encoder.json" in found.source
    assert "model call only" in found.source


def test_a_model_no_benchmark_measures_or_a_file_not_written_is_none(tmp_path: Path) -> None:
    bench(tmp_path, "runtime.json", RUNTIME)
    assert from_benchmarks("digits-int8", tmp_path) is None
    assert from_benchmarks("minilm-int8", tmp_path) is None  # encoder.json not written


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "is not valid JSON"),
        (json.dumps({"rows": []}), "has no row batch 1, 'Lambda handler (API GW event)'"),
        (json.dumps({"results": 1}), "has no row"),
        (
            json.dumps(
                {"rows": [{"batch": 1, "path": "Lambda handler (API GW event)", "mean_ms": -1}]}
            ),
            "is not positive",
        ),
    ],
)
def test_a_broken_benchmark_file_is_one_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "build" / "bench").mkdir(parents=True)
    (tmp_path / "build" / "bench" / "runtime.json").write_text(text, encoding="utf-8")
    with pytest.raises(PricingError, match=r"build/bench/runtime\.json") as raised:
        from_benchmarks("digits", tmp_path)
    assert message in str(raised.value)


def test_cloudwatch_comes_first_then_benchmarks_then_unknown(tmp_path: Path) -> None:
    bench(tmp_path, "runtime.json", RUNTIME)
    deployed = from_cloudwatch(12.5, "inferstack-prod-digits", 24)
    assert warm_latency("digits", tmp_path, deployed) == deployed
    assert deployed.source == (
        "CloudWatch AWS/Lambda Duration of inferstack-prod-digits:live, average over the last 24 h"
    )
    assert warm_latency("digits", tmp_path, None).ms == 4.2
    missing = warm_latency("digits-int8", tmp_path, None)
    assert missing.ms is None
    assert missing.source == (
        "unknown: no CloudWatch data, and no benchmark result for digits-int8 in build/bench/"
    )
