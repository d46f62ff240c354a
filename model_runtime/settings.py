"""Runtime configuration from environment variables, validated at start.

Errors name the variable, its value and what is allowed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from model_runtime.app import DEFAULT_MAX_BODY_BYTES
from model_runtime.engine import Engine


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class RuntimeSettings:
    model_dirs: tuple[Path, ...]
    threads: int | None
    max_body_bytes: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RuntimeSettings:
        env = os.environ if environ is None else environ
        raw_dirs = env.get("MODEL_DIR", "").strip()
        if not raw_dirs:
            raise ConfigError(
                "MODEL_DIR is not set: set it to a model artifact directory"
                " (several separated by ':')"
            )
        return cls(
            model_dirs=tuple(Path(part) for part in raw_dirs.split(os.pathsep) if part),
            threads=_positive_int(env, "INFERSTACK_THREADS", None),
            max_body_bytes=_positive_int(env, "INFERSTACK_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)
            or DEFAULT_MAX_BODY_BYTES,
        )

    def load_engines(self) -> list[Engine]:
        return [Engine.load(directory, threads=self.threads) for directory in self.model_dirs]


def _positive_int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{name} has value {raw!r}; allowed: a whole number >= 1")
    return int(raw)
