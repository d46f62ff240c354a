"""The jobs and batches configuration of one model's function, from the environment the
stack sets (infra's LambdaModel)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from model_runtime.errors import ConfigError
from model_runtime.settings import read_whole_number

BUCKET_ENV = "INFERSTACK_JOBS_BUCKET"
PREFIX_ENV = "INFERSTACK_JOBS_PREFIX"
QUEUE_URL_ENV = "INFERSTACK_JOBS_QUEUE_URL"
MAX_RECEIVES_ENV = "INFERSTACK_JOBS_MAX_RECEIVES"
BATCH_PREFIX_ENV = "INFERSTACK_BATCH_PREFIX"
BATCH_CHUNK_LINES_ENV = "INFERSTACK_BATCH_CHUNK_LINES"


@dataclass(frozen=True)
class BatchSettings:
    prefix: str  # "<prefix>/<model>": in/, out/ and work/ are under it
    chunk_lines: int


@dataclass(frozen=True)
class JobsSettings:
    bucket: str
    prefix: str  # "jobs/<model>"
    queue_url: str
    max_receives: int
    batch: BatchSettings | None = None

    @property
    def model(self) -> str:
        """The model the jobs are for: the prefix's last part, as the stack names it."""
        return self.prefix.rpartition("/")[2]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> JobsSettings | None:
        """None when the function has no jobs (INFERSTACK_JOBS_BUCKET unset)."""
        env = os.environ if environ is None else environ
        bucket = env.get(BUCKET_ENV, "").strip()
        if not bucket:
            return None
        batch_prefix = _path_prefix(env, BATCH_PREFIX_ENV, required=False)
        batch = None
        if batch_prefix is not None:
            batch = BatchSettings(
                prefix=batch_prefix,
                chunk_lines=read_whole_number(env, BATCH_CHUNK_LINES_ENV, 1000, 1, 100_000),
            )
        return cls(
            bucket=bucket,
            prefix=_path_prefix(env, PREFIX_ENV, required=True) or "",
            queue_url=_required(env, QUEUE_URL_ENV),
            max_receives=read_whole_number(env, MAX_RECEIVES_ENV, 3, 1, 1000),
            batch=batch,
        )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"{name} is not set; it is needed when {BUCKET_ENV} is set")
    return value


def _path_prefix(env: Mapping[str, str], name: str, *, required: bool) -> str | None:
    """A key prefix like "jobs/digits": at least two non-empty parts, no slash at
    either end."""
    if not required and not env.get(name, "").strip():
        return None
    value = _required(env, name)
    parts = value.split("/")
    if len(parts) < 2 or not all(parts):
        raise ConfigError(
            f"{name} has value {value!r}; allowed: <prefix>/<model>, e.g. jobs/digits"
        )
    return value
