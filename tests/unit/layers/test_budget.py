"""Lambda's limits: ≤ 5 layers, ≤ 250 MB unzipped, zips over 50 MB through S3; a model
over the layer budget planned to S3, with /tmp sized from its files."""

from __future__ import annotations

import pytest

from layers.budget import (
    MAX_UNZIPPED_BYTES,
    Part,
    check_budget,
    check_ephemeral_storage,
    ephemeral_storage_mb,
    plan_delivery,
)
from layers.errors import BudgetError

MB = 1_048_576


def parts(model_unzipped: int, model_kind: str = "layer") -> list[Part]:
    return [
        Part("function code", "function", int(0.1 * MB), int(0.3 * MB)),
        Part("runtime-python3.12-x86_64", "layer", 36 * MB, 109 * MB),
        Part("model-minilm", model_kind, model_unzipped * 9 // 10, model_unzipped),  # type: ignore[arg-type]
    ]


def test_a_package_that_fits_gets_a_table() -> None:
    budget = check_budget(parts(36 * MB), model_quantized=True)
    assert budget.ok and budget.layers == 2
    table = budget.table()
    for name in ("function code", "runtime-python3.12-x86_64", "model-minilm", "OK"):
        assert name in table
    assert budget.rows()[-1]["unzipped"] == "145.3 MB of 250.0 MB"


def test_over_250_mb_fails_with_the_table_and_what_to_change() -> None:
    with pytest.raises(BudgetError) as failure:
        check_budget(parts(150 * MB), model_quantized=False)
    message = str(failure.value)
    assert "over Lambda's 250.0 MB" in message and "OVER BUDGET" in message
    for name in ("function code", "runtime-python3.12-x86_64", "model-minilm"):
        assert name in message
    assert "quantize the model to int8" in message
    assert "deliver the model from S3" in message


def test_the_same_model_fits_when_delivered_from_s3() -> None:
    budget = check_budget(parts(150 * MB, "s3"), model_quantized=False)
    assert budget.ok and budget.layers == 1
    assert budget.unzipped_bytes < MAX_UNZIPPED_BYTES


def test_more_than_five_layers_fails() -> None:
    many = [Part(f"layer-{i}", "layer", MB, MB) for i in range(6)]
    with pytest.raises(BudgetError, match="6 layers; Lambda allows 5"):
        check_budget([Part("function code", "function", MB, MB), *many])


def test_a_zip_over_50_mb_goes_through_s3() -> None:
    assert Part("big", "layer", 51 * MB, 80 * MB).upload == "via S3 (zip > 50 MB)"
    assert Part("small", "layer", 49 * MB, 80 * MB).upload == "direct"


def code_parts() -> list[Part]:
    return parts(0)[:2]


def test_a_model_that_fits_is_planned_into_a_layer() -> None:
    assert plan_delivery(code_parts(), 36 * MB) == "layer"
    room = MAX_UNZIPPED_BYTES - sum(part.unzipped_bytes for part in code_parts())
    assert plan_delivery(code_parts(), room) == "layer"


def test_a_model_over_the_layer_budget_is_planned_to_s3() -> None:
    # fp32 BERT-base: ~440 MB, over 250 MB with nothing else.
    assert plan_delivery(code_parts(), 440 * MB) == "s3"
    room = MAX_UNZIPPED_BYTES - sum(part.unzipped_bytes for part in code_parts())
    assert plan_delivery(code_parts(), room + 1) == "s3"
    # No sixth layer either.
    many = [Part(f"layer-{i}", "layer", MB, MB) for i in range(5)]
    assert plan_delivery([Part("function code", "function", MB, MB), *many], MB) == "s3"


def test_ephemeral_storage_is_sized_from_an_s3_models_files() -> None:
    assert ephemeral_storage_mb("layer", 200 * MB) == 512
    # Small models: Lambda's default is enough.
    assert ephemeral_storage_mb("s3", 100 * MB) == 512
    # fp32 BERT-base, 420 MiB: files + 20 % + 64 MB.
    assert ephemeral_storage_mb("s3", 420 * MB) == 568
    assert ephemeral_storage_mb("s3", 420 * MB + 1) == 569


def test_a_requested_ephemeral_storage_is_kept_when_it_is_enough() -> None:
    field = "models[bert-base].lambda.ephemeral_storage_mb"
    assert check_ephemeral_storage(None, 568, field) == 568
    assert check_ephemeral_storage(568, 568, field) == 568
    assert check_ephemeral_storage(2048, 568, field) == 2048
    with pytest.raises(BudgetError) as caught:
        check_ephemeral_storage(512, 568, field)
    assert str(caught.value).startswith(f"{field}: 512 MB is too small")
    assert "needs ≥ 568 MB" in str(caught.value)
