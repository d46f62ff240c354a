"""torch: a `torch.export` ExportedProgram (model.pt2) or TorchScript artifact, on CPU or CUDA.

Imported only when the torch backend is chosen (model_build.torch_export writes these
files); torch itself only when a model is opened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from model_runtime.backends.options import BackendOptions
from model_runtime.datatypes import to_numpy
from model_runtime.errors import ArtifactError, BackendUnavailable
from model_runtime.manifest import TensorSpec

TorchFormat = Literal["torch_export", "torchscript"]
TORCH_FILES: dict[str, str] = {"torch_export": "model.pt2", "torchscript": "model.torchscript"}


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise BackendUnavailable(
            f"the torch backend needs PyTorch, which cannot be imported here: {exc}", "backend"
        ) from exc
    return torch


def resolve_device(torch: Any, device: str) -> str:
    if device == "cpu":
        return device
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    _, _, index = device.partition(":")
    if int(index or 0) >= count:
        raise BackendUnavailable(
            f"device {device!r} is not available: this host has {count} CUDA device(s)", "device"
        )
    return device


class TorchBackend:
    def __init__(
        self,
        module: Any,
        input_names: Sequence[str],
        outputs: Sequence[TensorSpec],
        device: str,
        dtype: Any,
    ) -> None:
        self._torch = _import_torch()
        self._module = module
        self.device = device
        self.dtype = dtype
        self._input_names = list(input_names)
        self._output_names = [spec.name for spec in outputs]
        self._output_dtypes = {spec.name: to_numpy(spec.datatype) for spec in outputs}

    def run(
        self, output_names: Sequence[str], feed: Mapping[str, np.ndarray[Any, Any]]
    ) -> list[np.ndarray[Any, Any]]:
        torch = self._torch
        with torch.inference_mode():
            args = [self._to_device(torch.from_numpy(feed[name])) for name in self._input_names]
            result = self._module(*args)
            if isinstance(result, torch.Tensor):
                result = (result,)
            outputs = dict(zip(self._output_names, result, strict=True))
            return [self._to_numpy(name, outputs[name]) for name in output_names]

    def _to_device(self, tensor: Any) -> Any:
        if tensor.is_floating_point():
            return tensor.to(self.device, self.dtype)
        return tensor.to(self.device)

    def _to_numpy(self, name: str, tensor: Any) -> np.ndarray[Any, Any]:
        want = self._output_dtypes[name]
        if tensor.is_floating_point() and want.kind == "f":
            # Reduced-precision runs still answer in the manifest's datatype.
            tensor = tensor.to(getattr(self._torch, want.name))
        array: np.ndarray[Any, Any] = tensor.cpu().numpy()
        return array.astype(want, copy=False)


def open_torch(
    path: Path,
    torch_format: str,
    input_names: Sequence[str],
    outputs: Sequence[TensorSpec],
    options: BackendOptions,
    threads: int | None,
) -> TorchBackend:
    torch = _import_torch()
    device = resolve_device(torch, options.device)
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[options.dtype]
    if threads:
        torch.set_num_threads(threads)
    try:
        if torch_format == "torchscript":
            module = torch.jit.load(str(path), map_location=device).eval()
        else:
            program = torch.export.load(str(path))
            if device != "cpu":
                from torch.export.passes import move_to_device_pass

                program = move_to_device_pass(program, device)
            module = program.module()
        module = module.to(device=device, dtype=dtype)
    except Exception as exc:  # torch raises many kinds of errors on a bad file
        raise ArtifactError(f"cannot load model file {path}: {exc}") from exc
    return TorchBackend(module, input_names, outputs, device, dtype)
