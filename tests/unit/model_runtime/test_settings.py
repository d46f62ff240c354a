"""Runtime settings from the environment: errors name the variable and the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_runtime.app import DEFAULT_MAX_BODY_BYTES
from model_runtime.errors import ConfigError
from model_runtime.settings import RuntimeSettings


def test_defaults() -> None:
    settings = RuntimeSettings.from_env({"MODEL_DIR": "/opt/models/digits"})
    assert settings.model_dirs == (Path("/opt/models/digits"),)
    assert settings.threads is None
    assert settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 6 * 1024 * 1024


def test_several_model_dirs() -> None:
    settings = RuntimeSettings.from_env({"MODEL_DIR": "/a:/b/c::"})
    assert settings.model_dirs == (Path("/a"), Path("/b/c"))


def test_numbers() -> None:
    settings = RuntimeSettings.from_env(
        {"MODEL_DIR": "/a", "INFERSTACK_THREADS": "3", "INFERSTACK_MAX_BODY_BYTES": "1024"}
    )
    assert settings.threads == 3
    assert settings.max_body_bytes == 1024


@pytest.mark.parametrize("environ", [{}, {"MODEL_DIR": ""}, {"MODEL_DIR": "   "}])
def test_model_dir_is_required(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="MODEL_DIR"):
        RuntimeSettings.from_env(environ)


@pytest.mark.parametrize("name", ["INFERSTACK_THREADS", "INFERSTACK_MAX_BODY_BYTES"])
@pytest.mark.parametrize(
    "value", ["0", "-1", "two", "1.5", "\u00b2", "\u0661"]
)  # superscript 2, Arabic-Indic 1
def test_bad_number_names_variable_and_value(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RuntimeSettings.from_env({"MODEL_DIR": "/a", name: value})
    assert str(caught.value) == f"{name} has value {value!r}; allowed: a whole number >= 1"


def test_load_engines(digits_dir: Path) -> None:
    settings = RuntimeSettings.from_env({"MODEL_DIR": str(digits_dir), "INFERSTACK_THREADS": "1"})
    [engine] = settings.load_engines()
    assert engine.name == "digits"


def test_cors_allow_origin() -> None:
    env = {"MODEL_DIR": "/models/a"}
    assert RuntimeSettings.from_env(env).cors_allow_origin is None
    origin = "https://app.example.com"
    assert (
        RuntimeSettings.from_env({**env, "CORS_ALLOW_ORIGIN": origin}).cors_allow_origin == origin
    )
