"""Dynamic int8 quantization of an exported artifact, measured against its fp32 source."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from model_build.errors import ExportError
from model_build.export import _onnx_runner, _staging_dir, evaluate, predicted_classes
from model_build.parity import compare, random_batches
from model_build.spec import ModelSpec
from model_runtime.backends.onnxruntime_backend import create_session
from model_runtime.manifest import (
    MODEL_FILE,
    Manifest,
    QuantizationReport,
    hash_files,
    verify_artifact,
)


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantizer logs advice on the root logger; keep CLI output clean."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_artifact(
    source_dir: Path,
    out_dir: Path,
    spec: ModelSpec,
    *,
    per_channel: bool = True,
    min_top1_agreement: float = 0.97,
    atol: float = 0.05,
    rtol: float = 0.1,
    batch_sizes: Sequence[int] = (1, 4, 32),
    seed: int = 0,
) -> Manifest:
    """Write an int8 copy of the fp32 artifact in `source_dir` to `out_dir`.

    Its manifest's `parity` compares int8 with fp32 (recorded, not enforced: int8 is
    expected to differ); for a classifier, export fails when top-1 agreement with fp32
    on the held-out set is under `min_top1_agreement`.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = Manifest.load(source_dir)
    # The report names the source by its manifest hash: make sure that is what we read.
    verify_artifact(Path(source_dir), source)
    kept_fp32 = _nodes_matching(Path(source_dir) / source.model_file, spec.int8_keep_fp32)
    with _staging_dir(out_dir) as staging:
        model_path = staging / MODEL_FILE
        try:
            with _quiet_root_logger():
                quantize_dynamic(
                    Path(source_dir) / source.model_file,
                    model_path,
                    weight_type=QuantType.QInt8,
                    per_channel=per_channel,
                    nodes_to_exclude=kept_fp32,
                )
        except Exception as exc:
            raise ExportError(f"int8 quantization of {source.name!r} failed: {exc}") from exc
        # Files beside the model (a tokenizer) travel unchanged.
        companions = [n for n in source.files_for("onnxruntime") if n != source.model_file]
        for name in companions:
            shutil.copyfile(Path(source_dir) / name, staging / name)
        names = [output.name for output in source.outputs]
        source_sha256 = source.files[source.model_file].sha256
        run_fp32 = _onnx_runner(create_session(Path(source_dir) / source.model_file), names)
        run_int8 = _onnx_runner(create_session(model_path), names)
        batches = [
            dict(spec.example_inputs),
            *random_batches(spec.example_inputs, batch_sizes, seed),
        ]
        parity = compare(
            run_fp32,
            run_int8,
            batches,
            reference_name=f"fp32 {source.model_file} (sha256 {source_sha256})",
            atol=atol,
            rtol=rtol,
        )
        agreement = None
        if spec.eval_data is not None and spec.classifier_output is not None:
            agreement = float(
                np.mean(
                    predicted_classes(run_fp32, spec.eval_data, spec.classifier_output)
                    == predicted_classes(run_int8, spec.eval_data, spec.classifier_output)
                )
            )
            if agreement < min_top1_agreement:
                raise ExportError(
                    f"int8 {source.name!r} agrees with fp32 on only {agreement:.1%} of"
                    f" {len(spec.eval_data.labels)} held-out samples (need"
                    f" {min_top1_agreement:.0%}); try per_channel=True or keep fp32"
                )
        manifest = source.model_copy(
            update={
                "name": f"{source.name}-int8",
                "created_at": datetime.now(UTC),
                "files": hash_files(staging, [MODEL_FILE, *companions]),
                "parity": parity,
                # The torch artifact is the fp32 model: int8 is served by onnxruntime only.
                "backends": None,
                "evaluation": evaluate(run_int8, spec.eval_data, spec.classifier_output),
                "quantization": QuantizationReport(
                    method="dynamic-int8",
                    per_channel=per_channel,
                    source_sha256=source_sha256,
                    kept_fp32=kept_fp32,
                    top1_agreement=agreement,
                    accuracy_fp32=source.evaluation.accuracy if source.evaluation else None,
                ),
            }
        )
        manifest.write(staging)
    return manifest


def _nodes_matching(model_path: Path, patterns: Sequence[str]) -> list[str]:
    """Names of the graph's nodes that contain any of `patterns`; each must match one."""
    if not patterns:
        return []
    import onnx

    names = [node.name for node in onnx.load(str(model_path), load_external_data=False).graph.node]
    unmatched = [p for p in patterns if not any(p in name for name in names)]
    if unmatched:
        raise ExportError(
            f"int8_keep_fp32 pattern(s) {unmatched} match no node of {model_path.name};"
            " node names depend on the exporter"
        )
    return [name for name in names if any(p in name for p in patterns)]
