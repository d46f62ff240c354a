"""Lambda and API Gateway for the CLI's version commands in unit tests: FakeLambda stands
in for Lambda and an httpx MockTransport for API Gateway (unit tests cannot start
LocalStack; tests/integration runs the same commands on LocalStack). The fixtures that
install them are in conftest.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from botocore.exceptions import ClientError
from typer.testing import CliRunner, Result

from cli.app import app
from model_runtime.manifest import PromotionGate
from model_runtime.versions.label import VersionLabel

FUNCTION = "inferstack-local-digits"
KEY = "k-123"
TOP1_GATE = PromotionGate(metric="top1_agreement", minimum=0.99)


def label(version: str, gate: PromotionGate | None = None, model: str = "digits") -> str:
    return VersionLabel(model, version, f"{version}" * 32, gate).description()


@dataclass
class FakeLambda:
    """ListVersionsByFunction (`page` versions a page, $LATEST among them), GetAlias and
    UpdateAlias of one function's `live` alias; `missing` answers as Lambda does for a
    function that is not there."""

    descriptions: list[str | None]
    primary: str = "1"
    weights: dict[str, float] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    missing: bool = False
    page: int = 2

    def list_versions_by_function(self, FunctionName: str, Marker: str = "0") -> dict[str, Any]:
        self._check(FunctionName, "ListVersionsByFunction")
        items = [{"Version": "$LATEST", "Description": self.descriptions[-1]}]
        items += [
            {
                "Version": str(number),
                "Description": description,
                "LastModified": f"2026-12-01T10:0{number}:00.000+0000",
            }
            for number, description in enumerate(self.descriptions, start=1)
        ]
        start = int(Marker)
        answer: dict[str, Any] = {"Versions": items[start : start + self.page]}
        if start + self.page < len(items):
            answer["NextMarker"] = str(start + self.page)
        return answer

    def get_alias(self, FunctionName: str, Name: str) -> dict[str, Any]:
        self._check(FunctionName, "GetAlias")
        assert Name == "live"
        alias: dict[str, Any] = {"Name": Name, "FunctionVersion": self.primary}
        if self.weights:
            alias["RoutingConfig"] = {"AdditionalVersionWeights": dict(self.weights)}
        return alias

    def update_alias(self, **request: Any) -> dict[str, Any]:
        self._check(request["FunctionName"], "UpdateAlias")
        self.updates.append(request)
        self.primary = request["FunctionVersion"]
        self.weights = dict(request["RoutingConfig"]["AdditionalVersionWeights"])
        return self.get_alias(request["FunctionName"], request["Name"])

    def _check(self, function: str, operation: str) -> None:
        assert function == FUNCTION
        if self.missing:
            error = {
                "Error": {"Code": "ResourceNotFoundException", "Message": "Function not found"}
            }
            raise ClientError(error, operation)  # type: ignore[arg-type]


# model version -> (request number from 0 -> the OIP response)
Answers = dict[str, Callable[[int], httpx.Response]]


@dataclass
class FakeApi:
    """API Gateway in front of the versioned routes: records which version each request
    reached, in order, and the API key it carried."""

    answers: Answers = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    keys: set[str | None] = field(default_factory=set)

    def handle(self, request: httpx.Request) -> httpx.Response:
        *_, model, _, version, verb = request.url.path.split("/")
        assert (model, verb) == ("digits", "infer")
        self.calls.append(version)
        self.keys.add(request.headers.get("x-api-key"))
        row = int(json.loads(request.content)["inputs"][0]["data"][0])
        return self.answers[version](row)


def digits_answer(version: str, top: int, label: int | None = None) -> httpx.Response:
    """A digits response: probabilities over 3 classes peaking at `top`, and its label."""
    probabilities = [0.1, 0.1, 0.1]
    probabilities[top] = 0.8
    return httpx.Response(
        200,
        json={
            "model_name": "digits",
            "model_version": version,
            "outputs": [
                {
                    "name": "probabilities",
                    "datatype": "FP32",
                    "shape": [1, 3],
                    "data": probabilities,
                },
                {
                    "name": "label",
                    "datatype": "INT64",
                    "shape": [1],
                    "data": [top if label is None else label],
                },
            ],
        },
    )


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, [*args[:1], "--stack", "local", "--model", "digits", *args[1:]])


def one_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def cells(output: str, first: str) -> list[str]:
    """The cells of the table row whose first cell is `first`."""
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in output.splitlines()]
    return next(row for row in rows if row and row[0] == first)
