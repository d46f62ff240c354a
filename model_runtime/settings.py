"""Runtime configuration from environment variables, validated at start.

The one parser of the environment: `RuntimeSettings` (what the Lambda handler and the
container server both read) and the typed readers the server reads its own variables
with. Errors name the variable, its value and what is allowed:
"INFERSTACK_X has value 'y'; allowed: ...".
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, overload

from model_runtime.backends import BackendOptions
from model_runtime.delivery import S3Location, materialize
from model_runtime.engine import Engine
from model_runtime.errors import ConfigError, OptionNotAllowed
from model_runtime.manifest import NAME_PATTERN
from model_runtime.middleware import DEFAULT_MAX_BODY_BYTES
from model_runtime.telemetry.coldstart import ColdStart

if TYPE_CHECKING:
    from model_runtime.early_open import EarlySession

# The variable each BackendOptions field is read from.
BACKEND_ENV = {
    "backend": "INFERSTACK_BACKEND",
    "device": "INFERSTACK_DEVICE",
    "dtype": "INFERSTACK_DTYPE",
}


@dataclass(frozen=True)
class RuntimeSettings:
    model_dirs: tuple[Path, ...]
    threads: int | None
    max_body_bytes: int
    # From MODEL_URI: local dirs, /opt/models/<name> (a layer) or s3://bucket/prefix.
    model_uris: tuple[str, ...] = ()
    # CORS_ALLOW_ORIGIN: the browser origin allowed to call the API (set by the stack).
    cors_allow_origin: str | None = None
    # INFERSTACK_METRICS (on, off): the Lambda handler's EMF line per request; on in Lambda.
    metrics: bool = False
    # INFERSTACK_LOG_FORMAT (json, text): the `inferstack` logger's lines; json in Lambda.
    log_format: str = "text"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RuntimeSettings:
        env = os.environ if environ is None else environ
        raw_dirs = env.get("MODEL_DIR", "").strip()
        model_uris = parse_model_uris(env.get("MODEL_URI", ""))
        # The Lambda runtime sets AWS_LAMBDA_FUNCTION_NAME; there, telemetry is on.
        in_lambda = bool(env.get("AWS_LAMBDA_FUNCTION_NAME"))
        default_on, default_format = ("on", "json") if in_lambda else ("off", "text")
        if not raw_dirs and not model_uris:
            raise ConfigError(
                "neither MODEL_URI nor MODEL_DIR is set: set MODEL_URI to a model artifact"
                " directory, /opt/models/<name> or s3://bucket/prefix (several separated by"
                " ','), or MODEL_DIR to artifact directories (separated by ':')"
            )
        return cls(
            model_dirs=tuple(Path(part) for part in raw_dirs.split(os.pathsep) if part),
            model_uris=model_uris,
            threads=read_whole_number(env, "INFERSTACK_THREADS", None),
            max_body_bytes=read_whole_number(
                env, "INFERSTACK_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES
            ),
            cors_allow_origin=env.get("CORS_ALLOW_ORIGIN") or None,
            metrics=read_choice(env, "INFERSTACK_METRICS", SWITCH, default_on) == "on",
            log_format=read_choice(env, "INFERSTACK_LOG_FORMAT", LOG_FORMATS, default_format),
        )

    def load_engines(
        self,
        options: BackendOptions | None = None,
        cold_start: ColdStart | None = None,
        early: EarlySession | None = None,
    ) -> list[Engine]:
        """Every configured model, fetched and verified, its backend open (`early`'s
        session where it is that model's); `cold_start` gets the time of each (fetch and
        verification are "artifact", the rest "session")."""
        backend = (options or BackendOptions()).backend
        timer = cold_start if cold_start is not None else ColdStart()
        # An s3:// artifact is hashed as it downloads, into this environment's /tmp (only
        # a directory whose every file matched is kept): verified, not hashed again.
        downloaded = [
            (materialize(uri, backend=backend), S3Location.parse(uri) is not None)
            for uri in self.model_uris
        ]
        timer.add("artifact")
        engines = []
        for directory, verified in [*((path, False) for path in self.model_dirs), *downloaded]:
            engine = Engine.load(
                directory,
                threads=self.threads,
                options=options,
                on_verified=lambda: timer.add("artifact"),
                verified=verified,
                early=early,
            )
            timer.add("session")
            engines.append(engine)
        return engines


SWITCH = ("on", "off")
LOG_FORMATS = ("json", "text")


def parse_model_uris(raw: str) -> tuple[str, ...]:
    uris = tuple(part.strip() for part in raw.split(",") if part.strip())
    for uri in uris:
        if uri.startswith("s3:") and S3Location.parse(uri) is None:
            raise ConfigError(
                f"MODEL_URI has value {uri!r}; allowed: s3://<bucket>/<prefix>,"
                " /opt/models/<name> or another local directory"
            )
    return uris


def read_served_name(env: Mapping[str, str], name: str, runtime: RuntimeSettings) -> str | None:
    """The name to serve the one configured model under (None: its manifest's name)."""
    value = env.get(name) or None
    if value is None:
        return None
    if not re.fullmatch(NAME_PATTERN, value):
        raise ConfigError(
            f"{name} has value {value!r}; allowed: a model name (lowercase letters, digits and"
            " '_.-', starting with a letter or digit, at most 63 characters)"
        )
    models = len(runtime.model_dirs) + len(runtime.model_uris)
    if models != 1:
        raise ConfigError(
            f"{name} has value {value!r}, which renames exactly one model; MODEL_DIR and"
            f" MODEL_URI configure {models}"
        )
    return value


def read_backend_options(env: Mapping[str, str]) -> BackendOptions:
    """BackendOptions from BACKEND_ENV's variables, checked by BackendOptions itself; the
    error names the variable."""
    defaults = BackendOptions()
    backend = env.get(BACKEND_ENV["backend"]) or defaults.backend
    device = env.get(BACKEND_ENV["device"]) or defaults.device
    dtype = env.get(BACKEND_ENV["dtype"]) or defaults.dtype
    try:
        return BackendOptions.parse(backend, device, dtype)
    except OptionNotAllowed as exc:
        name, allowed = BACKEND_ENV[exc.option], ", ".join(exc.allowed)
        if exc.needs_backend is not None:
            raise ConfigError(
                f"{name} has value {exc.value!r}, which needs"
                f" {BACKEND_ENV['backend']}={exc.needs_backend}; allowed with {backend}: {allowed}"
            ) from None
        raise ConfigError(f"{name} has value {exc.value!r}; allowed: {allowed}") from None


def read_choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = env.get(name) or default
    if value not in allowed:
        raise ConfigError(f"{name} has value {value!r}; allowed: {', '.join(allowed)}")
    return value


@overload
def read_whole_number(
    env: Mapping[str, str], name: str, default: int, low: int = 1, high: int | None = None
) -> int: ...
@overload
def read_whole_number(
    env: Mapping[str, str], name: str, default: None, low: int = 1, high: int | None = None
) -> int | None: ...
def read_whole_number(
    env: Mapping[str, str], name: str, default: int | None, low: int = 1, high: int | None = None
) -> int | None:
    """A whole number in low..high (no upper bound when `high` is None); `default` when
    the variable is unset or empty."""
    raw = env.get(name) or ""
    if not raw:
        return default
    whole = raw.isascii() and raw.isdigit()
    if not whole or int(raw) < low or (high is not None and int(raw) > high):
        bounds = f">= {low}" if high is None else f"{low}..{high}"
        raise ConfigError(f"{name} has value {raw!r}; allowed: a whole number {bounds}")
    return int(raw)


def read_number(
    env: Mapping[str, str], name: str, default: float, low: float, high: float
) -> float:
    raw = env.get(name) or ""
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not low <= value <= high:
        raise ConfigError(f"{name} has value {raw!r}; allowed: a number {low:g}..{high:g}")
    return value
