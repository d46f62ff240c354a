"""The jobs and batch outputs of a stack: how `up` prints them, how they are read back for
the jobs and batch commands, and the S3 client those commands use."""

from __future__ import annotations

from typing import Any

import pytest

from cli import deploy, deployment
from cli.deployment import DeployEngine, Deployment
from infra import automation
from localdev.deploy import engine as local_engine
from localdev.deploy.engine import StackStatus

AWS_URL = "https://abc123.execute-api.us-east-1.amazonaws.com/local"
LOCAL_URL = "http://127.0.0.1:4566/restapis/abc123/local/_user_request_"


def test_up_prints_each_models_jobs_url_and_batch_prefix_beside_the_api(
    outputs: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    outputs["jobs"]["digits-int8"] = {"jobsUrl": f"{LOCAL_URL}/v2/models/digits-int8/jobs"}
    deploy.print_deployment(Deployment("local", outputs, 1.0, None))
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    rows = [line for line in lines if line and line[0] in ("API", "jobs", "batches", "function")]
    assert rows[:4] == [
        ["API", outputs["url"]],
        ["jobs", "digits", outputs["jobs"]["digits"]["jobsUrl"]],
        ["batches", "digits", "s3://inferstack-local-jobs-1a2b/batches/digits/in/"],
        # No batch section: no batches row.
        ["jobs", "digits-int8", f"{LOCAL_URL}/v2/models/digits-int8/jobs"],
    ]
    assert rows[4][0] == "function"


def test_up_prints_no_jobs_rows_for_a_stack_without_jobs(
    outputs: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    del outputs["jobs"]
    deploy.print_deployment(Deployment("local", outputs, 1.0, None))
    printed = capsys.readouterr().out
    assert "API" in printed and "jobs" not in printed and "batches" not in printed


def test_a_localstack_url_keeps_its_path() -> None:
    assert deployment.localstack_url(f"{AWS_URL}/v2/models/digits/jobs", "http://h:4566/") == (
        "http://h:4566/restapis/abc123/local/_user_request_/v2/models/digits/jobs"
    )


def test_outputs_from_pulumi_are_rewritten_for_localstack(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Automation API is faked: no Pulumi CLI exists here."""
    monkeypatch.setattr(automation, "available", lambda: True)
    recorded = {
        "url": AWS_URL,
        "jobs": {
            "digits": {
                "jobsUrl": f"{AWS_URL}/v2/models/digits/jobs",
                "batchPrefix": "s3://b/batches/digits/in/",
            }
        },
    }
    monkeypatch.setattr(automation, "outputs", lambda stack, config, root: recorded)
    found = deployment.outputs("local", DeployEngine.pulumi)
    assert found["url"] == LOCAL_URL
    assert found["jobs"]["digits"] == {
        "jobsUrl": f"{LOCAL_URL}/v2/models/digits/jobs",
        "batchPrefix": "s3://b/batches/digits/in/",
    }
    assert recorded["url"] == AWS_URL  # the recorded outputs are left as they are


def test_outputs_from_the_local_engine_check_nothing_in_the_cloud(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[str, bool]] = []

    def status(stack: str, *, root: Any, verify: bool = True) -> StackStatus:
        asked.append((stack, verify))
        return StackStatus(stack, None, False, (), {"url": LOCAL_URL}, ())

    monkeypatch.setattr(local_engine, "status", status)
    assert deployment.outputs("local", DeployEngine.local) == {"url": LOCAL_URL}
    assert asked == [("local", False)]


def test_the_s3_client_of_a_localstack_stack_is_localstacks() -> None:
    client = deployment.s3_client("local")
    assert client.meta.endpoint_url == "http://127.0.0.1:4566"
    assert client.meta.region_name == "us-east-1"
    assert client.meta.config.s3 == {"addressing_style": "path"}
