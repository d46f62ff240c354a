"""torch.nn.Module -> ONNX artifact directory, with a parity check against torch.

torch and onnx are imported lazily: this module is only used at build time.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Literal

import numpy as np

from model_build.errors import ExportError
from model_build.onnx_files import EXTERNAL_THRESHOLD_BYTES, save_onnx
from model_build.optimize import optimize_transformer
from model_build.parity import Arrays, compare, describe_failure, random_batches
from model_build.spec import EvalData, ModelSpec
from model_build.torch_export import export_torch_artifact
from model_runtime.backends.onnxruntime_backend import create_session
from model_runtime.backends.torch_backend import TorchFormat
from model_runtime.datatypes import from_onnx_type
from model_runtime.manifest import (
    MODEL_FILE,
    BackendArtifact,
    Evaluation,
    ExporterInfo,
    Manifest,
    OptimizationReport,
    SourceInfo,
    TensorSpec,
    TokenizerStage,
    hash_files,
)
from model_runtime.preprocess import TOKENIZER_FILE, TextTokenizer, TokenizerSpec

Exporter = Literal["torchscript", "dynamo"]
DEFAULT_OPSET = 17
# Graphs over this keep their weights in ONNX external data (model.onnx.data) even under
# protobuf's 2 GB: onnxruntime must parse a single file whole, while it maps external
# data. Measured here on BERT-base (440 MB): session creation 0.7 s instead of 2.1-3.2 s,
# peak memory 406 MB instead of 703 MB.
EXTERNAL_DATA_ABOVE_BYTES = 256 * 1024 * 1024


def export_model(
    spec: ModelSpec,
    out_dir: Path,
    *,
    source: SourceInfo | None = None,
    opset: int = DEFAULT_OPSET,
    exporter: Exporter = "torchscript",
    atol: float = 1e-4,
    rtol: float = 1e-3,
    batch_sizes: Sequence[int] = (1, 4, 32),
    seed: int = 0,
    torch_format: TorchFormat | None = "torch_export",
    external_data_above_bytes: int = EXTERNAL_DATA_ABOVE_BYTES,
) -> Manifest:
    """Export `spec.module` to `out_dir/{model.onnx, manifest.json}`, plus the torch
    backend's artifact (`model.pt2`) unless `torch_format` is None; a graph over
    `external_data_above_bytes` keeps its weights beside it in `model.onnx.data`. A transformer
    encoder's graph (`spec.transformer`) is fused by onnxruntime's transformer optimizer
    first: model.onnx is the fused graph, and parity is checked on it.

    Fails with ExportError, leaving any previous artifact in `out_dir` untouched, when
    the ONNX model's outputs differ from torch's beyond atol/rtol.
    """
    if opset < DEFAULT_OPSET:
        raise ExportError(f"opset {opset} is too old; allowed: {DEFAULT_OPSET} or newer")
    with _staging_dir(out_dir) as staging:
        model_path = staging / MODEL_FILE
        # The exporters write a large model's weights as one file per tensor: the graph
        # is settled into the artifact's layout from a scratch directory.
        scratch = staging / ".export"
        scratch.mkdir()
        exported = scratch / MODEL_FILE
        large = _parameter_bytes(spec.module) > EXTERNAL_THRESHOLD_BYTES
        _export_onnx(spec, exported, opset, exporter, external_data=large)
        optimization = None
        if spec.transformer is not None:
            optimization = optimize_transformer(
                exported, spec.transformer, spec.name, external_data=large
            )
        model_files = _settle(exported, model_path, external_data_above_bytes)
        shutil.rmtree(scratch)
        session = create_session(model_path)
        run_onnx = _onnx_runner(session, spec.output_names)
        batches = [
            dict(spec.example_inputs),
            *random_batches(spec.example_inputs, batch_sizes, seed),
        ]
        parity = compare(
            _torch_runner(spec), run_onnx, batches, reference_name="torch", atol=atol, rtol=rtol
        )
        if not parity.passed:
            fused = (
                f" (the graph fused by onnxruntime's transformer optimizer:"
                f" {_fused_summary(optimization)})"
                if optimization is not None
                else ""
            )
            raise ExportError(
                f"export of {spec.name!r} failed parity{fused}: {describe_failure(parity)}"
            )
        backends = [BackendArtifact(backend="onnxruntime", file=MODEL_FILE, format="onnx")]
        if torch_format is not None:
            outputs = _tensor_specs(session.get_outputs())
            backends.append(
                export_torch_artifact(
                    spec, staging, torch_format, run_onnx, batches, outputs, atol=atol, rtol=rtol
                )
            )
        inputs = _tensor_specs(session.get_inputs())
        preprocessing = None
        if spec.tokenizer is not None:
            inputs, preprocessing = _tokenizer_stage(spec.tokenizer, inputs, staging)
        manifest = Manifest(
            name=spec.name,
            version=spec.version,
            created_at=datetime.now(UTC),
            files=hash_files(
                staging,
                [
                    *model_files,
                    *(artifact.file for artifact in backends if artifact.backend != "onnxruntime"),
                    *([preprocessing.file] if preprocessing else []),
                ],
            ),
            inputs=inputs,
            outputs=_tensor_specs(session.get_outputs()),
            opset=opset,
            exporter=_exporter_info(exporter),
            max_batch_size=spec.max_batch_size,
            parity=parity,
            optimization=optimization,
            evaluation=evaluate(run_onnx, spec.eval_data, spec.classifier_output),
            labels=spec.labels,
            source=source,
            preprocessing=preprocessing,
            backends=backends,
            promotion_gate=spec.promotion_gate,
        )
        manifest.write(staging)
    return manifest


def _tokenizer_stage(
    tokenizer: TokenizerSpec, model_inputs: list[TensorSpec], staging: Path
) -> tuple[list[TensorSpec], TokenizerStage]:
    """Ship the tokenizer in the artifact; clients then send text, not token ids."""
    shutil.copyfile(tokenizer.path, staging / TOKENIZER_FILE)
    stage = TokenizerStage(
        file=TOKENIZER_FILE,
        input=tokenizer.input_name,
        max_length=tokenizer.max_length,
        model_inputs=model_inputs,
    )
    TextTokenizer.load(staging, stage)  # fail the export, not the first cold start
    return [TensorSpec(name=tokenizer.input_name, datatype="BYTES", shape=[-1])], stage


def evaluate(run: Any, data: EvalData | None, classifier_output: str | None) -> Evaluation | None:
    if data is None or classifier_output is None:
        return None
    predictions = predicted_classes(run, data, classifier_output)
    return Evaluation(
        dataset=data.dataset,
        samples=len(data.labels),
        accuracy=float(np.mean(predictions == data.labels)),
    )


def predicted_classes(run: Any, data: EvalData, classifier_output: str) -> np.ndarray[Any, Any]:
    scores = np.asarray(run(data.inputs)[classifier_output])
    classes: np.ndarray[Any, Any] = scores.argmax(axis=1)
    return classes


@contextmanager
def _staging_dir(out_dir: Path) -> Iterator[Path]:
    """Build into a sibling temp dir; swap it in only when everything succeeded."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    staging.chmod(0o755)
    try:
        yield staging
        if out_dir.exists():
            retired = out_dir.with_name(f".{out_dir.name}.old")
            shutil.rmtree(retired, ignore_errors=True)
            out_dir.rename(retired)
            staging.rename(out_dir)
            shutil.rmtree(retired)
        else:
            staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _parameter_bytes(module: Any) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def _settle(exported: Path, path: Path, external_data_above_bytes: int) -> list[str]:
    """The exported graph, written to `path` as one file or with its weights in
    `<path>.data`; the names written, the model file first."""
    import onnx

    return save_onnx(
        onnx.load(str(exported)), path, external_threshold_bytes=external_data_above_bytes
    )


