"""The `async` and `batch` sections of a model: AWS's ranges, named by field, and the rules
between them and the model's function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from infra.stack_loader import describe_validation_error, load_stack
from stacks.schema import (
    AsyncConfig,
    BatchConfig,
    GpuConfig,
    KubernetesConfig,
    LambdaConfig,
    LocalStackTarget,
    ModelConfig,
    StackConfig,
)


def error_of(build: Callable[[], Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        build()
    return describe_validation_error(caught.value)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("batch_size", 0, "0 is out of range; allowed 1–10000 messages"),  # noqa: RUF001
        ("batch_size", 10001, "10001 is out of range; allowed 1–10000 messages"),  # noqa: RUF001
        ("max_batching_window_s", -1, "-1 is out of range; allowed 0–300 s"),  # noqa: RUF001
        ("max_batching_window_s", 301, "301 is out of range; allowed 0–300 s"),  # noqa: RUF001
        ("max_receives", 0, "0 is out of range; allowed 1–1000"),  # noqa: RUF001
        ("max_receives", 1001, "1001 is out of range; allowed 1–1000"),  # noqa: RUF001
        ("result_retention_days", 0, "0 is out of range; allowed 1–3650 days"),  # noqa: RUF001
        ("result_retention_days", 3651, "3651 is out of range; allowed 1–3650 days"),  # noqa: RUF001
        ("max_concurrency", 1, "1 is out of range; allowed 2–1000"),  # noqa: RUF001
        ("max_concurrency", 1001, "1001 is out of range; allowed 2–1000"),  # noqa: RUF001
    ],
)
def test_async_ranges_name_the_field(field: str, value: int, message: str) -> None:
    assert error_of(lambda: AsyncConfig(**{field: value})) == f"async.{field}: {message}"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("chunk_lines", 0, "0 is out of range; allowed 1–100000 lines"),  # noqa: RUF001
        ("chunk_lines", 100001, "100001 is out of range; allowed 1–100000 lines"),  # noqa: RUF001
        ("prefix", "Batches", "'Batches' is not a valid batch prefix (must match ^[a-z0-9-]+$)"),
        ("prefix", "a/b", "'a/b' is not a valid batch prefix (must match ^[a-z0-9-]+$)"),
        ("prefix", "", "'' is not a valid batch prefix (must match ^[a-z0-9-]+$)"),
    ],
)
def test_batch_ranges_name_the_field(field: str, value: Any, message: str) -> None:
    assert error_of(lambda: BatchConfig(**{field: value})) == f"batch.{field}: {message}"


def test_the_jobs_prefix_is_not_a_batch_prefix() -> None:
    assert error_of(lambda: BatchConfig(prefix="jobs")) == (
        "batch.prefix 'jobs' is where jobs are kept; choose another prefix"
    )


def test_defaults() -> None:
    jobs = AsyncConfig()
    assert (jobs.batch_size, jobs.max_batching_window_s, jobs.max_receives) == (10, 0, 3)
    assert (jobs.result_retention_days, jobs.max_concurrency) == (7, None)
    assert (BatchConfig().prefix, BatchConfig().chunk_lines) == ("batches", 1000)


def test_batches_over_ten_messages_need_a_batching_window() -> None:
    assert error_of(lambda: AsyncConfig(batch_size=11)) == (
        "async.batch_size 11 needs async.max_batching_window_s ≥ 1 s: AWS gathers SQS "
        "batches of more than 10 messages over a batching window"
    )
    assert AsyncConfig(batch_size=11, max_batching_window_s=1).batch_size == 11
    assert AsyncConfig(batch_size=10).max_batching_window_s == 0


def test_visibility_timeout_is_six_function_timeouts_plus_the_window() -> None:
    assert AsyncConfig().visibility_timeout_s(10) == 60
    assert AsyncConfig(batch_size=100, max_batching_window_s=5).visibility_timeout_s(15) == 95
    # The largest: Lambda's 900 s and the 300 s window, inside SQS's 43,200 s.
    assert AsyncConfig(max_batching_window_s=300).visibility_timeout_s(900) == 5700


def test_async_and_batch_need_lambda_and_batch_needs_async() -> None:
    gpu = GpuConfig(image="r/server:1.0")
    assert error_of(lambda: ModelConfig(name="big", gpu=gpu, async_=AsyncConfig())) == (
        "models[big].async needs lambda_ serving: jobs, batches and canaries run on "
        "the model's Lambda function"
    )
    assert error_of(
        lambda: ModelConfig(name="big", gpu=gpu, async_=AsyncConfig(), batch=BatchConfig())
    ).startswith("models[big].async needs lambda_ serving")
    assert error_of(lambda: ModelConfig(name="big", gpu=gpu, batch=BatchConfig())) == (
        "models[big].batch needs lambda_ serving: jobs, batches and canaries run on "
        "the model's Lambda function"
    )
    assert error_of(lambda: ModelConfig(name="m", lambda_=LambdaConfig(), batch=BatchConfig())) == (
        "models[m].batch needs models[m].async: a batch's chunks go through the model's job queue"
    )


def test_pollers_fit_inside_the_reserved_concurrency() -> None:
    function = LambdaConfig(reserved_concurrency=10)
    assert (
        error_of(
            lambda: ModelConfig(name="m", lambda_=function, async_=AsyncConfig(max_concurrency=11))
        )
        == "models[m].async.max_concurrency 11 exceeds lambda.reserved_concurrency 10; allowed ≤ 10"
    )
    fits = ModelConfig(name="m", lambda_=function, async_=AsyncConfig(max_concurrency=10))
    assert fits.async_ is not None and fits.async_.max_concurrency == 10


def test_dict_configs_use_async_and_name_its_fields() -> None:
    raw = {
        "target": {"kind": "localstack"},
        "models": [
            {"name": "digits", "lambda": {}, "async": {"max_receives": 0}, "batch": {}},
        ],
    }
    assert error_of(lambda: StackConfig.model_validate(raw)) == (
        "models[0].async.max_receives: 0 is out of range; allowed 1–1000"  # noqa: RUF001
    )
    raw["models"][0]["async"] = {"max_receives": 5}  # type: ignore[index]
    model = StackConfig.model_validate(raw).models[0]
    assert model.async_ == AsyncConfig(max_receives=5)
    assert model.model_dump(by_alias=True)["async"]["max_receives"] == 5


def test_prefixes_and_the_models_with_jobs() -> None:
    plain = ModelConfig(name="plain", lambda_=LambdaConfig())
    jobs = ModelConfig(name="jobs-only", lambda_=LambdaConfig(), async_=AsyncConfig())
    both = ModelConfig(
        name="both",
        lambda_=LambdaConfig(),
        async_=AsyncConfig(),
        batch=BatchConfig(prefix="nightly"),
    )
    gpu = ModelConfig(name="big", gpu=GpuConfig(image="r/server:1.0"))
    stack = StackConfig(
        target=LocalStackTarget(), models=[plain, jobs, both, gpu], kubernetes=KubernetesConfig()
    )
    assert stack.async_models == [jobs, both]
    assert (jobs.jobs_prefix, jobs.batch_prefix) == ("jobs/jobs-only", None)
    assert (both.jobs_prefix, both.batch_prefix) == ("jobs/both", "nightly/both")


def test_the_shipped_stacks_jobs() -> None:
    local = load_stack("local")
    assert [m.name for m in local.async_models] == ["digits"]
    (digits,) = local.async_models
    assert digits.batch_prefix == "batches/digits"
    assert load_stack("dev").async_models == []
    (scoring,) = load_stack("prod").async_models
    assert scoring.name == "digits-int8" and scoring.batch is not None
