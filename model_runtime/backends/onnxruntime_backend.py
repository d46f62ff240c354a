"""onnxruntime: the CUDA execution provider when onnxruntime-gpu is installed, else CPU."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from model_runtime.engine import create_session
from model_runtime.errors import ArtifactError, BackendUnavailable

if TYPE_CHECKING:
    from model_runtime.backends import BackendOptions

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def providers_for(device: str, available: list[str]) -> list[Any]:
    """Provider names, or (name, options) pairs, as InferenceSession takes them."""
    if device == "cpu" or (device == "auto" and CUDA not in available):
        return [CPU]
    if CUDA not in available:
        raise BackendUnavailable(
            f"device {device!r} needs onnxruntime's {CUDA}, which this onnxruntime does not"
            f" have (available: {', '.join(available)}); install onnxruntime-gpu or use the"
            " torch backend",
            "device",
        )
    _, _, index = device.partition(":")
    return [(CUDA, {"device_id": int(index or 0)}), (CPU, {})]


def open_onnxruntime(path: Path, options: BackendOptions, threads: int | None) -> Any:
    import onnxruntime as ort

    providers = providers_for(options.device, ort.get_available_providers())
    try:
        return create_session(path, threads, providers=providers)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ArtifactError(f"cannot load model file {path}: {exc}") from exc
