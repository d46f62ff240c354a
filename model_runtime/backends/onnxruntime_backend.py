"""onnxruntime: the CUDA execution provider when onnxruntime-gpu is installed, else CPU.

`create_session` is also what the build (export, quantize, parity) runs ONNX models with,
so a model is measured in the session it is served in.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from model_runtime.backends.options import BackendOptions
from model_runtime.errors import ArtifactError, BackendUnavailable
from model_runtime.host import available_cpus

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def create_session(
    model_path: Path,
    threads: int | None = None,
    providers: Sequence[Any] = (CPU,),
) -> Any:
    """An onnxruntime session (CPU unless `providers` say otherwise) sized for this host.

    Nothing is written to disk: no optimized-model cache, no profiling, no telemetry
    (Lambda only allows writes under /tmp).
    """
    import onnxruntime as ort

    ort.disable_telemetry_events()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or available_cpus()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.enable_profiling = False
    options.log_severity_level = 3
    return ort.InferenceSession(str(model_path), sess_options=options, providers=list(providers))


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
