"""The torch backend's artifact: a module written as `torch.export` (model.pt2) or
TorchScript, loaded back from its file and measured against onnxruntime.

torch is imported lazily: this module is only used at build time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from model_build.errors import ExportError
from model_build.parity import Arrays, RunFn, compare, describe_failure
from model_build.spec import ModelSpec
from model_runtime.backends import BackendOptions
from model_runtime.backends.torch_backend import TORCH_FILES, TorchFormat, open_torch
from model_runtime.manifest import BackendArtifact, TensorSpec


def export_torch(
    module: Any,
    example_inputs: Mapping[str, np.ndarray[Any, Any]],
    directory: Path,
    torch_format: TorchFormat,
    extra_dynamic_axes: Mapping[str, Mapping[int, str]],
) -> str:
    """Write the module as `torch_format` into `directory`; return the file's name."""
    import torch

    args = tuple(torch.from_numpy(array) for array in example_inputs.values())
    name = TORCH_FILES[torch_format]
    module.eval()
    try:
        if torch_format == "torchscript":
            with torch.no_grad():
                traced = torch.jit.trace(module, args)  # type: ignore[no-untyped-call]  # unannotated in torch
                torch.jit.save(traced, str(directory / name))
        else:
            dynamic = torch.export.Dim.DYNAMIC
            shapes = tuple(
                {0: dynamic, **{axis: dynamic for axis in extra_dynamic_axes.get(input_name, {})}}
                for input_name in example_inputs
            )
            program = torch.export.export(module, args, dynamic_shapes=shapes)
            torch.export.save(program, str(directory / name))
    except Exception as exc:
        raise ExportError(
            f"{torch_format} export failed: {exc}; export without the torch artifact"
            " (torch_format=None) or try torch_format='torchscript'"
        ) from exc
    return name


def export_torch_artifact(
    spec: ModelSpec,
    directory: Path,
    torch_format: TorchFormat,
    reference: RunFn,
    batches: Sequence[Arrays],
    outputs: Sequence[TensorSpec],
    *,
    atol: float,
    rtol: float,
) -> BackendArtifact:
    """Write the torch artifact and measure it, loaded back from its file, against
    onnxruntime on the export's parity batches."""
    name = export_torch(
        spec.module, spec.example_inputs, directory, torch_format, spec.extra_dynamic_axes
    )
    backend = open_torch(
        directory / name,
        torch_format,
        list(spec.example_inputs),
        outputs,
        BackendOptions(backend="torch", device="cpu"),
        None,
    )

    def run(batch: Arrays) -> Arrays:
        return dict(zip(spec.output_names, backend.run(spec.output_names, batch), strict=True))

    parity = compare(reference, run, batches, reference_name="onnxruntime", atol=atol, rtol=rtol)
    if not parity.passed:
        raise ExportError(
            f"{torch_format} artifact of {spec.name!r} failed parity: {describe_failure(parity)}"
        )
    return BackendArtifact(backend="torch", file=name, format=torch_format, parity=parity)
