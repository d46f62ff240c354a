"""onnxruntime: the CUDA execution provider when onnxruntime-gpu is installed, else CPU.

`create_session` is also what the build (export, quantize, parity) runs ONNX models with,
so a model is measured in the session it is served in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model_runtime.backends.options import BackendOptions
from model_runtime.errors import ArtifactError, BackendUnavailable, InvalidInput
from model_runtime.host import available_cpus

if TYPE_CHECKING:  # imported by model_runtime.early_open, which must stay light
    import numpy as np

    from model_runtime.early_open import EarlySession

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


class OnnxRuntimeBackend:
    """A session whose INVALID_ARGUMENT errors are the request's fault (values the graph
    refuses after validation passed, e.g. a token id past the vocabulary): InvalidInput,
    a 400, not a 500."""

    def __init__(self, session: Any) -> None:
        from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

        self._session = session
        self._invalid_argument: type[Exception] = InvalidArgument

    @property
    def session(self) -> Any:
        """The onnxruntime InferenceSession."""
        return self._session

    def run(
        self, output_names: Sequence[str], feed: Mapping[str, np.ndarray[Any, Any]]
    ) -> list[np.ndarray[Any, Any]]:
        try:
            results: list[np.ndarray[Any, Any]] = self._session.run(output_names, feed)
        except self._invalid_argument as exc:
            names = ", ".join(repr(name) for name in feed)
            raise InvalidInput(f"the model refused the values of input(s) {names}: {exc}") from exc
        return results


def open_onnxruntime(
    path: Path, options: BackendOptions, threads: int | None, early: EarlySession | None = None
) -> OnnxRuntimeBackend:
    import onnxruntime as ort

    providers = providers_for(options.device, ort.get_available_providers())
    session = early.take(path, threads, providers) if early is not None else None
    if session is None:
        try:
            session = create_session(path, threads, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ArtifactError(f"cannot load model file {path}: {exc}") from exc
    return OnnxRuntimeBackend(session)
