"""Runtime configuration from environment variables, validated at start.

Errors name the variable, its value and what is allowed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from model_runtime.app import DEFAULT_MAX_BODY_BYTES
from model_runtime.backends import BackendOptions
from model_runtime.delivery import S3Location, materialize
from model_runtime.engine import Engine
from model_runtime.errors import ConfigError


@dataclass(frozen=True)
class RuntimeSettings:
    model_dirs: tuple[Path, ...]
    threads: int | None
    max_body_bytes: int
    # From MODEL_URI: local dirs, /opt/models/<name> (a layer) or s3://bucket/prefix.
    model_uris: tuple[str, ...] = ()
    # CORS_ALLOW_ORIGIN: the browser origin allowed to call the API (set by the stack).
    cors_allow_origin: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RuntimeSettings:
        env = os.environ if environ is None else environ
        raw_dirs = env.get("MODEL_DIR", "").strip()
        model_uris = parse_model_uris(env.get("MODEL_URI", ""))
        if not raw_dirs and not model_uris:
            raise ConfigError(
                "neither MODEL_URI nor MODEL_DIR is set: set MODEL_URI to a model artifact"
                " directory, /opt/models/<name> or s3://bucket/prefix (several separated by"
                " ','), or MODEL_DIR to artifact directories (separated by ':')"
            )
        return cls(
            model_dirs=tuple(
                Path(on_opt(part, env)) for part in raw_dirs.split(os.pathsep) if part
            ),
            model_uris=tuple(on_opt(uri, env) for uri in model_uris),
            threads=_positive_int(env, "INFERSTACK_THREADS", None),
            max_body_bytes=_positive_int(env, "INFERSTACK_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)
            or DEFAULT_MAX_BODY_BYTES,
            cors_allow_origin=env.get("CORS_ALLOW_ORIGIN") or None,
        )

    def load_engines(self, options: BackendOptions | None = None) -> list[Engine]:
        backend = (options or BackendOptions()).backend
        downloaded = [materialize(uri, backend=backend) for uri in self.model_uris]
        return [
            Engine.load(directory, threads=self.threads, options=options)
            for directory in [*self.model_dirs, *downloaded]
        ]


def on_opt(path: str, env: Mapping[str, str]) -> str:
    """`path`, with /opt (where Lambda extracts layers) read from INFERSTACK_OPT_DIR when
    that is set: LocalStack's process executor cannot give a process its own /opt, so it
    merges the layers into a directory and names it there (never set on AWS)."""
    opt_dir = env.get("INFERSTACK_OPT_DIR")
    if opt_dir and (path == "/opt" or path.startswith("/opt/")):
        return opt_dir.rstrip("/") + path[len("/opt") :]
    return path


def parse_model_uris(raw: str) -> tuple[str, ...]:
    uris = tuple(part.strip() for part in raw.split(",") if part.strip())
    for uri in uris:
        if uri.startswith("s3:") and S3Location.parse(uri) is None:
            raise ConfigError(
                f"MODEL_URI has value {uri!r}; allowed: s3://<bucket>/<prefix>,"
                " /opt/models/<name> or another local directory"
            )
    return uris


def _positive_int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise ConfigError(f"{name} has value {raw!r}; allowed: a whole number >= 1")
    return int(raw)
