"""`inferstack versions | rollout | compare | promote | rollback` on the `local` stack's
digits, through typer's CliRunner: what each reads, the one UpdateAlias call each move
makes, what it prints, and every user error as one line.

FakeLambda stands in for Lambda and an httpx MockTransport for API Gateway
(version_fakes.py), because unit tests cannot start LocalStack; tests/integration runs the
same commands on LocalStack.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from cli.app import app
from cli.versions import default_requests
from model_runtime.manifest import PromotionGate
from tests.unit.cli.version_fakes import (
    FUNCTION,
    KEY,
    FakeApi,
    FakeLambda,
    cells,
    digits_answer,
    invoke,
    label,
    one_error,
)

# --- versions --------------------------------------------------------------------------


def test_versions_table_shows_weights_and_routes(fake: FakeLambda) -> None:
    fake.weights = {"2": 0.1}
    result = invoke("versions")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert cells(result.output, "1") == ["1", "1", "1" * 12, "2026-12-01 10:01", "90 %", "live"]
    below = next(n for n, line in enumerate(lines) if "90 %" in line) + 1
    assert cells(lines[below], "") == ["", "", "", "", "", "/versions/1"]
    assert cells(result.output, "2") == ["2", "2", "2" * 12, "2026-12-01 10:02", "10 %", "live"]
    assert cells(result.output, "3") == ["3", "-", "-", "2026-12-01 10:03", "0 %", "-"]
    assert "routes under /v2/models/digits" in result.output


def test_versions_json_lists_every_published_version(fake: FakeLambda) -> None:
    fake.weights = {"2": 0.1}
    result = invoke("versions", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["version"], r["model_version"], r["weight"]) for r in rows] == [
        (1, "1", 90.0), (2, "2", 10.0), (3, None, 0.0)
    ]  # fmt: skip
    assert rows[0]["routes"] == ["live", "/v2/models/digits/versions/1"]
    assert rows[1]["routes"] == ["live", "/v2/models/digits/versions/2"]
    assert rows[1]["sha256"] == "2" * 32
    assert rows[2]["routes"] == []


def test_a_redeployed_model_version_routes_to_its_newest_lambda_version(
    fake: FakeLambda,
) -> None:
    fake.descriptions = [label("1"), label("1")]
    rows = json.loads(invoke("versions", "--json").output)
    assert [row["routes"] for row in rows] == [["live"], ["/v2/models/digits/versions/1"]]


def test_a_function_that_is_not_there_says_to_deploy(fake: FakeLambda) -> None:
    fake.missing = True
    assert one_error(invoke("versions")) == (
        f"error: function {FUNCTION} or its alias is not in the cloud of stack local:"
        " run `inferstack up --stack local`"
    )


def test_an_unknown_model_is_one_line(fake: FakeLambda) -> None:
    result = CliRunner().invoke(app, ["versions", "--stack", "local", "--model", "nope"])
    assert one_error(result) == (
        "error: stack local has no Lambda model 'nope'; its models: digits, digits-int8"
    )


# --- rollout ---------------------------------------------------------------------------


def test_rollout_sets_a_weighted_canary_in_one_call(fake: FakeLambda) -> None:
    result = invoke("rollout", "--version", "2", "--weight", "10")
    assert result.exit_code == 0, result.output
    assert fake.updates == [
        {
            "FunctionName": FUNCTION,
            "Name": "live",
            "FunctionVersion": "1",
            "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.1}},
        }
    ]
    assert result.output.strip() == (
        "live: digits version 1 (Lambda version 1) 90 %, digits version 2 (Lambda version 2) 10 %"
    )


def test_rollout_to_100_makes_the_candidate_live(fake: FakeLambda) -> None:
    fake.weights = {"2": 0.1}
    result = invoke("rollout", "--version", "2", "--weight", "100")
    assert result.exit_code == 0, result.output
    assert [(u["FunctionVersion"], u["RoutingConfig"]) for u in fake.updates] == [
        ("2", {"AdditionalVersionWeights": {}})
    ]
    assert result.output.strip() == (
        "live: digits version 2 (Lambda version 2) — was version 1 (Lambda version 1)"
    )


def test_rollout_to_0_ends_the_canary(fake: FakeLambda) -> None:
    fake.weights = {"2": 0.25}
    result = invoke("rollout", "--version", "2", "--weight", "0")
    assert result.exit_code == 0, result.output
    assert [(u["FunctionVersion"], u["RoutingConfig"]) for u in fake.updates] == [
        ("1", {"AdditionalVersionWeights": {}})
    ]
    assert fake.weights == {}


@pytest.mark.parametrize("weight", ["150", "-5", "abc", "nan", "100.5"])
def test_a_weight_outside_0_to_100_is_one_line(fake: FakeLambda, weight: str) -> None:
    result = invoke("rollout", "--version", "2", "--weight", weight)
    assert one_error(result) == (
        f"error: --weight has value {weight!r}; allowed: a percent from 0 to 100"
    )
    assert fake.updates == []


def test_an_unknown_version_names_those_there_are(fake: FakeLambda) -> None:
    result = invoke("rollout", "--version", "9", "--weight", "10")
    assert one_error(result) == "error: model 'digits' has no version '9'; versions: '1', '2'"
    assert fake.updates == []


def test_rollout_of_the_live_version_is_refused(fake: FakeLambda) -> None:
    result = invoke("rollout", "--version", "1", "--weight", "10")
    assert one_error(result) == (
        "error: digits version 1 (Lambda version 1) is the live version already"
    )
    assert fake.updates == []


# --- compare ---------------------------------------------------------------------------


def test_compare_reports_each_output_and_latency_as_json(
    fake: FakeLambda, api: FakeApi, requests_file: Path
) -> None:
    result = invoke("compare", "--requests", str(requests_file), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["live"]["model_version"], report["live"]["lambda_version"]) == ("1", 1)
    assert (report["candidate"]["model_version"], report["candidate"]["lambda_version"]) == (
        "2",
        2,
    )
    outputs = {output["name"]: output for output in report["outputs"]}
    assert outputs["probabilities"]["top1_agreement"] == 0.75
    assert outputs["probabilities"]["max_abs_diff"] == pytest.approx(0.7)
    assert outputs["label"]["agreement"] == 0.75
    assert report["live"]["latency"]["requests"] == report["candidate"]["latency"]["requests"] == 4
    # Who goes first alternates, so neither version is always the warmer one.
    assert api.calls == ["1", "2", "2", "1", "1", "2", "2", "1"]
    assert api.keys == {KEY}
    assert fake.updates == []


def test_compare_prints_a_table_per_output_and_one_of_latency(
    fake: FakeLambda, api: FakeApi, requests_file: Path
) -> None:
    result = invoke("compare", "--requests", str(requests_file))
    assert result.exit_code == 0, result.output
    probabilities, label = result.output.split("output label")
    assert "output probabilities" in probabilities
    assert cells(probabilities, "datatype") == ["datatype", "FP32"]
    assert cells(probabilities, "rows") == ["rows", "4"]
    assert cells(probabilities, "top-1 agreement") == ["top-1 agreement", "0.75"]
    assert cells(label, "datatype") == ["datatype", "INT64"]
    assert cells(label, "agreement") == ["agreement", "0.75"]
    assert "top-1 agreement" not in label
    assert cells(result.output, "1 (live)")[:3] == ["1 (live)", "1", "4"]
    assert cells(result.output, "2 (candidate)")[:3] == ["2 (candidate)", "2", "4"]


def test_compare_takes_the_canary_first(
    fake: FakeLambda, api: FakeApi, requests_file: Path
) -> None:
    fake.descriptions = [label("1"), label("2"), label("3")]
    fake.weights = {"2": 0.1}
    api.answers["3"] = lambda row: digits_answer("3", row % 3)
    report = json.loads(invoke("compare", "--requests", str(requests_file), "--json").output)
    assert report["candidate"]["model_version"] == "2"
    fake.weights = {}
    report = json.loads(invoke("compare", "--requests", str(requests_file), "--json").output)
    assert report["candidate"]["model_version"] == "3"  # else the newest


def test_compare_without_another_model_version_is_one_line(
    fake: FakeLambda, requests_file: Path
) -> None:
    fake.descriptions = [label("1"), label("1")]
    assert one_error(invoke("compare", "--requests", str(requests_file))) == (
        "error: digits has no version to compare with the live one: deploy another model"
        " version or give --candidate V"
    )
    assert one_error(invoke("compare", "--candidate", "1", "--requests", str(requests_file))) == (
        "error: live and candidate both serve digits version 1 (Lambda versions 1 and 2):"
        " its route reaches only one of them"
    )


def test_an_error_answer_names_the_version_status_and_error(
    fake: FakeLambda, api: FakeApi, requests_file: Path
) -> None:
    api.answers["2"] = lambda row: httpx.Response(500, json={"error": "model exploded"})
    assert one_error(invoke("compare", "--requests", str(requests_file))) == (
        "error: digits version 2 (Lambda version 2) answered 500 to request 1: model exploded"
    )


def test_a_route_answered_by_another_version_is_one_line(
    fake: FakeLambda, api: FakeApi, requests_file: Path
) -> None:
    api.answers["2"] = api.answers["1"]
    assert one_error(invoke("compare", "--requests", str(requests_file))) == (
        "error: the route of digits version 2 (Lambda version 2) was answered by model"
        " version 1 (request 1): redeploy with `inferstack up`"
    )


def test_a_bad_requests_line_is_named(fake: FakeLambda, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"inputs": []}\n\n{"nope": 1}\n', encoding="utf-8")
    assert one_error(invoke("compare", "--requests", str(path))) == (
        f"error: {path} line 3: not an inference request (a JSON object with inputs)"
    )


def test_default_requests_are_the_models_compare_samples(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import layers.package

    monkeypatch.setattr(layers.package, "project_root", lambda: tmp_path)
    samples = tmp_path / "build" / "samples"
    samples.mkdir(parents=True)
    with pytest.raises(Exception, match="run `inferstack build digits` or give --requests"):
        default_requests("digits")
    (samples / "digits.json").write_text("{}", encoding="utf-8")
    assert default_requests("digits-int8") == samples / "digits.json"
    (samples / "digits.compare.jsonl").write_text("{}", encoding="utf-8")
    assert default_requests("digits") == samples / "digits.compare.jsonl"


# --- promote ---------------------------------------------------------------------------


def test_promote_below_the_gate_is_refused_with_the_number(
    fake: FakeLambda, api: FakeApi, requests_file: Path
) -> None:
    fake.weights = {"2": 0.1}
    result = invoke("promote", "--requests", str(requests_file))
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "error: promote refused: top-1 agreement 0.75 (output probabilities) is below digits"
        " version 2's gate 0.99; --force promotes anyway"
    )
    assert fake.updates == []


def test_promote_force_moves_the_alias_in_one_call(
    fake: FakeLambda, api: FakeApi, requests_file: Path
) -> None:
    result = invoke("promote", "--version", "2", "--force", "--requests", str(requests_file))
    assert result.exit_code == 0, result.output
    assert [(u["FunctionVersion"], u["RoutingConfig"]) for u in fake.updates] == [
        ("2", {"AdditionalVersionWeights": {}})
    ]
    assert "promoting anyway (--force)" in result.output
    assert result.output.strip().splitlines()[-1] == (
        "live: digits version 2 (Lambda version 2) — was version 1 (Lambda version 1)"
    )


def test_promote_passing_the_gate(fake: FakeLambda, api: FakeApi, requests_file: Path) -> None:
    fake.weights = {"2": 0.1}
    api.answers["2"] = lambda row: digits_answer("2", row % 3)
    result = invoke("promote", "--requests", str(requests_file))
    assert result.exit_code == 0, result.output
    assert fake.primary == "2" and fake.weights == {}
    assert len(fake.updates) == 1


def test_a_gate_the_outputs_cannot_judge_refuses(
    fake: FakeLambda, api: FakeApi, requests_file: Path
) -> None:
    cosine = PromotionGate(metric="min_cosine", minimum=0.5)
    fake.descriptions = [label("1"), label("2", cosine)]
    only_label = {"name": "label", "datatype": "INT64", "shape": [1], "data": [0]}

    def labels_of(version: str) -> Callable[[int], httpx.Response]:
        return lambda row: httpx.Response(
            200, json={"model_version": version, "outputs": [only_label]}
        )

    api.answers.update({version: labels_of(version) for version in ("1", "2")})
    result = invoke("promote", "--version", "2", "--requests", str(requests_file))
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "error: promote refused: digits version 2's gate min_cosine cannot be judged: it needs"
        " a float output; outputs: label (INT64); --force promotes anyway"
    )
    assert fake.updates == []


def test_promote_without_a_candidate_is_one_line(fake: FakeLambda) -> None:
    assert one_error(invoke("promote")) == (
        "error: no candidate to promote: the live alias of digits sends no requests to another"
        " version; give --version V (versions: '1', '2')"
    )


# --- rollback --------------------------------------------------------------------------


def test_rollback_goes_to_the_version_before_live(fake: FakeLambda) -> None:
    fake.descriptions = [label("1"), None, label("2")]
    fake.primary, fake.weights = "3", {"1": 0.5}
    result = invoke("rollback")
    assert result.exit_code == 0, result.output
    assert [(u["FunctionVersion"], u["RoutingConfig"]) for u in fake.updates] == [
        ("1", {"AdditionalVersionWeights": {}})
    ]
    assert result.output.strip() == (
        "live: digits version 1 (Lambda version 1) — was version 2 (Lambda version 3)"
    )


def test_rollback_to_a_named_version(fake: FakeLambda) -> None:
    fake.descriptions = [label("1"), label("2"), label("3")]
    fake.primary = "3"
    result = invoke("rollback", "--to", "1")
    assert result.exit_code == 0, result.output
    assert fake.primary == "1"


def test_rollback_with_no_earlier_version_is_one_line(fake: FakeLambda) -> None:
    assert one_error(invoke("rollback")) == (
        "error: no earlier version of digits to roll back to: live is Lambda version 1"
    )
    assert fake.updates == []


def test_rollback_to_the_live_version_is_refused(fake: FakeLambda) -> None:
    fake.primary = "2"
    assert one_error(invoke("rollback", "--to", "2")) == (
        "error: digits version 2 (Lambda version 2) is the live version already"
    )
    assert fake.updates == []


# --- Lambda's answers ------------------------------------------------------------------


def test_weights_read_back_as_whole_percents(fake: FakeLambda) -> None:
    fake.weights = {"2": 0.07}
    rows = json.loads(invoke("versions", "--json").output)
    assert [row["weight"] for row in rows] == [93.0, 7.0, 0.0]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "ResourceConflictException",
            f"Lambda is busy with function {FUNCTION} (ResourceConflictException): try again"
            " in a moment",
        ),
        (
            "AccessDeniedException",
            f"Lambda refused a call on function {FUNCTION}: AccessDeniedException: not you",
        ),
    ],
)
def test_lambda_errors_are_one_line_by_code(
    fake: FakeLambda, monkeypatch: pytest.MonkeyPatch, code: str, message: str
) -> None:
    def refuse(**request: Any) -> dict[str, Any]:
        error = {"Error": {"Code": code, "Message": "not you"}}
        raise ClientError(error, "UpdateAlias")  # type: ignore[arg-type]

    monkeypatch.setattr(fake, "update_alias", refuse)
    assert one_error(invoke("rollout", "--version", "2", "--weight", "5")) == f"error: {message}"


def test_an_unreachable_lambda_is_one_line(
    fake: FakeLambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import EndpointConnectionError

    def unreachable(**request: Any) -> dict[str, Any]:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:4566/")

    monkeypatch.setattr(fake, "list_versions_by_function", unreachable)
    assert one_error(invoke("versions")) == (
        "error: cannot call Lambda for stack local: Could not connect to the endpoint URL:"
        ' "http://127.0.0.1:4566/"'
    )


def test_promote_without_a_gate_promotes_after_comparing(
    fake: FakeLambda, api: FakeApi, requests_file: Path
) -> None:
    fake.descriptions = [label("1"), label("2")]
    result = invoke("promote", "--version", "2", "--requests", str(requests_file))
    assert result.exit_code == 0, result.output
    assert len(api.calls) == 8
    assert fake.primary == "2"


def test_compare_with_an_unknown_candidate_names_the_versions(
    fake: FakeLambda, requests_file: Path
) -> None:
    assert one_error(invoke("compare", "--candidate", "7", "--requests", str(requests_file))) == (
        "error: model 'digits' has no version '7'; versions: '1', '2'"
    )
