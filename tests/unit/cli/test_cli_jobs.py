"""`inferstack jobs submit|status|wait` against a faked API and faked stack outputs: what
is sent, what is printed, and every user error as one line."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from cli.app import app
from cli.errors import UserError
from cli.jobs import jobs_of, poll

URL = "http://127.0.0.1:4566/restapis/a1/local/_user_request_"
JOBS = "/v2/models/digits/jobs"
REQUEST = {"inputs": [{"name": "image", "shape": [1, 2], "datatype": "FP32", "data": [0, 1]}]}
RESPONSE = {
    "model_name": "digits",
    "model_version": "1",
    "outputs": [{"name": "label", "shape": [1], "datatype": "INT64", "data": [7]}],
}


@dataclass
class FakeApi:
    """The stack's API: (method, path) -> answers (status, body), given in turn, the last
    one again once the others are used; every call is recorded."""

    answers: dict[tuple[str, str], list[tuple[int, Any]]] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, method: str, path: str, *answers: tuple[int, Any]) -> None:
        self.answers[(method, path)] = list(answers)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        path = url.removeprefix(URL)
        self.calls.append({"method": method, "path": path, **kwargs})
        queued = self.answers[(method, path)]
        status, body = queued.pop(0) if len(queued) > 1 else queued[0]
        return httpx.Response(status, json=body, request=httpx.Request(method, url))


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    fake = FakeApi()
    monkeypatch.setattr(httpx, "request", fake.request)
    return fake


@pytest.fixture
def request_file(tmp_path: Path) -> Path:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(REQUEST))
    return path


def record(status: str, **fields: Any) -> dict[str, Any]:
    return {"id": "j1", "model": "digits", "status": status, "attempts": 1, **fields}


def inferstack(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), terminal_width=200)


def assert_one_line_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_submit_posts_the_file_and_prints_the_id_and_status_url(
    outputs: dict[str, Any], api: FakeApi, request_file: Path
) -> None:
    api.answer("POST", JOBS, (202, {"id": "j1", "status": "pending", "status_url": f"{JOBS}/j1"}))
    result = inferstack("jobs", "submit", str(request_file), "--model", "digits")
    assert result.exit_code == 0, result.output
    assert [(call["method"], call["path"], call["json"]) for call in api.calls] == [
        ("POST", JOBS, REQUEST)
    ]
    assert api.calls[0]["headers"] == {}
    assert "j1" in result.stdout and "pending" in result.stdout
    assert f"{URL}{JOBS}/j1" in result.stdout
    assert "inferstack jobs wait j1 --stack local --model digits" in result.stderr


def test_submit_sends_the_idempotency_key_and_the_stacks_api_key(
    outputs: dict[str, Any], api: FakeApi, tmp_path: Path
) -> None:
    outputs["apiKeys"] = {"team": "k3y"}
    bare = tmp_path / "arrays.json"
    bare.write_text(json.dumps({"image": [[0, 1]]}))
    metadata = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 2]}]}
    api.answer("GET", "/v2/models/digits", (200, metadata))
    api.answer("POST", JOBS, (202, {"id": "j1", "status": "pending", "status_url": f"{JOBS}/j1"}))
    result = inferstack(
        "jobs", "submit", str(bare), "-m", "digits", "--idempotency-key", "nightly-1", "--json"
    )
    assert result.exit_code == 0, result.output
    get, post = api.calls
    assert get["headers"] == {"x-api-key": "k3y"}
    assert post["headers"] == {"x-api-key": "k3y", "Idempotency-Key": "nightly-1"}
    # Bare arrays become a request with the model's input names and datatypes.
    assert post["json"] == REQUEST
    assert json.loads(result.stdout)["id"] == "j1"


def test_submit_an_input_uri(outputs: dict[str, Any], api: FakeApi) -> None:
    uri = "s3://inferstack-local-jobs-1a2b/jobs/digits/inputs/big.json"
    api.answer("POST", JOBS, (202, {"id": "j2", "status": "pending", "status_url": f"{JOBS}/j2"}))
    result = inferstack("jobs", "submit", "--model", "digits", "--input-uri", uri)
    assert result.exit_code == 0, result.output
    assert api.calls[0]["json"] == {"input_uri": uri}


def test_submit_and_wait_prints_the_result_as_predict_does(
    outputs: dict[str, Any], api: FakeApi, request_file: Path
) -> None:
    api.answer("POST", JOBS, (202, {"id": "j1", "status": "pending", "status_url": f"{JOBS}/j1"}))
    api.answer(
        "GET",
        f"{JOBS}/j1",
        (200, record("pending")),
        (200, record("running")),
        (200, record("succeeded", response=RESPONSE)),
    )
    result = inferstack("jobs", "submit", str(request_file), "-m", "digits", "--wait")
    assert result.exit_code == 0, result.output
    assert [call["method"] for call in api.calls] == ["POST", "GET", "GET", "GET"]
    assert "digits (version 1)" in result.stdout and "label" in result.stdout


def test_a_4xx_at_submit_is_one_line_with_the_apis_error(
    outputs: dict[str, Any], api: FakeApi, request_file: Path
) -> None:
    message = "input 'image': expected shape [-1, 64], got [1, 2]"
    api.answer("POST", JOBS, (400, {"error": message}))
    result = inferstack("jobs", "submit", str(request_file), "--model", "digits")
    assert_one_line_error(result, "answered 400", message)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ([], "give either a request FILE or --input-uri"),
        (["request.json", "--input-uri", "s3://b/k"], "not both"),
        (["missing.json"], "missing.json: no such file"),
    ],
)
def test_submit_arguments_are_checked_first(
    outputs: dict[str, Any], api: FakeApi, args: list[str], needle: str, tmp_path: Path
) -> None:
    (tmp_path / "request.json").write_text(json.dumps(REQUEST))
    paths = [str(tmp_path / arg) if arg.endswith(".json") else arg for arg in args]
    result = inferstack("jobs", "submit", "--model", "digits", *paths)
    assert_one_line_error(result, needle)
    assert api.calls == []


def test_an_unknown_stack_lists_the_stacks(outputs: dict[str, Any]) -> None:
    result = inferstack("jobs", "status", "j1", "--model", "digits", "--stack", "nope")
    assert_one_line_error(result, "no stack named 'nope'", "available stacks:", "local")


def test_an_unknown_model_lists_the_stacks_models(outputs: dict[str, Any]) -> None:
    result = inferstack("jobs", "status", "j1", "--model", "resnet")
    assert_one_line_error(result, "stack local has no model 'resnet'", "digits, digits-int8")


def test_a_model_without_jobs_names_the_models_with_jobs(outputs: dict[str, Any]) -> None:
    result = inferstack("jobs", "wait", "j1", "--model", "digits-int8")
    assert_one_line_error(
        result, "model 'digits-int8' has no jobs", "models with jobs: digits", "`async`"
    )


def test_a_stack_that_is_not_deployed_says_how_to_deploy_it(outputs: dict[str, Any]) -> None:
    outputs.clear()
    result = inferstack("jobs", "status", "j1", "--model", "digits")
    assert_one_line_error(result, "stack local is not deployed", "inferstack up --stack local")


def test_status_prints_the_record_and_the_outputs(outputs: dict[str, Any], api: FakeApi) -> None:
    done = record(
        "succeeded",
        submitted_at="2026-12-01T12:00:00Z",
        finished_at="2026-12-01T12:00:02Z",
        response=RESPONSE,
    )
    api.answer("GET", f"{JOBS}/j1", (200, done))
    result = inferstack("jobs", "status", "j1", "--model", "digits")
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.stdout and "2026-12-01T12:00:02Z" in result.stdout
    assert "label" in result.stdout and "7" in result.stdout


def test_status_of_an_unknown_job_is_the_apis_404(outputs: dict[str, Any], api: FakeApi) -> None:
    api.answer("GET", f"{JOBS}/nope", (404, {"error": "no job 'nope' for model 'digits'"}))
    result = inferstack("jobs", "status", "nope", "--model", "digits")
    assert_one_line_error(result, "answered 404", "no job 'nope' for model 'digits'")


def test_wait_for_a_failed_job_exits_non_zero_with_its_reason(
    outputs: dict[str, Any], api: FakeApi
) -> None:
    failed = record("failed", attempts=3, error={"status": 500, "message": "handler raised"})
    api.answer("GET", f"{JOBS}/j1", (200, record("running")), (200, failed))
    result = inferstack("jobs", "wait", "j1", "--model", "digits")
    assert_one_line_error(result, "job j1 failed: handler raised (status 500)")


def test_wait_past_its_timeout_exits_non_zero(outputs: dict[str, Any], api: FakeApi) -> None:
    api.answer("GET", f"{JOBS}/j1", (200, record("pending")))
    result = inferstack("jobs", "wait", "j1", "--model", "digits", "--timeout", "0")
    assert_one_line_error(result, "job j1 is still pending after 0 s", "inferstack jobs wait j1")


def test_poll_backs_off_to_two_seconds_and_stops_at_the_timeout() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    seen: list[float] = []
    last = poll(
        lambda: now[0],
        lambda _state: False,
        6.0,
        show=lambda _state, elapsed: seen.append(elapsed),
        sleep=sleep,
        clock=lambda: now[0],
    )
    assert slept == [0.25, 0.5, 1.0, 2.0, 2.0, 0.25]
    assert last == 6.0 and seen[-1] == 6.0


def test_poll_returns_the_first_final_answer() -> None:
    answers = iter(["pending", "running", "succeeded", "never asked"])
    last = poll(lambda: next(answers), lambda s: s == "succeeded", 60.0, sleep=lambda _s: None)
    assert last == "succeeded"


def test_the_api_key_is_the_stacks_first_and_absent_without_keys(
    outputs: dict[str, Any],
) -> None:
    assert jobs_of("local", "digits", ["digits"], outputs).headers == {}
    outputs["apiKeys"] = {"team": "k3y", "other": "x"}
    jobs = jobs_of("local", "digits", ["digits"], outputs)
    assert jobs.headers == {"x-api-key": "k3y"}
    assert jobs.outputs["batchPrefix"].endswith("/batches/digits/in/")
    with pytest.raises(UserError, match="no model 'x'"):
        jobs_of("local", "x", ["digits"], outputs)
