"""Stack configs: validation messages name the field and the allowed range, and the loader
finds stacks by Pulumi stack name. The last tests run the Pulumi program (and
`infra/__main__.py`) under Pulumi's mock runtime (`pulumi.runtime.set_mocks`)."""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from infra.errors import ArtifactMissingError, PackageBudgetError, StackConfigError
from infra.evaluate import Evaluation, evaluate
from infra.program import define_stack
from infra.stack_loader import available_stacks, describe_validation_error, load_stack
from layers.package import project_root
from stacks.schema import (
    ApiConfig,
    GpuConfig,
    KubernetesConfig,
    LambdaConfig,
    LocalStackTarget,
    ModelConfig,
    ProvisionedConcurrency,
    ScheduledScaling,
    StackConfig,
)
from tests.support.project import package_dir, stage_project, write_artifact

REPO = project_root()


def error_of(build: Callable[[], Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        build()
    return describe_validation_error(caught.value)


def stack_with(*models: ModelConfig, **fields: Any) -> StackConfig:
    return StackConfig(target=LocalStackTarget(), models=list(models), **fields)


def test_memory_out_of_range_names_field_and_range() -> None:
    assert error_of(lambda: LambdaConfig(memory_mb=64)) == (
        "lambda.memory_mb: 64 is out of range; allowed 128–10240 MB"  # noqa: RUF001
    )
    assert error_of(lambda: LambdaConfig(memory_mb=20480)) == (
        "lambda.memory_mb: 20480 is out of range; allowed 128–10240 MB"  # noqa: RUF001
    )


def test_errors_from_a_whole_stack_carry_the_full_path() -> None:
    raw = {
        "target": {"kind": "aws", "region": "eu-west-1"},
        "models": [{"name": "digits", "lambda": {"memory_mb": 64}}],
    }
    assert error_of(lambda: StackConfig.model_validate(raw)) == (
        "models[0].lambda.memory_mb: 64 is out of range; allowed 128–10240 MB"  # noqa: RUF001
    )


def test_timeout_over_lambdas_limit() -> None:
    assert error_of(lambda: LambdaConfig(timeout_s=901)) == (
        "lambda.timeout_s: 901 is out of range; allowed 1–900 s"  # noqa: RUF001
    )


def test_timeout_over_api_gateways_limit_unless_raised() -> None:
    slow = ModelConfig(name="slow", lambda_=LambdaConfig(timeout_s=60))
    assert error_of(lambda: stack_with(slow)) == (
        "models[slow].lambda.timeout_s: 60 s exceeds API Gateway's integration timeout of 29 s;"
        " allowed ≤ 29 s (raise api.integration_timeout_s after an AWS quota increase)"
    )
    raised = stack_with(slow, api=ApiConfig(integration_timeout_s=60))
    assert raised.api.integration_timeout_s == 60


def test_min_greater_than_max() -> None:
    assert error_of(lambda: ProvisionedConcurrency(min=5, max=2)) == (
        "lambda.provisioned: min 5 is greater than max 2"
    )
    assert error_of(lambda: GpuConfig(image="r/i:1", min_replicas=4, max_replicas=2)) == (
        "gpu: min_replicas 4 is greater than max_replicas 2"
    )
    assert error_of(
        lambda: ScheduledScaling(name="peak", schedule="rate(1 hour)", min=3, max=1)
    ) == ("schedule 'peak': min 3 is greater than max 1")


def test_provisioned_must_fit_inside_reserved() -> None:
    provisioned = ProvisionedConcurrency(min=2, max=20)
    assert error_of(lambda: LambdaConfig(reserved_concurrency=10, provisioned=provisioned)) == (
        "lambda.provisioned: up to 20 provisioned exceeds reserved_concurrency 10; allowed ≤ 10"
    )
    peak = ScheduledScaling(name="peak", schedule="cron(0 8 * * ? *)", min=5, max=50)
    scheduled = ProvisionedConcurrency(min=2, max=20, schedules=[peak])
    assert "up to 50 provisioned exceeds reserved_concurrency 30" in error_of(
        lambda: LambdaConfig(reserved_concurrency=30, provisioned=scheduled)
    )
    assert error_of(lambda: LambdaConfig(provisioned=provisioned)).startswith(
        "lambda.provisioned needs lambda.reserved_concurrency"
    )


def test_other_ranges_and_values() -> None:
    assert error_of(lambda: ProvisionedConcurrency(min=1, max=2, target_utilization=0.95)) == (
        "lambda.provisioned.target_utilization: 0.95 is out of range; allowed 0.1–0.9"  # noqa: RUF001
    )
    assert error_of(lambda: ApiConfig(throttle_burst=0)) == (
        "api.throttle_burst: 0 is out of range; allowed 1–5000 requests"  # noqa: RUF001
    )
    assert error_of(
        lambda: stack_with(ModelConfig(name="m", lambda_=LambdaConfig()), log_retention_days=10)
    ) == (
        "log_retention_days: 10 is not allowed; allowed 1, 3, 5, 7, 14, 30, 60, 90, 120, 150,"
        " 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653 days"
    )
    assert "'Digits_v1' is not a valid model name" in error_of(
        lambda: ModelConfig(name="Digits_v1", lambda_=LambdaConfig())
    )
    assert "must be pinned" in error_of(lambda: GpuConfig(image="registry/server:latest"))
    sparc: Any = "sparc"
    assert error_of(lambda: LambdaConfig(architecture=sparc)).startswith("lambda.architecture:")


def test_cross_field_rules() -> None:
    fn = ModelConfig(name="fn", lambda_=LambdaConfig())
    gpu = ModelConfig(name="big", gpu=GpuConfig(image="r/server:1.0"))
    assert error_of(lambda: stack_with(fn, gpu)) == (
        "models[big].gpu needs the stack's kubernetes settings (kubeconfig, context)"
    )
    assert stack_with(fn, gpu, kubernetes=KubernetesConfig()).gpu_models == [gpu]
    assert error_of(lambda: stack_with(fn, fn)) == "models: duplicate model name(s) fn"
    assert error_of(
        lambda: stack_with(
            fn, gpu, kubernetes=KubernetesConfig(), api=ApiConfig(default_model="big")
        )
    ) == ("api.default_model 'big' is not a model served by Lambda; allowed: fn")
    assert error_of(lambda: ModelConfig(name="idle")) == (
        "model 'idle' has neither lambda_ nor gpu serving; declare at least one"
    )


def test_unknown_stack_lists_the_available_ones() -> None:
    with pytest.raises(StackConfigError) as caught:
        load_stack("qa")
    assert str(caught.value) == (
        "no stack named 'qa': there is no stacks/qa.py; available stacks: dev, local, prod"
    )


def test_an_invalid_stack_file_is_reported_with_file_line_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "mystacks"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "broken.py").write_text(
        "from stacks.schema import LambdaConfig, LocalStackTarget, ModelConfig, StackConfig\n"
        "\n"
        "STACK = StackConfig(\n"
        "    target=LocalStackTarget(),\n"
        "    models=[ModelConfig(name='m', lambda_=LambdaConfig(memory_mb=64))],\n"
        ")\n"
    )
    (package / "empty.py").write_text("STACK = None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert available_stacks("mystacks") == ["broken", "empty"]
    with pytest.raises(StackConfigError) as caught:
        load_stack("broken", package="mystacks")
    assert str(caught.value) == (
        "mystacks/broken.py:5: lambda.memory_mb: 64 is out of range; allowed 128–10240 MB"  # noqa: RUF001
    )
    with pytest.raises(StackConfigError, match=r"mystacks/empty.py must define STACK"):
        load_stack("empty", package="mystacks")


def test_stack_modules_import_only_pydantic_and_the_standard_library() -> None:
    allowed = {"pydantic", "pydantic_core", "stacks", "__future__"} | set(sys.stdlib_module_names)
    for path in (REPO / "stacks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_artifact_problems_stop_the_program_before_any_resource(
    tmp_path: Path, run_program: Callable[[StackConfig, str], Evaluation]
) -> None:
    config = load_stack("local")
    missing = config.model_copy(
        update={"models": [ModelConfig(name="nowhere", lambda_=LambdaConfig())]}
    )
    with pytest.raises(
        ArtifactMissingError,
        match=r"model 'nowhere': no artifact at .*"
        r"build/models/nowhere.*inferstack build nowhere",
    ):
        run_program(missing, "local")

    write_artifact(tmp_path / "other", "other")
    renamed = ModelConfig(name="digits", artifact=str(tmp_path / "other"), lambda_=LambdaConfig())
    with pytest.raises(StackConfigError, match="is named 'other' in its manifest"):
        run_program(config.model_copy(update={"models": [renamed]}), "local")

    (tmp_path / "other" / "model.onnx").write_bytes(b"tampered")
    tampered = ModelConfig(name="other", artifact=str(tmp_path / "other"), lambda_=LambdaConfig())
    with pytest.raises(ArtifactMissingError, match="corrupt or was modified"):
        run_program(config.model_copy(update={"models": [tampered]}), "local")


def test_a_package_not_built_for_the_current_sources_is_named(tmp_path: Path) -> None:
    built = stack_with(ModelConfig(name="digits", lambda_=LambdaConfig()))
    stage_project(tmp_path, [built])
    arm64 = stack_with(ModelConfig(name="digits", lambda_=LambdaConfig(architecture="arm64")))
    with pytest.raises(ArtifactMissingError) as raised:
        evaluate(lambda: define_stack(arm64, "t", tmp_path), "t")
    message = str(raised.value)
    assert "the python3.12/arm64 runtime layer" in message
    assert "function zip" not in message and "model layer" not in message
    # The commands that build it: the deploy's own, and the packaging step alone.
    assert "`inferstack up --stack t`" in message
    assert "inferstack package" in message and "--arch arm64" in message

    # Changed code is not the code that was packaged.
    (tmp_path / "functions" / "handler.py").write_text("def handler(event, context): 1\n")
    with pytest.raises(
        ArtifactMissingError,
        match=r"not built for the current sources.*"
        r"the function zip",
    ):
        evaluate(lambda: define_stack(built, "t", tmp_path), "t")


def test_a_function_over_lambdas_size_limits_stops_the_program(tmp_path: Path) -> None:
    config = stack_with(ModelConfig(name="digits", lambda_=LambdaConfig()))
    stage_project(tmp_path, [config])
    # The builders' record of the runtime layer says 300 MB unzipped (the zip itself is
    # a placeholder): over Lambda's 250 MB with the code and model.
    (info,) = package_dir(tmp_path).glob("runtime-python3.12-x86_64-*.json")
    record = json.loads(info.read_text())
    info.write_text(json.dumps({**record, "unzipped_bytes": 300 * 1_048_576}))
    with pytest.raises(PackageBudgetError, match=r"(?s)model 'digits'.*over Lambda's 250\.0 MB"):
        evaluate(lambda: define_stack(config, "t", tmp_path), "t")
