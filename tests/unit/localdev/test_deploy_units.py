"""The deploy engine's parts that need no LocalStack: hashing, ordering, refusals, CLI text."""

from __future__ import annotations

import zipfile
from io import BytesIO
from pathlib import Path

import pulumi
import pytest
from typer.testing import CliRunner

from cli import deploy, deployment
from cli.app import app
from infra import automation
from infra.errors import InfraError
from localdev.deploy import NotLocalStackError, Summary, up
from localdev.deploy.assets import archive_zip, canonical, digest, fingerprint
from localdev.deploy.aws import ProviderConfig
from localdev.deploy.engine import Change, _check_supported, _dependents_first
from localdev.deploy.realizers import REALIZERS, not_emulated_reason
from localdev.deploy.state import NotEmulated, ResourceState, StackState
from localdev.errors import DeployError
from model_runtime.settings import RuntimeSettings


def _resource(urn: str, *dependencies: str) -> ResourceState:
    return ResourceState(urn, "aws:s3/bucket:Bucket", urn, urn, "p", {}, "", {}, list(dependencies))


def test_numbers_hash_the_same_as_floats_or_ints() -> None:
    # The mock monitor delivers every number as a float.
    assert canonical({"memorySize": 1024.0, "b": [1.0, 0.5]}) == {"b": [1, 0.5], "memorySize": 1024}
    assert fingerprint(canonical({"t": 10.0})) == fingerprint(canonical({"t": 10}))