def _export_onnx(
    spec: ModelSpec, path: Path, opset: int, exporter: Exporter, *, external_data: bool
) -> None:
    import onnx
    import torch

    input_names = list(spec.example_inputs)
    dynamic_axes: dict[str, dict[int, str]] = {}
    for name in [*input_names, *spec.output_names]:
        dynamic_axes[name] = {0: "batch", **spec.extra_dynamic_axes.get(name, {})}
    args = tuple(torch.from_numpy(spec.example_inputs[name]) for name in input_names)
    spec.module.eval()
    try:
        with torch.no_grad():
            torch.onnx.export(
                spec.module,
                args,
                str(path),
                input_names=input_names,
                output_names=spec.output_names,
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                dynamo=exporter == "dynamo",
                # Protobuf cannot hold a model over 2 GB in one message.
                external_data=external_data,
                # No "[torch.onnx] ..." progress lines (dynamo): the build reports its own.
                verbose=False,
            )
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:
        raise ExportError(f"ONNX export of {spec.name!r} ({exporter}) failed: {exc}") from exc


def _torch_runner(spec: ModelSpec) -> Any:
    import torch

    def run(batch: Arrays) -> Arrays:
        with torch.no_grad():
            result = spec.module(*(torch.from_numpy(batch[name]) for name in spec.example_inputs))
        if isinstance(result, torch.Tensor):
            result = (result,)
        return {
            name: tensor.numpy() for name, tensor in zip(spec.output_names, result, strict=True)
        }

    return run


def _onnx_runner(session: Any, output_names: list[str]) -> Any:
    def run(batch: Arrays) -> Arrays:
        try:
            return dict(zip(output_names, session.run(output_names, batch), strict=True))
        except Exception as exc:  # onnxruntime raises its own untyped errors
            shapes = {name: list(array.shape) for name, array in batch.items()}
            raise ExportError(
                f"the ONNX model fails on inputs of shape {shapes} (a dimension frozen at"
                f" export?): {exc}"
            ) from exc

    return run


def _fused_summary(report: OptimizationReport) -> str:
    return ", ".join(f"{count} {op}" for op, count in report.fused_ops.items()) or "nothing fused"


def _tensor_specs(nodes: Sequence[Any]) -> list[TensorSpec]:
    return [
        TensorSpec(
            name=node.name,
            datatype=from_onnx_type(node.type),
            shape=[dim if isinstance(dim, int) else -1 for dim in node.shape],
        )
        for node in nodes
    ]


def _exporter_info(exporter: Exporter) -> ExporterInfo:
    return ExporterInfo(
        name=f"torch.onnx.export ({exporter})",
        torch_version=package_version("torch"),
        onnx_version=package_version("onnx"),
        onnxruntime_version=package_version("onnxruntime"),
    )
