"""onnxruntime's transformer optimizer on an exported encoder graph: attention, LayerNorm,
SkipLayerNorm, embed-LayerNorm and GELU subgraphs become single contrib ops.

Only the optimizer's Python fusions run (opt_level 0): the graph keeps standard and
contrib ops that the CPU execution provider runs, and onnxruntime applies its own
(hardware-specific) graph optimizations when the serving session loads it.
"""

from __future__ import annotations

import sys
from contextlib import redirect_stdout
from importlib.metadata import version as package_version
from pathlib import Path

from model_build.errors import ExportError
from model_build.spec import TransformerInfo
from model_runtime.manifest import OptimizationReport

OPT_LEVEL = 0


def optimize_transformer(
    model_path: Path, info: TransformerInfo, model_name: str, *, external_data: bool = False
) -> OptimizationReport:
    """Fuse the graph in `model_path` in place (its weights in external data beside it
    when `external_data`: a model over protobuf's 2 GB); the report counts the fused ops."""
    from onnxruntime.transformers.fusion_options import AttentionMaskFormat, FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions(info.model_type)
    # The raw 2-D mask, not a per-row length: a length assumes right padding, and the
    # graph must stay exact for any mask (export parity feeds random ones).
    options.attention_mask_format = AttentionMaskFormat.AttentionMask
    try:
        # The optimizer prints some notes to stdout: send them where the build's log
        # captures third-party output.
        with redirect_stdout(sys.stderr):
            optimized = optimize_model(
                str(model_path),
                model_type=info.model_type,
                num_heads=info.num_heads,
                hidden_size=info.hidden_size,
                optimization_options=options,
                opt_level=OPT_LEVEL,
                use_gpu=False,
            )
            fused = optimized.get_fused_operator_statistics()
            # Its own save: in topological order, with the com.microsoft opset declared.
            optimized.save_model_to_file(str(model_path), use_external_data_format=external_data)
    except Exception as exc:  # the optimizer raises whatever its graph passes raise
        raise ExportError(
            f"onnxruntime's transformer optimizer failed on {model_name!r}"
            f" ({info.model_type}, {info.num_heads} heads, hidden size {info.hidden_size}): {exc}"
        ) from exc
    return OptimizationReport(
        method="onnxruntime-transformers",
        model_type=info.model_type,
        opt_level=OPT_LEVEL,
        fused_ops={op: count for op, count in sorted(fused.items()) if count},
        onnxruntime_version=package_version("onnxruntime"),
    )
