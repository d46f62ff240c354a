"""cli/compare.py on hand-made OIP responses: each metric against values worked out by
hand, the latency percentiles, the errors for answers that cannot be paired, and the gate."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from cli.compare import (
    CompareReport,
    Latency,
    OutputAgreement,
    Side,
    compare_outputs,
    gate_failure,
)
from cli.errors import UserError
from model_runtime.manifest import PromotionGate


def tensor(name: str, datatype: str, rows: list[Any]) -> dict[str, Any]:
    array = np.asarray(rows)
    return {
        "name": name,
        "datatype": datatype,
        "shape": list(array.shape),
        "data": array.ravel().tolist(),
    }


def response(*outputs: dict[str, Any]) -> dict[str, Any]:
    return {"model_name": "digits", "outputs": list(outputs)}


def only(live: list[dict[str, Any]], candidate: list[dict[str, Any]]) -> OutputAgreement:
    (found,) = compare_outputs(live, candidate)
    return found


def test_cosine_of_known_vectors() -> None:
    live = [response(tensor("embedding", "FP32", [[1, 0], [3, 4], [1, 0], [1, 1]]))]
    candidate = [response(tensor("embedding", "FP32", [[0, 1], [6, 8], [-1, 0], [2, 2]]))]
    found = only(live, candidate)
    # orthogonal, parallel, opposite, parallel
    assert found.min_cosine == pytest.approx(-1.0)
    assert found.mean_cosine == pytest.approx((0 + 1 - 1 + 1) / 4)
    assert found.rows == 4
    assert found.max_abs_diff == pytest.approx(4.0)  # |4 - 8|
    assert found.agreement is None


def test_zero_rows_are_alike_only_when_both_are_zero() -> None:
    live = [response(tensor("embedding", "FP64", [[0, 0], [0, 0]]))]
    candidate = [response(tensor("embedding", "FP64", [[0, 0], [1, 0]]))]
    found = only(live, candidate)
    assert (found.min_cosine, found.mean_cosine) == (0.0, 0.5)


def test_top1_agreement_is_argmax_equality_over_every_request_row() -> None:
    live = [
        response(tensor("probabilities", "FP32", [[0.9, 0.1, 0.0], [0.2, 0.7, 0.1]])),
        response(tensor("probabilities", "FP32", [[0.1, 0.1, 0.8], [0.5, 0.4, 0.1]])),
    ]
    candidate = [
        response(tensor("probabilities", "FP32", [[0.8, 0.2, 0.0], [0.2, 0.6, 0.2]])),
        response(tensor("probabilities", "FP32", [[0.1, 0.2, 0.7], [0.3, 0.6, 0.1]])),
    ]
    found = only(live, candidate)
    assert found.top1_agreement == 0.75  # the last row's argmax moved from 0 to 1
    assert found.rows == 4
    assert found.max_abs_diff == pytest.approx(0.2)


def test_a_last_axis_of_one_has_no_top1() -> None:
    live = [response(tensor("score", "FP32", [[0.3], [0.5]]))]
    candidate = [response(tensor("score", "FP32", [[0.4], [0.5]]))]
    found = only(live, candidate)
    assert found.top1_agreement is None
    assert found.max_abs_diff == pytest.approx(0.1)


def test_integer_outputs_agree_by_exact_equality() -> None:
    live = [response(tensor("label", "INT64", [1, 2])), response(tensor("label", "INT64", [3, 4]))]
    candidate = [
        response(tensor("label", "INT64", [1, 2])),
        response(tensor("label", "INT64", [0, 4])),
    ]
    found = only(live, candidate)
    assert found.agreement == 0.75
    assert found.max_abs_diff == 3.0
    assert (found.top1_agreement, found.min_cosine, found.mean_cosine) == (None, None, None)


def test_string_outputs_agree_by_equality_and_have_no_difference() -> None:
    live = [response(tensor("word", "BYTES", ["cat", "dog"]))]
    candidate = [response(tensor("word", "BYTES", ["cat", "cow"]))]
    found = only(live, candidate)
    assert (found.agreement, found.max_abs_diff) == (0.5, None)


def test_each_output_is_compared_by_name() -> None:
    live = [response(tensor("probabilities", "FP32", [[0.9, 0.1]]), tensor("label", "INT64", [0]))]
    candidate = [
        response(tensor("label", "INT64", [1]), tensor("probabilities", "FP32", [[0.4, 0.6]]))
    ]
    found = {output.name: output for output in compare_outputs(live, candidate)}
    assert found["probabilities"].top1_agreement == 0.0
    assert found["label"].agreement == 0.0


@pytest.mark.parametrize(
    ("candidate", "message"),
    [
        (
            response(tensor("logits", "FP32", [[1.0, 0.0]])),
            "request 1: version 1 answered outputs ['probabilities'], version 2 ['logits']",
        ),
        (
            response(tensor("probabilities", "FP32", [[1.0, 0.0, 0.0]])),
            "request 1: output 'probabilities' is FP32 [1, 2] from version 1 and FP32 [1, 3]"
            " from version 2",
        ),
        (
            response(tensor("probabilities", "INT64", [[1, 0]])),
            "request 1: output 'probabilities' is FP32 [1, 2] from version 1 and INT64 [1, 2]"
            " from version 2",
        ),
    ],
)
def test_answers_that_cannot_be_paired_are_one_line(
    candidate: dict[str, Any], message: str
) -> None:
    live = [response(tensor("probabilities", "FP32", [[0.5, 0.5]]))]
    with pytest.raises(UserError) as raised:
        compare_outputs(live, [candidate], ("version 1", "version 2"))
    assert str(raised.value) == message


def test_latency_percentiles_are_numpys_in_milliseconds() -> None:
    seconds = [0.010, 0.020, 0.030, 0.040, 0.500]
    latency = Latency.of(seconds)
    assert latency.requests == 5
    assert latency.p50_ms == pytest.approx(30.0)
    assert latency.p99_ms == pytest.approx(float(np.percentile([10, 20, 30, 40, 500], 99)))
    assert latency.p99_ms == pytest.approx(40 + 0.96 * 460)  # linear between the top two


def report(*outputs: OutputAgreement) -> CompareReport:
    latency = Latency(4, 1.0, 2.0)
    return CompareReport("digits", Side("1", 3, latency), Side("2", 5, latency), outputs)


def agreement(name: str, datatype: str = "FP32", **metrics: float) -> OutputAgreement:
    fields: dict[str, Any] = dict.fromkeys(
        ("top1_agreement", "min_cosine", "mean_cosine", "max_abs_diff", "agreement")
    )
    fields.update(metrics)
    return OutputAgreement(name, datatype, 100, **fields)


def test_the_gate_passes_at_its_minimum() -> None:
    found = report(agreement("probabilities", top1_agreement=0.99, min_cosine=0.9))
    assert gate_failure(found, PromotionGate(metric="top1_agreement", minimum=0.99)) is None
    assert gate_failure(found, PromotionGate(metric="min_cosine", minimum=0.9)) is None


def test_a_failed_gate_names_the_number_and_the_output() -> None:
    found = report(
        agreement("probabilities", top1_agreement=0.953, min_cosine=0.999),
        agreement("scores", top1_agreement=0.97, min_cosine=0.95),
        agreement("label", "INT64", agreement=0.5),
    )
    top1 = gate_failure(found, PromotionGate(metric="top1_agreement", minimum=0.99))
    assert top1 == (
        "top-1 agreement 0.953 (output probabilities) is below digits version 2's gate 0.99"
    )
    cosine = gate_failure(found, PromotionGate(metric="min_cosine", minimum=0.99))
    assert cosine == "min cosine 0.95 (output scores) is below digits version 2's gate 0.99"


def test_a_gate_no_output_can_judge_fails() -> None:
    found = report(agreement("label", "INT64", agreement=1.0, max_abs_diff=0.0))
    reason = gate_failure(found, PromotionGate(metric="min_cosine", minimum=0.5))
    assert reason == (
        "digits version 2's gate min_cosine cannot be judged: it needs a float output;"
        " outputs: label (INT64)"
    )
    reason = gate_failure(found, PromotionGate(metric="top1_agreement", minimum=0.5))
    assert reason is not None and "top1_agreement cannot be judged" in reason


def test_nan_fails_the_gate() -> None:
    found = report(agreement("embedding", min_cosine=math.nan), agreement("other", min_cosine=0.99))
    reason = gate_failure(found, PromotionGate(metric="min_cosine", minimum=0.5))
    assert reason == "min cosine nan (output embedding) is below digits version 2's gate 0.5"


def test_the_report_is_json() -> None:
    live = [response(tensor("probabilities", "FP32", [[0.9, 0.1]]))]
    outputs = compare_outputs(live, live)
    latency = Latency.of([0.01])
    found = CompareReport("digits", Side("1", 3, latency), Side("2", 5, latency), outputs)
    decoded = json.loads(json.dumps(found.to_json()))
    assert decoded["candidate"] == {
        "model_version": "2",
        "lambda_version": 5,
        "latency": {"requests": 1, "p50_ms": 10.0, "p99_ms": 10.0},
    }
    assert decoded["outputs"][0]["top1_agreement"] == 1.0
    assert decoded["outputs"][0]["min_cosine"] == pytest.approx(1.0)
