"""Backends: what an Engine runs a validated feed through.

A backend has the shape of an onnxruntime session (`run(output_names, feed)`), so the
Engine treats them alike. onnxruntime is the default and the only one the Lambda layer
ships; the torch backend's module is imported only when it is chosen (it is the one
serving module that needs torch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from model_runtime.backends.onnxruntime_backend import open_onnxruntime
from model_runtime.backends.options import BackendName, BackendOptions, Precision
from model_runtime.errors import ArtifactError

if TYPE_CHECKING:  # not imported with the package: the early session needs it light
    import numpy as np

    from model_runtime.early_open import EarlySession
    from model_runtime.manifest import BackendArtifact, Manifest

__all__ = [
    "Backend",
    "BackendName",
    "BackendOptions",
    "Precision",
    "backend_artifact",
    "open_backend",
]


class Backend(Protocol):
    def run(
        self, output_names: Sequence[str], feed: Mapping[str, np.ndarray[Any, Any]]
    ) -> list[np.ndarray[Any, Any]]: ...


def backend_artifact(manifest: Manifest, backend: str) -> BackendArtifact:
    artifact = manifest.backend_artifact(backend)
    if artifact is None:
        supported = ", ".join(b.backend for b in manifest.backend_artifacts())
        raise ArtifactError(
            f"model {manifest.name!r} has no {backend} artifact (it supports: {supported});"
            " export it again with a torch artifact to serve it with torch"
        )
    return artifact


def open_backend(
    directory: Path,
    manifest: Manifest,
    options: BackendOptions,
    threads: int | None,
    early: EarlySession | None = None,
) -> Backend:
    """Open the artifact's file for `options.backend` (taking `early`'s session when it
    is that one); errors name the file."""
    artifact = backend_artifact(manifest, options.backend)
    path = Path(directory) / artifact.file
    if options.backend == "torch":
        from model_runtime.backends.torch_backend import open_torch

        stage = manifest.preprocessing
        inputs = stage.model_inputs if stage is not None else manifest.inputs
        names = [spec.name for spec in inputs]
        return open_torch(path, artifact.format, names, manifest.outputs, options, threads)
    session: Backend = open_onnxruntime(path, options, threads, early)
    return session
