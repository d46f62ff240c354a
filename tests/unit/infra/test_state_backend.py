"""An AWS stack's Pulumi state and secrets: named in its config, never a generated local
default. The config errors name the field and what is allowed; the Automation API gets
the workspace options the config says (built here without any Pulumi CLI)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra import automation
from infra.errors import StateBackendError
from infra.evaluate import Evaluation
from infra.stack_loader import describe_validation_error, load_stack
from stacks.schema import AwsTarget, StackConfig, StateConfig

S3_BACKEND = "s3://acme-pulumi-state/inferstack?region=eu-west-1"
KMS = "awskms://alias/inferstack-state?region=eu-west-1"
NO_PASSPHRASE: dict[str, str] = {}


def aws_stack(state: StateConfig, **target: object) -> StackConfig:
    dev = load_stack("dev")
    return dev.model_copy(
        update={
            "target": AwsTarget.model_validate({"region": "eu-west-1", "state": state, **target})
        }
    )


def state_error(**fields: object) -> str:
    with pytest.raises(ValidationError) as caught:
        StateConfig.model_validate(fields)
    return describe_validation_error(caught.value)


@pytest.mark.parametrize(
    ("fields", "field", "allowed"),
    [
        ({"backend_url": "gs://bucket/state"}, "target.state.backend_url", "s3://<bucket>"),
        ({"backend_url": "s3://"}, "target.state.backend_url", "https://api.pulumi.com"),
        ({"secrets_provider": "plain"}, "target.state.secrets_provider", "awskms://alias/"),
    ],
)
def test_an_unknown_backend_or_secrets_provider_names_the_field_and_what_is_allowed(
    fields: dict[str, object], field: str, allowed: str
) -> None:
    message = state_error(**fields)
    assert message.startswith(f"{field}: ")
    assert "allowed" in message and allowed in message


def test_a_local_file_backend_needs_the_explicit_flag() -> None:
    message = state_error(backend_url="file:///var/pulumi", secrets_provider=KMS)
    assert "target.state.backend_url 'file:///var/pulumi' is a local file backend" in message
    assert "target.state.allow_local_state=True" in message
    assert "s3://<bucket>/<prefix>?region=<region>, https://api.pulumi.com" in message
    allowed = StateConfig(
        backend_url="file:///var/pulumi", secrets_provider=KMS, allow_local_state=True
    )
    assert allowed.backend_url == "file:///var/pulumi"


def test_pulumi_clouds_own_secrets_need_pulumi_cloud() -> None:
    message = state_error(backend_url=S3_BACKEND, secrets_provider="default")
    assert "target.state.secrets_provider 'default'" in message and "https://" in message
    StateConfig(backend_url="https://api.pulumi.com", secrets_provider="default")


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_dev_and_prod_load_but_do_not_deploy_until_their_state_is_set(
    name: str, tmp_path: Path
) -> None:
    config = load_stack(name)
    assert isinstance(config.target, AwsTarget)
    with pytest.raises(StateBackendError) as caught:
        automation.workspace(name, config, tmp_path, NO_PASSPHRASE)
    message = str(caught.value)
    assert message.startswith(f"stacks/{name}.py: target.state.backend_url is not set")
    assert "s3://<bucket>/<prefix>?region=<region>, https://api.pulumi.com" in message
    # Nothing was generated for it.
    assert not automation.backend_dir(tmp_path).exists()


def test_an_unset_secrets_provider_is_named_too(tmp_path: Path) -> None:
    config = aws_stack(StateConfig(backend_url=S3_BACKEND))
    with pytest.raises(StateBackendError, match=r"target\.state\.secrets_provider is not set"):
        automation.workspace("dev", config, tmp_path, NO_PASSPHRASE)


def test_an_aws_stack_runs_on_the_backend_and_key_its_config_names(tmp_path: Path) -> None:
    config = aws_stack(StateConfig(backend_url=S3_BACKEND, secrets_provider=KMS))
    settings = automation.workspace("dev", config, tmp_path, {"PULUMI_CONFIG_PASSPHRASE": "x"})
    assert settings.backend_url == S3_BACKEND
    assert settings.secrets_provider == KMS
    assert settings.env["PULUMI_BACKEND_URL"] == S3_BACKEND
    # KMS encrypts the secrets: no passphrase is handed on, none is generated.
    assert "PULUMI_CONFIG_PASSPHRASE" not in settings.env
    assert not automation.backend_dir(tmp_path).exists()
    options = automation.workspace_options(settings, tmp_path)
    assert options.work_dir == str(tmp_path)
    assert options.secrets_provider == KMS
    assert dict(options.env_vars or {})["PULUMI_BACKEND_URL"] == S3_BACKEND
    # Pulumi.yaml is used as written: no project settings to write over it.
    assert options.project_settings is None


def test_an_aws_stacks_passphrase_comes_from_the_environment_only(tmp_path: Path) -> None:
    state = StateConfig(
        backend_url=(tmp_path / "state").as_uri(),
        secrets_provider="passphrase",
        allow_local_state=True,
    )
    config = aws_stack(state)
    with pytest.raises(StateBackendError) as caught:
        automation.workspace("dev", config, tmp_path, NO_PASSPHRASE)
    assert "target.state.secrets_provider is 'passphrase'" in str(caught.value)
    assert "INFERSTACK_PULUMI_PASSPHRASE" in str(caught.value)
    assert not automation.backend_dir(tmp_path).exists()
    settings = automation.workspace(
        "dev", config, tmp_path, {"INFERSTACK_PULUMI_PASSPHRASE": "chosen"}
    )
    assert settings.env["PULUMI_CONFIG_PASSPHRASE"] == "chosen"
    assert settings.env["PULUMI_BACKEND_URL"] == (tmp_path / "state").as_uri()


def test_a_localstack_stack_keeps_its_file_backend_and_generated_passphrase(
    tmp_path: Path,
) -> None:
    settings = automation.workspace("local", load_stack("local"), tmp_path, NO_PASSPHRASE)
    assert settings.backend_url == automation.backend_dir(tmp_path).resolve().as_uri()
    assert settings.secrets_provider == "passphrase"
    assert settings.env["PULUMI_CONFIG_PASSPHRASE"] == automation.passphrase(
        tmp_path, NO_PASSPHRASE
    )


def test_the_provider_refuses_other_accounts_where_the_config_names_them(
    run_program: Callable[[StackConfig, str], Evaluation],
) -> None:
    config = aws_stack(StateConfig(), allowed_account_ids=["111122223333"])
    evaluation = run_program(config, "dev")
    (provider,) = evaluation.of_type("pulumi:providers:aws")
    # Provider inputs reach the engine JSON-encoded.
    assert json.loads(provider.inputs["allowedAccountIds"]) == ["111122223333"]
    assert provider.inputs["region"] == "eu-west-1"


def test_inferstack_up_stops_on_an_unset_backend_before_building_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cli import deployment, prepare

    def no_build(*_args: object) -> list[str]:
        raise AssertionError("built before the state backend was checked")

    monkeypatch.setattr(automation, "available", lambda: True)
    monkeypatch.setattr(prepare, "prepare", no_build)
    with pytest.raises(StateBackendError, match=r"^stacks/prod\.py: target\.state\.backend_url"):
        deployment.up("prod", echo=lambda _message: None)
