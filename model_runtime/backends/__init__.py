"""Backends: what an Engine runs a validated feed through.

A backend has the shape of an onnxruntime session (`run(output_names, feed)`), so the
Engine treats them alike. onnxruntime is the default and the only one the Lambda layer
ships; torch is imported only when its backend is chosen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

import numpy as np

from model_runtime.errors import ArtifactError, BackendUnavailable
from model_runtime.manifest import BackendArtifact, Manifest

BackendName = Literal["onnxruntime", "torch"]
Precision = Literal["fp32", "fp16", "bf16"]
BACKEND_NAMES: tuple[str, ...] = get_args(BackendName)
PRECISIONS: tuple[str, ...] = get_args(Precision)


class Backend(Protocol):
    def run(
        self, output_names: Sequence[str], feed: Mapping[str, np.ndarray[Any, Any]]
    ) -> list[np.ndarray[Any, Any]]: ...


@dataclass(frozen=True)
class BackendOptions:
    backend: BackendName = "onnxruntime"
    # "auto" takes CUDA when this host has it (and the backend can use it), else CPU.
    device: str = "auto"
    dtype: Precision = "fp32"

    def __post_init__(self) -> None:
        check_device(self.device)
        if self.backend not in BACKEND_NAMES:
            raise BackendUnavailable(
                f"backend {self.backend!r} is unknown; allowed: {', '.join(BACKEND_NAMES)}",
                "backend",
            )
        if self.dtype not in PRECISIONS:
            raise BackendUnavailable(
                f"dtype {self.dtype!r} is unknown; allowed: {', '.join(PRECISIONS)}", "dtype"
            )
        if self.backend == "onnxruntime" and self.dtype != "fp32":
            raise BackendUnavailable(
                f"dtype {self.dtype!r} needs the torch backend; onnxruntime runs the model"
                " as exported (fp32, or int8 when quantized)",
                "dtype",
            )


def check_device(device: str) -> None:
    kind, _, index = device.partition(":")
    if device in ("auto", "cpu", "cuda") or (kind == "cuda" and index.isdigit()):
        return
    raise BackendUnavailable(
        f"device {device!r} is unknown; allowed: auto, cpu, cuda, cuda:N", "device"
    )


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
    directory: Path, manifest: Manifest, options: BackendOptions, threads: int | None
) -> Backend:
    """Open the artifact's file for `options.backend`; errors name the file."""
    artifact = backend_artifact(manifest, options.backend)
    path = Path(directory) / artifact.file
    if options.backend == "torch":
        from model_runtime.backends.torch_backend import open_torch

        stage = manifest.preprocessing
        inputs = stage.model_inputs if stage is not None else manifest.inputs
        names = [spec.name for spec in inputs]
        return open_torch(path, artifact.format, names, manifest.outputs, options, threads)
    from model_runtime.backends.onnxruntime_backend import open_onnxruntime

    session: Backend = open_onnxruntime(path, options, threads)
    return session
