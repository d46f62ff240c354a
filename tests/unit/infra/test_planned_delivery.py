"""A model declared without a delivery is planned when the stack is evaluated: a layer
when it fits Lambda's 250 MB, else S3 (fp32 BERT-base), with the function's /tmp sized
from the artifact; a declared ephemeral storage too small for it is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

import layers.budget
from infra.errors import PackageBudgetError
from infra.evaluate import Evaluation, Registered, evaluate
from infra.program import define_stack
from layers.package import package
from stacks.schema import LambdaConfig, LocalStackTarget, ModelConfig, StackConfig
from tests.support.project import stage_project

STACK = "plan"
MB = 1_048_576
FUNCTION = "aws:lambda/function:Function"


def config(ephemeral_storage_mb: int | None = None) -> StackConfig:
    function = LambdaConfig(ephemeral_storage_mb=ephemeral_storage_mb)
    return StackConfig(
        target=LocalStackTarget(kind="localstack"),
        models=[ModelConfig(name="big", lambda_=function)],
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return stage_project(tmp_path / "project", [config()])


@pytest.fixture
def over_the_budget(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The staged model over the layer budget (the code alone still fits), needing 601 MB
    of /tmp: a few bytes of files and 600 MB of headroom."""
    budget = package(root / "build/models/big", root=root, build=False).budget
    code = sum(part.unzipped_bytes for part in budget.parts if not part.name.startswith("model-"))
    monkeypatch.setattr(layers.budget, "MAX_UNZIPPED_BYTES", code)
    monkeypatch.setattr(layers.budget, "TMP_HEADROOM_BYTES", 600 * MB)


def run(root: Path, stack: StackConfig) -> Evaluation:
    return evaluate(lambda: define_stack(stack, STACK, root), STACK)


def function(evaluation: Evaluation) -> Registered:
    return next(r for r in evaluation.of_type(FUNCTION) if r.inputs["name"].endswith("-big"))


def test_a_model_that_fits_ships_in_its_layer(root: Path) -> None:
    big = function(run(root, config()))
    assert "MODEL_DIR" in big.inputs["environment"]["variables"]
    assert "MODEL_URI" not in big.inputs["environment"]["variables"]
    assert big.inputs["ephemeralStorage"] == {"size": 512}


@pytest.mark.usefixtures("over_the_budget")
def test_a_model_over_the_budget_is_delivered_from_s3_with_tmp_for_it(root: Path) -> None:
    evaluation = run(root, config())
    big = function(evaluation)
    variables = big.inputs["environment"]["variables"]
    assert "MODEL_DIR" not in variables
    assert variables["MODEL_URI"].startswith("s3://") and "/models/big/" in variables["MODEL_URI"]
    assert big.inputs["ephemeralStorage"] == {"size": 601}
    # Only the runtime layer: no model layer is declared.
    assert len(big.inputs["layers"]) == 1
    assert not [
        r
        for r in evaluation.of_type("aws:lambda/layerVersion:LayerVersion")
        if r.inputs["layerName"].endswith("-big-model")
    ]


@pytest.mark.usefixtures("over_the_budget")
def test_a_declared_ephemeral_storage_that_is_enough_is_kept(root: Path) -> None:
    assert function(run(root, config(2048))).inputs["ephemeralStorage"] == {"size": 2048}


@pytest.mark.usefixtures("over_the_budget")
def test_a_declared_ephemeral_storage_too_small_is_refused_by_name(root: Path) -> None:
    with pytest.raises(PackageBudgetError) as caught:
        run(root, config(512))
    assert str(caught.value) == (
        "model 'big': models[big].lambda.ephemeral_storage_mb: 512 MB is too small for the"
        " model, delivered from S3 to /tmp; it needs ≥ 601 MB (its files and headroom);"
        " raise it or leave it unset to have it sized from the artifact"
    )
