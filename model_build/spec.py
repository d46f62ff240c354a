"""Model declarations: a `module:function` reference returns a ModelSpec.

The function trains or loads a torch module and says what it takes and gives. Users
plug in their own models the same way (`inferstack build my_pkg.models:resnet`), or
build a local Hugging Face directory as `hf:PATH` with a task (reference_models/hf.py).

A declaration's source hash (the build cache's key) is its module's source; a module
whose models are built from more than that (shared code, a weights directory) defines
`extra_source_sha256() -> str`, and its result is hashed in too.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model_build.errors import ExportError
from model_runtime.manifest import PromotionGate
from model_runtime.preprocess import TokenizerSpec

# Short names for the models this project ships.
BUILTIN_MODELS: dict[str, str] = {
    "digits": "model_build.reference_models.digits:digits_cnn",
    # The same model from another seed, model version "2" (same name: a new version).
    "digits-v2": "model_build.reference_models.digits:digits_cnn_v2",
    "minilm": "model_build.reference_models.minilm:all_minilm_l6_v2",
    # BERT-base-sized (110M parameters), random weights: see reference_models/bert_base.py.
    "bert-base": "model_build.reference_models.bert_base:bert_base_random_weights",
}
HF_PREFIX = "hf:"
# Imported by name, as any declaration module is: it imports this module.
HF_MODULE = "model_build.reference_models.hf"


@dataclass
class EvalData:
    """A held-out labelled set, for accuracy and int8 top-1 agreement."""

    inputs: dict[str, np.ndarray[Any, Any]]
    labels: np.ndarray[Any, Any]
    dataset: str


@dataclass(frozen=True)
class TransformerInfo:
    """What onnxruntime's transformer optimizer needs to fuse an encoder's graph."""

    model_type: str  # onnxruntime.transformers model type, e.g. "bert"
    num_heads: int
    hidden_size: int


@dataclass
class ModelSpec:
    name: str
    # A torch.nn.Module in eval mode; typed Any so this module never imports torch.
    module: Any
    example_inputs: dict[str, np.ndarray[Any, Any]]
    output_names: list[str]
    version: str = "1"
    max_batch_size: int = 64
    # Dynamic axes beyond the batch axis (0), e.g. {"input_ids": {1: "sequence"}}.
    extra_dynamic_axes: dict[str, dict[int, str]] = field(default_factory=dict)
    eval_data: EvalData | None = None
    # The output holding class scores, when the model is a classifier.
    classifier_output: str | None = None
    labels: list[str] | None = None
    # Set when the model takes text: the served input is BYTES, tokenized at run time.
    tokenizer: TokenizerSpec | None = None
    # What a client sends, when it differs from `example_inputs` (the model's own inputs),
    # e.g. raw text for a model with a tokenizer stage; used for sample requests.
    sample_inputs: dict[str, np.ndarray[Any, Any]] | None = None
    # What `inferstack promote` requires of a new version against the live one.
    promotion_gate: PromotionGate | None = None
    # Set for transformer encoders: export runs onnxruntime's transformer optimizer.
    transformer: TransformerInfo | None = None
    # What int8 must keep against fp32, measured on `quantization_eval_inputs` (else on
    # `eval_data`): the quantizer keeps the fewest nodes in fp32 that meet it.
    quantization_gate: PromotionGate | None = None
    quantization_eval_inputs: dict[str, np.ndarray[Any, Any]] | None = None


@dataclass(frozen=True)
class ModelDeclaration:
    reference: str
    factory: Callable[[], ModelSpec]
    source_sha256: str


def resolve(
    reference: str, *, task: str | None = None, name: str | None = None
) -> ModelDeclaration:
    """Turn `digits`, `package.module:function` or `hf:PATH` (with a `task`, and a model
    `name` other than the directory's) into its factory and source hash."""
    if reference.startswith(HF_PREFIX):
        declaration: ModelDeclaration = importlib.import_module(HF_MODULE).declare(
            reference, task, name
        )
        return declaration
    if task is not None or name is not None:
        raise ExportError(
            f"model reference {reference!r} takes no task or name: those are for"
            f" {HF_PREFIX}PATH references"
        )
    target = BUILTIN_MODELS.get(reference, reference)
    module_name, _, function_name = target.partition(":")
    if not module_name or not function_name:
        raise ExportError(
            f"model reference {reference!r} is not 'module:function', {HF_PREFIX}PATH nor a"
            f" built-in name ({', '.join(BUILTIN_MODELS)})"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ExportError(
            f"model reference {reference!r}: cannot import {module_name}: {exc}"
        ) from exc
    factory = getattr(module, function_name, None)
    if not callable(factory):
        raise ExportError(f"model reference {reference!r}: {module_name} has no {function_name}()")
    digest = hashlib.sha256(inspect.getsource(module).encode())
    extra = getattr(module, "extra_source_sha256", None)
    if callable(extra):
        digest.update(str(extra()).encode())
    return ModelDeclaration(target, factory, digest.hexdigest())