def test_an_archive_digest_is_its_content_not_its_place(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.py").write_text("print(1)\n")
    first = pulumi.FileArchive(str(tmp_path / "a"))
    second = pulumi.AssetArchive({"x.py": pulumi.FileAsset(str(tmp_path / "b" / "x.py"))})
    assert digest(first) == digest(second)
    (tmp_path / "b" / "x.py").write_text("print(2)\n")
    assert digest(first) != digest(second)


def test_archives_zip_deterministically(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("x = 1\n")
    archive = pulumi.AssetArchive({"pkg": pulumi.FileArchive(str(tmp_path / "pkg"))})
    data = archive_zip(archive)
    assert data == archive_zip(archive)
    assert zipfile.ZipFile(BytesIO(data)).namelist() == ["pkg/m.py"]


def test_dependents_are_deleted_before_what_they_depend_on() -> None:
    api, resource, method = _resource("api"), _resource("res", "api"), _resource("m", "res", "api")
    bucket = _resource("bucket")
    order = [r.urn for r in _dependents_first([api, bucket, resource, method])]
    assert order.index("m") < order.index("res") < order.index("api")
    assert set(order) == {"api", "bucket", "res", "m"}


def test_a_provider_without_endpoints_is_refused() -> None:
    with pytest.raises(NotLocalStackError, match="only to LocalStack"):
        ProviderConfig.from_inputs("aws", {"region": "us-east-1"})
    config = ProviderConfig.from_inputs(
        "ls", {"endpoints": '[{"s3": "http://127.0.0.1:4566", "lambda": "http://x"}]'}
    )
    with pytest.raises(NotLocalStackError, match="no endpoint for 'iam'"):
        config.endpoint_for("iam")


def test_an_aws_stack_is_refused_before_anything_is_called() -> None:
    with pytest.raises(NotLocalStackError, match="Install the Pulumi CLI"):
        up("dev")


def test_types_without_a_realizer_are_declared_not_emulated() -> None:
    assert not_emulated_reason("aws:lambda/function:Function") is None
    assert "LocalStack community" in str(not_emulated_reason("aws:appautoscaling/target:Target"))
    assert "Kubernetes" in str(not_emulated_reason("kubernetes:apps/v1:Deployment"))
    assert not_emulated_reason("aws:dynamodb/table:Table") is not None
    assert not_emulated_reason("aws:sqs/queue:Queue") is None
    assert not_emulated_reason("aws:sns/topic:Topic") is None


def test_an_input_a_realizer_does_not_apply_is_an_error_not_ignored() -> None:
    realizer = REALIZERS["aws:lambda/function:Function"]
    with pytest.raises(DeployError, match="kmsKeyArn"):
        _check_supported(realizer, {"name": "f", "kmsKeyArn": "arn:aws:kms:..."})
    _check_supported(realizer, {"name": "f", "kmsKeyArn": None, "tags": {"a": "b"}})


def test_state_round_trips(tmp_path: Path) -> None:
    state = StackState(
        "s",
        resources=[_resource("a"), _resource("b", "a")],
        providers={"p": {"region": "us-east-1"}},
        outputs={"url": "http://x"},
        not_emulated=[NotEmulated("kubernetes:apps/v1:Deployment", "d", "no cluster")],
    )
    state.save(tmp_path / "s.json")
    assert StackState.load(tmp_path / "s.json", "s") == state
    assert StackState.load(tmp_path / "missing.json", "m").empty


def test_the_aws_invoke_url_maps_to_localstack() -> None:
    url = "https://abc123.execute-api.us-east-1.amazonaws.com/local"
    assert deployment.localstack_url(url, "http://127.0.0.1:4566/") == (
        "http://127.0.0.1:4566/restapis/abc123/local/_user_request_"
    )
    assert deployment.localstack_url("http://other/x", "http://127.0.0.1:4566") == "http://other/x"


def test_the_sample_curl_sends_the_sample_and_the_key(tmp_path: Path) -> None:
    (tmp_path / "build" / "samples").mkdir(parents=True)
    (tmp_path / "build" / "samples" / "digits.json").write_text("{}")
    outputs = {
        "url": "http://h/restapis/a/s/_user_request_",
        "functions": {"digits": "f"},
        "apiKeys": {"team": "k3y"},
    }
    curl = deploy.sample_curl(outputs, root=tmp_path)
    assert curl is not None
    assert "x-api-key: k3y" in curl
    assert "-d @build/samples/digits.json" in curl
    assert curl.endswith("/v2/models/digits/infer")


def test_the_cli_sends_aws_stacks_to_pulumi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(automation, "available", lambda: False)
    result = CliRunner().invoke(app, ["up", "--stack", "dev", "--no-build"])
    assert result.exit_code == 1
    assert "needs the Pulumi CLI" in result.output
    result = CliRunner().invoke(app, ["status", "--stack", "local", "--engine", "pulumi"])
    assert result.exit_code == 1
    assert "--engine pulumi needs the Pulumi CLI" in result.output


def test_the_passphrase_is_generated_once_and_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in automation.PASSPHRASE_ENV:
        monkeypatch.delenv(key, raising=False)
    first = automation.passphrase(tmp_path)
    assert first == automation.passphrase(tmp_path)
    assert (automation.backend_dir(tmp_path) / "passphrase").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("INFERSTACK_PULUMI_PASSPHRASE", "given")
    assert automation.passphrase(tmp_path) == "given"


def test_the_runtime_takes_opt_paths_as_given() -> None:
    # The runtime knows nothing of LocalStack: its executor rewrites /opt paths in the
    # function's environment (tests/unit/localstack_executor), so nothing maps them here.
    env = {"INFERSTACK_OPT_DIR": "/work/opt-tree/", "MODEL_DIR": "/opt/models/digits"}
    settings = RuntimeSettings.from_env(env)
    assert settings.model_dirs == (Path("/opt/models/digits"),)


def test_the_preview_command_lists_each_change_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    summary = Summary(
        "local",
        "preview",
        (
            Change("same", "aws:s3/bucket:Bucket", "b"),
            Change("replace", "aws:lambda/layerVersion:LayerVersion", "l", reason="code changed"),
            Change("delete", "aws:iam/role:Role", "r", reason="no longer in the program"),
        ),
        (),
        {},
        0.1,
    )
    asked: list[tuple[str, bool]] = []

    def fake_preview(stack: str, engine: deployment.DeployEngine, **kw: object) -> Summary:
        asked.append((stack, bool(kw["build"])))
        return summary

    monkeypatch.setattr(deployment, "preview", fake_preview)
    result = CliRunner().invoke(
        app, ["preview", "--stack", "local", "--no-build"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    assert asked == [("local", False)]
    assert "preview local: 1 to replace, 1 to delete" in result.output
    assert "lambda.LayerVersion" in result.output and "code changed" in result.output
    assert "no longer in the program" in result.output
    assert " b " not in result.output  # unchanged resources are not listed


def test_preview_with_the_pulumi_cli_is_pulumis_own_preview(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Automation API is faked: no Pulumi CLI exists here."""
    monkeypatch.setattr(automation, "available", lambda: True)
    asked: list[str] = []
    monkeypatch.setattr(
        automation, "preview", lambda stack, config, root, echo: asked.append(stack)
    )
    assert deployment.preview("local", build=False, echo=lambda _m: None) is None
    assert asked == ["local"]
    # An AWS stack without its state backend stops before Pulumi is asked anything.
    with pytest.raises(InfraError, match=r"target\.state\.backend_url"):
        deployment.preview("dev", build=False, echo=lambda _m: None)
    assert asked == ["local"]
