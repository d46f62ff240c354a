"""A Lambda cold start's onnxruntime session, opened on a thread while the rest of the
runtime is still being imported.

The init spends its time on two kinds of work: importing Python modules, which holds
the GIL, and hashing the model and creating its session, which onnxruntime and hashlib
do in C without it. One after the other they add up; here they overlap. The model file
is hashed before onnxruntime opens it, so onnxruntime still reads nothing that did not
match its manifest. The manifest is read as plain JSON because validating it (pydantic)
is among the imports this overlaps; the Engine takes the session only when the
validated manifest names the same file with the same hash and the session has the
threads and providers the Engine would give it. Anything else (an error here, another
backend, external data, other options) leaves the Engine to verify and open the model
as it always does: this only ever saves time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from model_runtime.artifact_files import (
    MANIFEST_FILE,
    MODEL_FILE,
    external_data_name,
    sha256_file,
)
from model_runtime.backends.onnxruntime_backend import create_session, providers_for


class EarlySession:
    """The session of the artifact in `directory`, opening on a thread from now on."""

    def __init__(self, directory: Path, threads: int | None) -> None:
        self.directory = Path(directory)
        self.threads = threads
        self._model_file: str | None = None
        self._sha256: str | None = None
        self._providers: list[Any] | None = None
        self._session: Any = None
        # Whether the Engine took the session (the cold-start tests look).
        self.taken = False
        self._thread = threading.Thread(target=self._open, name="early-session", daemon=True)
        self._thread.start()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EarlySession | None:
        """For the one local artifact MODEL_URI or MODEL_DIR names, with the threads
        INFERSTACK_THREADS asks for (read as RuntimeSettings reads them; a value that
        is not a whole number only means no match later); None for anything else."""
        uris = [part.strip() for part in env.get("MODEL_URI", "").split(",") if part.strip()]
        dirs = [part for part in env.get("MODEL_DIR", "").split(":") if part]
        local = [uri for uri in uris if not uri.startswith("s3:")]
        if len(uris) + len(dirs) != 1 or len(local) + len(dirs) != 1:
            return None
        raw_threads = env.get("INFERSTACK_THREADS") or ""
        threads = int(raw_threads) if raw_threads.isascii() and raw_threads.isdigit() else None
        return cls(Path([*local, *dirs][0]), threads)

    def _open(self) -> None:
        try:
            manifest = json.loads((self.directory / MANIFEST_FILE).read_bytes())
            name = manifest.get("model_file", MODEL_FILE)
            files = manifest["files"]
            if external_data_name(name) in files:  # weights beside the graph: not opened early
                return
            sha256 = sha256_file(self.directory / name)
            if sha256 != files[name]["sha256"]:
                return  # the Engine's verification names the file and both hashes
            import onnxruntime as ort

            providers = providers_for("auto", ort.get_available_providers())
            self._session = create_session(self.directory / name, self.threads, providers)
            self._model_file, self._sha256, self._providers = name, sha256, providers
        except Exception:  # whatever went wrong, the Engine meets it again and says so
            self._session = None

    def verified(self, directory: Path, name: str) -> str | None:
        """The sha256 this hashed `name` in `directory` to, if it opened a session on it."""
        self._thread.join()
        if self._session is None or Path(directory) != self.directory or name != self._model_file:
            return None
        return self._sha256

    def take(self, path: Path, threads: int | None, providers: Sequence[Any]) -> Any | None:
        """The session, if it is of `path` with these threads and providers; once."""
        self._thread.join()
        session, self._session = self._session, None
        if session is None or self._model_file is None:
            return None
        if Path(path) != self.directory / self._model_file:
            return None
        if threads != self.threads or list(providers) != self._providers:
            return None
        self.taken = True
        return session
