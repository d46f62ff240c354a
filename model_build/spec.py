"""Model declarations: a `module:function` reference returns a ModelSpec.

The function trains or loads a torch module and says what it takes and gives. Users
plug in their own models the same way (`inferstack build my_pkg.models:resnet`).
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
}


@dataclass
class EvalData:
    """A held-out labelled set, for accuracy and int8 top-1 agreement."""

    inputs: dict[str, np.ndarray[Any, Any]]
    labels: np.ndarray[Any, Any]
    dataset: str


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
    # ONNX node-name substrings that int8 quantization leaves in fp32.
    int8_keep_fp32: list[str] = field(default_factory=list)
    # What a client sends, when it differs from `example_inputs` (the model's own inputs),
    # e.g. raw text for a model with a tokenizer stage; used for sample requests.
    sample_inputs: dict[str, np.ndarray[Any, Any]] | None = None
    # What `inferstack promote` requires of a new version against the live one.
    promotion_gate: PromotionGate | None = None


@dataclass(frozen=True)
class ModelDeclaration:
    reference: str
    factory: Callable[[], ModelSpec]
    source_sha256: str


def resolve(reference: str) -> ModelDeclaration:
    """Turn `digits` or `package.module:function` into its factory and source hash."""
    target = BUILTIN_MODELS.get(reference, reference)
    module_name, _, function_name = target.partition(":")
    if not module_name or not function_name:
        raise ExportError(
            f"model reference {reference!r} is not 'module:function' nor a built-in name"
            f" ({', '.join(BUILTIN_MODELS)})"
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
    source = inspect.getsource(module).encode()
    return ModelDeclaration(target, factory, hashlib.sha256(source).hexdigest())
