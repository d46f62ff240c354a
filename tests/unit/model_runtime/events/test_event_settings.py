"""JobsSettings from the environment the stack sets."""

from __future__ import annotations

import pytest

from model_runtime.errors import ConfigError
from model_runtime.events.settings import BatchSettings, JobsSettings

ENV = {
    "INFERSTACK_JOBS_BUCKET": "inferstack-dev-jobs",
    "INFERSTACK_JOBS_PREFIX": "jobs/digits",
    "INFERSTACK_JOBS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/inferstack-dev-digits-jobs",
    "INFERSTACK_JOBS_MAX_RECEIVES": "5",
}


def test_no_bucket_no_jobs() -> None:
    assert JobsSettings.from_env({}) is None
    assert JobsSettings.from_env({"INFERSTACK_JOBS_BUCKET": " "}) is None


def test_jobs_without_batches() -> None:
    settings = JobsSettings.from_env(ENV)
    assert settings == JobsSettings(
        bucket="inferstack-dev-jobs",
        prefix="jobs/digits",
        queue_url=ENV["INFERSTACK_JOBS_QUEUE_URL"],
        max_receives=5,
    )
    assert settings.model == "digits"


def test_jobs_with_batches() -> None:
    env = ENV | {"INFERSTACK_BATCH_PREFIX": "batches/digits", "INFERSTACK_BATCH_CHUNK_LINES": "250"}
    settings = JobsSettings.from_env(env)
    assert settings is not None
    assert settings.batch == BatchSettings(prefix="batches/digits", chunk_lines=250)
    defaults = JobsSettings.from_env(env | {"INFERSTACK_BATCH_CHUNK_LINES": ""})
    assert defaults is not None and defaults.batch == BatchSettings("batches/digits", 1000)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"INFERSTACK_JOBS_QUEUE_URL": ""},
            "INFERSTACK_JOBS_QUEUE_URL is not set; it is needed when INFERSTACK_JOBS_BUCKET is set",
        ),
        (
            {"INFERSTACK_JOBS_PREFIX": "jobs/"},
            "INFERSTACK_JOBS_PREFIX has value 'jobs/'; allowed: <prefix>/<model>, e.g. jobs/digits",
        ),
        ({"INFERSTACK_JOBS_PREFIX": "digits"}, "INFERSTACK_JOBS_PREFIX has value 'digits'"),
        (
            {"INFERSTACK_JOBS_MAX_RECEIVES": "0"},
            "INFERSTACK_JOBS_MAX_RECEIVES has value '0'; allowed: a whole number 1..1000",
        ),
        ({"INFERSTACK_BATCH_PREFIX": "/batches/digits"}, "INFERSTACK_BATCH_PREFIX has value"),
        (
            {"INFERSTACK_BATCH_PREFIX": "batches/digits", "INFERSTACK_BATCH_CHUNK_LINES": "x"},
            "INFERSTACK_BATCH_CHUNK_LINES has value 'x'; allowed: a whole number 1..100000",
        ),
    ],
)
def test_a_bad_value_names_the_variable(change: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        JobsSettings.from_env(ENV | change)
    assert str(caught.value).startswith(message)
