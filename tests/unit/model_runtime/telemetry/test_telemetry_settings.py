"""INFERSTACK_METRICS and INFERSTACK_LOG_FORMAT: on and json in Lambda, off and text
elsewhere, either set explicitly; a bad value names the variable."""

from __future__ import annotations

import pytest

from model_runtime.errors import ConfigError
from model_runtime.settings import RuntimeSettings

BASE = {"MODEL_DIR": "/opt/models/tiny"}
LAMBDA = {**BASE, "AWS_LAMBDA_FUNCTION_NAME": "inferstack-local-tiny"}


def test_on_in_lambda_by_default() -> None:
    settings = RuntimeSettings.from_env(LAMBDA)
    assert settings.metrics is True and settings.log_format == "json"


def test_off_elsewhere_by_default() -> None:
    settings = RuntimeSettings.from_env(BASE)
    assert settings.metrics is False and settings.log_format == "text"


def test_switched_explicitly() -> None:
    off = RuntimeSettings.from_env({**LAMBDA, "INFERSTACK_METRICS": "off"})
    on = RuntimeSettings.from_env({**BASE, "INFERSTACK_METRICS": "on"})
    text = RuntimeSettings.from_env({**LAMBDA, "INFERSTACK_LOG_FORMAT": "text"})
    assert (off.metrics, on.metrics, text.log_format) == (False, True, "text")


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [("INFERSTACK_METRICS", "yes", "on, off"), ("INFERSTACK_LOG_FORMAT", "xml", "json, text")],
)
def test_a_bad_value_names_the_variable(name: str, value: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as raised:
        RuntimeSettings.from_env({**BASE, name: value})
    assert str(raised.value) == f"{name} has value {value!r}; allowed: {allowed}"
