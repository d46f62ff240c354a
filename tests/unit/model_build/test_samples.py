"""The requests `inferstack build` saves beside the artifacts: one sample for `predict`
and the demo, and the set `inferstack compare` sends to two versions by default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from model_build.build import COMPARE_REQUESTS, compare_path, sample_path, write_sample
from model_build.spec import EvalData, ModelSpec


def spec_with(rows: int) -> ModelSpec:
    images = np.arange(rows * 4, dtype=np.float32).reshape(rows, 1, 2, 2)
    return ModelSpec(
        name="m",
        module=None,
        example_inputs={"image": images[:2]},
        output_names=["probabilities"],
        eval_data=EvalData({"image": images}, np.arange(rows) % 3, "held out"),
    )


def requests_in(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_one_sample_and_one_compare_request_per_held_out_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = spec_with(5)
    write_sample(spec)
    sample = json.loads(sample_path("m").read_text())
    assert sample["inputs"][0]["data"] == [0.0, 1.0, 2.0, 3.0]
    assert sample["parameters"] == {"expected_label": 0}
    requests = requests_in(compare_path("m"))
    assert [r["inputs"][0]["shape"] for r in requests] == [[1, 1, 2, 2]] * 5
    assert requests[4]["inputs"][0]["data"] == [16.0, 17.0, 18.0, 19.0]


def test_the_compare_set_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_sample(spec_with(COMPARE_REQUESTS + 7))
    assert len(requests_in(compare_path("m"))) == COMPARE_REQUESTS
