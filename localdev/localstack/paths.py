"""Where LocalStack lives on this machine: its virtualenv, and its data under build/."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from layers.package import project_root

REPO_ROOT = project_root()


@dataclass(frozen=True)
class Paths:
    venv: Path
    data: Path

    @classmethod
    def default(cls, root: Path = REPO_ROOT) -> Paths:
        return cls(venv=root / ".localstack-venv", data=root / "build" / "localstack")

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def stamp(self) -> Path:
        return self.venv / ".inferstack-install.json"

    @property
    def pid_file(self) -> Path:
        return self.data / "localstack.pid"

    @property
    def log_file(self) -> Path:
        return self.data / "localstack.log"

    @property
    def install_log(self) -> Path:
        return self.data / "install.log"

    @property
    def executor_dir(self) -> Path:
        return self.data / "lambda"

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Serialises installs and starts across processes (two test runs, say)."""
        self.data.mkdir(parents=True, exist_ok=True)
        with open(self.data / f".{name}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
