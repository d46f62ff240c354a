"""Settings from the environment (RuntimeSettings, the server's ServerSettings, the
typed readers both use): errors name the variable, its value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_runtime.backends import BackendOptions
from model_runtime.batcher import BatchingConfig
from model_runtime.errors import ConfigError
from model_runtime.middleware import DEFAULT_MAX_BODY_BYTES
from model_runtime.server import ServerSettings
from model_runtime.settings import (
    RuntimeSettings,
    read_backend_options,
    read_choice,
    read_number,
    read_whole_number,
)


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


def test_load_engines(tiny_dir: Path) -> None:
    settings = RuntimeSettings.from_env({"MODEL_DIR": str(tiny_dir), "INFERSTACK_THREADS": "1"})
    [engine] = settings.load_engines()
    assert engine.name == "tiny"


def test_cors_allow_origin() -> None:
    env = {"MODEL_DIR": "/models/a"}
    assert RuntimeSettings.from_env(env).cors_allow_origin is None
    origin = "https://app.example.com"
    assert (
        RuntimeSettings.from_env({**env, "CORS_ALLOW_ORIGIN": origin}).cors_allow_origin == origin
    )


def test_backend_options_default_and_from_the_environment() -> None:
    assert read_backend_options({}) == BackendOptions("onnxruntime", "auto", "fp32")
    env = {"INFERSTACK_BACKEND": "torch", "INFERSTACK_DEVICE": "cuda:1", "INFERSTACK_DTYPE": "bf16"}
    assert read_backend_options(env) == BackendOptions("torch", "cuda:1", "bf16")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"INFERSTACK_BACKEND": "tensorflow"},
            "INFERSTACK_BACKEND has value 'tensorflow'; allowed: onnxruntime, torch",
        ),
        (
            {"INFERSTACK_DEVICE": "gpu"},
            "INFERSTACK_DEVICE has value 'gpu'; allowed: auto, cpu, cuda, cuda:N",
        ),
        (
            {"INFERSTACK_DEVICE": "cuda:N"},
            "INFERSTACK_DEVICE has value 'cuda:N'; allowed: auto, cpu, cuda, cuda:N",
        ),
        (
            {"INFERSTACK_DTYPE": "fp16"},
            "INFERSTACK_DTYPE has value 'fp16', which needs INFERSTACK_BACKEND=torch;"
            " allowed with onnxruntime: fp32",
        ),
        (
            {"INFERSTACK_DTYPE": "int4", "INFERSTACK_BACKEND": "torch"},
            "INFERSTACK_DTYPE has value 'int4'; allowed: fp32, fp16, bf16",
        ),
        # Several wrong: the backend is named first.
        (
            {"INFERSTACK_BACKEND": "tf", "INFERSTACK_DEVICE": "gpu"},
            "INFERSTACK_BACKEND has value 'tf'; allowed: onnxruntime, torch",
        ),
    ],
)
def test_bad_backend_options_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read_backend_options(env)
    assert str(caught.value) == message


def test_server_settings_defaults() -> None:
    settings = ServerSettings.from_env({"MODEL_DIR": "/a"})
    assert settings.runtime == RuntimeSettings.from_env({"MODEL_DIR": "/a"})
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)
    assert settings.backend == BackendOptions()
    assert settings.batching == BatchingConfig(max_batch_size=32, max_delay_ms=0.0, queue_size=256)
    assert (settings.shutdown_timeout_s, settings.log_level) == (25, "info")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"INFERSTACK_PORT": "http"},
            "INFERSTACK_PORT has value 'http'; allowed: a whole number 1..65535",
        ),
        (
            {"INFERSTACK_PORT": "65536"},
            "INFERSTACK_PORT has value '65536'; allowed: a whole number 1..65535",
        ),
        (
            {"INFERSTACK_MAX_BATCH_SIZE": "0"},
            "INFERSTACK_MAX_BATCH_SIZE has value '0'; allowed: a whole number 1..65536",
        ),
        (
            {"INFERSTACK_MAX_DELAY_MS": "-1"},
            "INFERSTACK_MAX_DELAY_MS has value '-1'; allowed: a number 0..10000",
        ),
        (
            {"INFERSTACK_QUEUE_SIZE": "lots"},
            "INFERSTACK_QUEUE_SIZE has value 'lots'; allowed: a whole number 1..1048576",
        ),
        (
            {"INFERSTACK_SHUTDOWN_TIMEOUT_S": "3601"},
            "INFERSTACK_SHUTDOWN_TIMEOUT_S has value '3601'; allowed: a whole number 1..3600",
        ),
        (
            {"INFERSTACK_LOG_LEVEL": "loud"},
            "INFERSTACK_LOG_LEVEL has value 'loud'; allowed: debug, info, warning, error",
        ),
        (
            {"INFERSTACK_DTYPE": "bf16"},
            "INFERSTACK_DTYPE has value 'bf16', which needs INFERSTACK_BACKEND=torch;"
            " allowed with onnxruntime: fp32",
        ),
    ],
)
def test_bad_server_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ServerSettings.from_env({"MODEL_DIR": "/a", **env})
    assert str(caught.value) == message


def test_whole_numbers() -> None:
    env = {"N": "7", "EMPTY": ""}
    assert read_whole_number(env, "N", None) == 7
    assert read_whole_number(env, "N", 1, 7, 7) == 7
    assert read_whole_number(env, "EMPTY", 3) == 3
    assert read_whole_number(env, "UNSET", None) is None
    with pytest.raises(ConfigError, match=r"^N has value '7'; allowed: a whole number >= 8$"):
        read_whole_number(env, "N", None, 8)


@pytest.mark.parametrize(("raw", "value"), [("0", 0.0), ("2.5", 2.5), ("10000", 10_000.0)])
def test_numbers_in_range(raw: str, value: float) -> None:
    assert read_number({"D": raw}, "D", 1.0, 0, 10_000) == value


@pytest.mark.parametrize("raw", ["nan", "inf", "fast", "10000.5", "-0.1"])
def test_numbers_out_of_range(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        read_number({"D": raw}, "D", 1.0, 0, 10_000)
    assert str(caught.value) == f"D has value {raw!r}; allowed: a number 0..10000"


def test_choice() -> None:
    assert read_choice({}, "C", ("a", "b"), "a") == "a"
    assert read_choice({"C": "b"}, "C", ("a", "b"), "a") == "b"
    with pytest.raises(ConfigError) as caught:
        read_choice({"C": "B"}, "C", ("a", "b"), "a")
    assert str(caught.value) == "C has value 'B'; allowed: a, b"
