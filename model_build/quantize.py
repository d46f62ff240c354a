"""Dynamic int8 quantization of an exported artifact, measured against its fp32 source.

Quantizing every weight node is fastest but may cost too much accuracy; which nodes to
leave in fp32 is searched for, not declared: the fewest that keep the model's gate
(min cosine or top-1 agreement against fp32) on its evaluation inputs
(quantize_search.py).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from model_build.errors import ExportError
from model_build.export import (
    EXTERNAL_DATA_ABOVE_BYTES,
    _onnx_runner,
    _settle,
    _staging_dir,
    evaluate,
)
from model_build.onnx_files import onnx_file_names
from model_build.parity import Arrays, compare, random_batches
from model_build.quantize_search import GateMeasure, SearchResult, search_fp32_nodes
from model_build.spec import ModelSpec
from model_runtime.backends.onnxruntime_backend import create_session
from model_runtime.manifest import (
    MODEL_FILE,
    Manifest,
    PromotionGate,
    QuantizationReport,
    hash_files,
    verify_artifact,
)

# The gates when the spec declares none.
CLASSIFIER_GATE = PromotionGate(metric="top1_agreement", minimum=0.97)
EMBEDDINGS_GATE = PromotionGate(metric="min_cosine", minimum=0.98)
# Each evaluation quantizes and measures one candidate graph (seconds for MiniLM).
MAX_EVALUATIONS = 40


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
    atol: float = 0.05,
    rtol: float = 0.1,
    batch_sizes: Sequence[int] = (1, 4, 32),
    seed: int = 0,
    max_evaluations: int = MAX_EVALUATIONS,
) -> Manifest:
    """Write an int8 copy of the fp32 artifact in `source_dir` to `out_dir`, keeping in
    fp32 the fewest nodes that meet the gate (`quantization_gate`, else a default).

    Its manifest's `parity` compares int8 with fp32 (recorded, not enforced: int8 is
    expected to differ). Fails with ExportError when no candidate within
    `max_evaluations` meets the gate.
    """
    source = Manifest.load(source_dir)
    # The report names the source by its manifest hash: make sure that is what we read.
    verify_artifact(Path(source_dir), source)
    fp32_path = Path(source_dir) / source.model_file
    names = [output.name for output in source.outputs]
    run_fp32 = _onnx_runner(create_session(fp32_path), names)
    gate = quantization_gate(spec)
    with _staging_dir(out_dir) as staging:
        model_path = staging / MODEL_FILE
        measure = GateMeasure(gate, run_fp32, gate_inputs(spec), spec.classifier_output)

        def quantize(path: Path) -> None:
            _quantize(fp32_path, path, per_channel, source.name)

        result = search_fp32_nodes(
            fp32_path, quantize, measure, model_path, max_evaluations=max_evaluations
        )
        if not result.passed:
            raise ExportError(_gate_failure(source.name, gate, result, spec))
        model_files = _settle(model_path, model_path, EXTERNAL_DATA_ABOVE_BYTES)
        # Files beside the model (a tokenizer) travel unchanged; fp32's weights do not.
        fp32_files = onnx_file_names(fp32_path)
        companions = [n for n in source.files_for("onnxruntime") if n not in fp32_files]
        for name in companions:
            shutil.copyfile(Path(source_dir) / name, staging / name)
        source_sha256 = source.files[source.model_file].sha256
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
        manifest = source.model_copy(
            update={
                "name": f"{source.name}-int8",
                "created_at": datetime.now(UTC),
                "files": hash_files(staging, [*model_files, *companions]),
                "parity": parity,
                # The torch artifact is the fp32 model: int8 is served by onnxruntime only.
                "backends": None,
                "evaluation": evaluate(run_int8, spec.eval_data, spec.classifier_output),
                "quantization": QuantizationReport(
                    method="dynamic-int8",
                    per_channel=per_channel,
                    source_sha256=source_sha256,
                    kept_fp32=result.kept,
                    top1_agreement=result.value if gate.metric == "top1_agreement" else None,
                    accuracy_fp32=source.evaluation.accuracy if source.evaluation else None,
                    gate=gate,
                    gate_measured=result.value,
                    search_evaluations=result.evaluations,
                ),
            }
        )
        manifest.write(staging)
    return manifest


def quantization_gate(spec: ModelSpec) -> PromotionGate:
    """The spec's gate; else top-1 agreement for a classifier with a held-out set, min
    cosine for anything else."""
    if spec.quantization_gate is not None:
        return spec.quantization_gate
    if spec.classifier_output is not None and spec.eval_data is not None:
        return CLASSIFIER_GATE
    return EMBEDDINGS_GATE


def gate_inputs(spec: ModelSpec) -> Arrays:
    """What the gate is measured on: the evaluation inputs, else the held-out set, else
    the example inputs."""
    if spec.quantization_eval_inputs is not None:
        return spec.quantization_eval_inputs
    if spec.eval_data is not None:
        return spec.eval_data.inputs
    return spec.example_inputs


def _quantize(source: Path, target: Path, per_channel: bool, name: str) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    try:
        with _quiet_root_logger():
            quantize_dynamic(
                source,
                target,
                weight_type=QuantType.QInt8,
                per_channel=per_channel,
                # 7-bit weights: x86 CPUs without VNNI (AVX2, like this 2-core host and
                # some Lambda hosts) sum u8 x s8 products in int16, which full-range
                # weights overflow (onnxruntime's advice for such CPUs).
                reduce_range=True,
                # Contrib ops (fused Attention, SkipLayerNormalization) have no type in
                # onnx's shape inference: their outputs are fp32.
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
    except Exception as exc:
        raise ExportError(f"int8 quantization of {name!r} failed: {exc}") from exc


def _gate_failure(name: str, gate: PromotionGate, result: SearchResult, spec: ModelSpec) -> str:
    kept = f"{len(result.kept)} of {result.candidates} weight nodes kept in fp32"
    tried = f"{result.evaluations} candidate graph(s) measured"
    if gate.metric == "top1_agreement":
        samples = len(next(iter(gate_inputs(spec).values())))
        return (
            f"int8 {name!r} agrees with fp32 on only {result.value:.1%} of {samples} held-out"
            f" samples (need {gate.minimum:.0%}) at best ({kept}; {tried})"
        )
    return (
        f"int8 {name!r} reaches a min cosine of only {result.value:.4f} against fp32 (need"
        f" {gate.minimum:g}) at best ({kept}; {tried})"
    )
