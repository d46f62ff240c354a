"""Models from a local Hugging Face transformers directory, offline (no model hub).

The directory holds what `save_pretrained` writes: config.json, the weights
(model.safetensors or pytorch_model.bin) and tokenizer.json, the fast tokenizer that
serving runs with the `tokenizers` library. Two tasks:

- `embeddings`: the transformer plus its pooling, so the ONNX output ("embedding") is the
  sentence embedding itself. A sentence-transformers directory says how to pool
  (modules.json, 1_Pooling/config.json: mean or CLS; L2 normalization when it lists a
  Normalize module; max_seq_length from sentence_bert_config.json). A plain transformers
  directory gets mean pooling and L2 normalization, sentence-transformers' defaults for a
  model it did not train, and the config's max_position_embeddings as the text length.
- `sequence-classification`: AutoModelForSequenceClassification, single-label; outputs
  "logits" and their softmax "probabilities", labels from config.id2label.

`inferstack build hf:PATH --task ...` declares one through `declare()`; a module of its
own (minilm.py) calls `hf_model()`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from model_build.errors import ExportError
from model_build.reference_models import eval_texts
from model_build.spec import ModelDeclaration, ModelSpec, TransformerInfo
from model_runtime.manifest import (
    NAME_PATTERN,
    PromotionGate,
    TensorSpec,
    TokenizerStage,
    sha256_file,
)
from model_runtime.preprocess import ENCODING_FIELDS, TOKENIZER_FILE, TextTokenizer, TokenizerSpec

Task = Literal["embeddings", "sequence-classification"]
TASKS: tuple[str, ...] = get_args(Task)
PREFIX = "hf:"
CONFIG_FILE = "config.json"
WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")
MODULES_FILE = "modules.json"
SENTENCE_CONFIG_FILE = "sentence_bert_config.json"
POOLING_MODES = ("mean", "cls")
# sentence-transformers' older Pooling configs: one boolean per mode.
LEGACY_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
# config.json's model_type -> onnxruntime.transformers' optimizer model type. Only the
# families tested here; any other encoder is exported without the optimizer.
OPTIMIZER_MODEL_TYPES = {"bert": "bert"}
# Export parity inputs: short and long, so padding is exercised.
EXAMPLE_TEXTS = [
    "A man is eating food.",
    "The new movie is awesome, everyone should watch it this weekend!",
    "How do I reset my password?",
    "Stock markets fell sharply after the central bank raised interest rates again.",
]
# The bars int8 must keep against fp32 (quantization) and a new version against the live
# one (promotion).
EMBEDDINGS_GATE = PromotionGate(metric="min_cosine", minimum=0.98)
CLASSIFIER_QUANTIZATION_GATE = PromotionGate(metric="top1_agreement", minimum=0.97)
CLASSIFIER_PROMOTION_GATE = PromotionGate(metric="top1_agreement", minimum=0.9)

# fp32 whatever the weights were saved in. Eager attention: the graph torch.onnx exports
# from it is the one onnxruntime's optimizer fuses into Attention nodes (6 of 6 for
# MiniLM); from SDPA attention, transformers' default, it fuses none.
LOAD_OPTIONS = {"dtype": "float32", "attn_implementation": "eager"}

Tensors = dict[str, np.ndarray[Any, Any]]


@dataclass(frozen=True)
class Pooling:
    """How token vectors become one sentence embedding."""

    mode: Literal["mean", "cls"]
    normalize: bool
    max_length: int


def declare(reference: str, task: str | None, name: str | None) -> ModelDeclaration:
    """The declaration of `hf:PATH`: its files are checked now, loaded by the factory.

    The source hash covers this module's code, the task, the name and every file the
    model is made from, so a changed weights or tokenizer file rebuilds the artifact.
    """
    if task is None:
        raise ExportError(
            f"model reference {reference!r} needs a task (--task); allowed: {', '.join(TASKS)}"
        )
    if task not in TASKS:
        raise ExportError(f"task {task!r} is not one of: {', '.join(TASKS)}")
    directory = Path(reference.removeprefix(PREFIX))
    sha256 = source_sha256(directory, task, name)
    model_name(directory, name)
    return ModelDeclaration(reference, lambda: hf_model(directory, task, name=name), sha256)


def source_sha256(directory: Path, task: str, name: str | None) -> str:
    """A hash of this module's source and the evaluation texts', the task, the name and
    the directory's files."""
    digest = hashlib.sha256()
    for module in (sys.modules[__name__], eval_texts):
        digest.update(inspect.getsource(module).encode())
    digest.update(f"task={task}\nname={name}\n".encode())
    for path in source_files(directory):
        digest.update(f"{path.relative_to(directory)} {sha256_file(path)}\n".encode())
    return digest.hexdigest()


def source_files(directory: Path) -> list[Path]:
    """What the model is built from: config, weights, tokenizer and, for a
    sentence-transformers directory, its module configs. Raises ExportError naming the
    first file that is missing."""
    if not directory.is_dir():
        raise ExportError(f"Hugging Face directory {directory} does not exist")
    config = directory / CONFIG_FILE
    if not config.is_file():
        raise ExportError(f"{config} is missing: {directory} is not a transformers directory")
    weights = [directory / file for file in WEIGHTS_FILES if (directory / file).is_file()]
    if not weights:
        raise ExportError(f"{directory} has no weights: need one of {', '.join(WEIGHTS_FILES)}")
    tokenizer = directory / TOKENIZER_FILE
    if not tokenizer.is_file():
        raise ExportError(
            f"{directory} has no {TOKENIZER_FILE}: serving tokenizes with the `tokenizers`"
            " library, which reads only that file (a fast tokenizer's save_pretrained writes it)"
        )
    extra = [directory / MODULES_FILE, directory / SENTENCE_CONFIG_FILE]
    extra += [directory / path / CONFIG_FILE for path in _module_paths(directory)]
    return [config, weights[0], tokenizer, *(path for path in extra if path.is_file())]


def model_name(directory: Path, name: str | None = None) -> str:
    """`name` when given (it must match the manifest's NAME_PATTERN), else the
    directory's name made one: lowercase, runs of other characters as '-', starting
    with a letter or digit, at most 63 characters."""
    if name is not None:
        if not re.fullmatch(NAME_PATTERN, name):
            raise ExportError(
                f"model name {name!r} is not allowed: lowercase letters, digits, '.', '_'"
                " and '-', starting with a letter or digit, at most 63 characters"
            )
        return name
    raw = directory.resolve().name.lower()
    derived = re.sub(r"[^a-z0-9_.-]+", "-", raw).lstrip("_.-")[:63].rstrip("-")
    if not re.fullmatch(NAME_PATTERN, derived):
        raise ExportError(f"cannot make a model name from directory {directory}; give --name")
    return derived


def read_pooling(directory: Path, config: dict[str, Any]) -> Pooling:
    """Pooling from sentence-transformers' files when the directory has them, else mean
    pooling, L2 normalization and the config's max_position_embeddings."""
    modules_file = directory / MODULES_FILE
    if not modules_file.is_file():
        return Pooling("mean", True, _position_limit(config))
    modules = _read_json(modules_file)
    kinds = {str(module["type"]).rsplit(".", 1)[-1]: module for module in modules}
    unsupported = sorted(set(kinds) - {"Transformer", "Pooling", "Normalize"})
    if unsupported:
        raise ExportError(
            f"{modules_file} lists module(s) {unsupported} that an hf: build does not export;"
            " supported: Transformer, Pooling, Normalize"
        )
    mode: Literal["mean", "cls"] = "mean"
    if "Pooling" in kinds:
        mode = _pooling_mode(directory / kinds["Pooling"]["path"] / CONFIG_FILE)
    max_length = _position_limit(config)
    sentence_config = directory / SENTENCE_CONFIG_FILE
    if sentence_config.is_file():
        max_length = _read_json(sentence_config).get("max_seq_length") or max_length
    return Pooling(mode, "Normalize" in kinds, int(max_length))


def hf_model(directory: Path, task: str, *, name: str | None = None) -> ModelSpec:
    """Load the directory's model for `task` as a ModelSpec (text in, tokenized at serve
    time by the artifact's tokenizer.json)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    source_files(directory)  # a missing file is named before anything loads
    name = model_name(directory, name)
    config = _read_json(directory / CONFIG_FILE)
    classifier_output: str | None = None
    labels: list[str] | None = None
    if task == "embeddings":
        pooling = read_pooling(directory, config)
        module, input_names = _embedder(directory, pooling)
        outputs, max_length = ["embedding"], pooling.max_length
        quantization_gate = promotion_gate = EMBEDDINGS_GATE
    elif task == "sequence-classification":
        module, input_names, labels = _classifier(directory)
        outputs, max_length = ["logits", "probabilities"], _position_limit(config)
        classifier_output = "probabilities"
        quantization_gate = CLASSIFIER_QUANTIZATION_GATE
        promotion_gate = CLASSIFIER_PROMOTION_GATE
    else:
        raise ExportError(f"task {task!r} is not one of: {', '.join(TASKS)}")
    sequence = {1: "sequence"}
    return ModelSpec(
        name=name,
        module=module,
        example_inputs=tokenize(directory, EXAMPLE_TEXTS, max_length, input_names),
        output_names=outputs,
        extra_dynamic_axes={input_name: sequence for input_name in input_names},
        classifier_output=classifier_output,
        labels=labels,
        tokenizer=TokenizerSpec(path=directory / TOKENIZER_FILE, max_length=max_length),
        sample_inputs={"text": np.array(EXAMPLE_TEXTS, dtype=object)},
        promotion_gate=promotion_gate,
        transformer=transformer_info(config),
        quantization_gate=quantization_gate,
        quantization_eval_inputs=tokenize(
            directory, eval_texts.EVALUATION_TEXTS, max_length, input_names
        ),
    )


def transformer_info(config: dict[str, Any]) -> TransformerInfo | None:
    """What onnxruntime's transformer optimizer needs, for the model types it is tested
    with here (OPTIMIZER_MODEL_TYPES); None for any other."""
    model_type = OPTIMIZER_MODEL_TYPES.get(str(config.get("model_type")))
    if model_type is None:
        return None
    return TransformerInfo(
        model_type=model_type,
        num_heads=int(config["num_attention_heads"]),
        hidden_size=int(config["hidden_size"]),
    )


def tokenize(directory: Path, texts: list[str], max_length: int, input_names: list[str]) -> Tensors:
    """Token tensors exactly as the serving tokenizer stage makes them."""
    stage = TokenizerStage(
        file=TOKENIZER_FILE,
        input="text",
        max_length=max_length,
        model_inputs=[
            TensorSpec(name=name, datatype="INT64", shape=[-1, -1]) for name in input_names
        ],
    )
    feed, _ = TextTokenizer.load(directory, stage)({"text": np.array(texts, dtype=object)})
    return feed


def embedder(directory: Path) -> Any:
    """The embeddings task's torch module (encoder + pooling), in eval mode."""
    module, _ = _embedder(directory, read_pooling(directory, _read_json(directory / CONFIG_FILE)))
    return module


def _embedder(directory: Path, pooling: Pooling) -> tuple[Any, list[str]]:
    import torch
    from transformers import AutoModel

    encoder = _load(AutoModel, directory)
    input_names = _input_names(encoder, directory)

    class TextEmbedder(torch.nn.Module):
        """The encoder's last hidden state pooled as sentence-transformers pools it."""

        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor | None = None,
        ) -> torch.Tensor:
            feed = _feed(input_ids, attention_mask, token_type_ids)
            tokens: torch.Tensor = self.encoder(**feed).last_hidden_state
            if pooling.mode == "cls":
                embedding = tokens[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
                embedding = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            if pooling.normalize:
                embedding = torch.nn.functional.normalize(embedding, p=2.0, dim=1)
            return embedding

    return TextEmbedder(encoder).eval(), input_names


def _classifier(directory: Path) -> tuple[Any, list[str], list[str]]:
    import torch
    from transformers import AutoModelForSequenceClassification

    model = _load(AutoModelForSequenceClassification, directory)
    problem = model.config.problem_type
    if problem not in (None, "single_label_classification") or model.config.num_labels < 2:
        raise ExportError(
            f"{directory / CONFIG_FILE}: problem_type {problem!r} with"
            f" {model.config.num_labels} label(s); an hf: build exports single-label"
            " classification (two or more labels)"
        )
    labels = [str(model.config.id2label[index]) for index in range(model.config.num_labels)]
    input_names = _input_names(model, directory)

    class TextClassifier(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor | None = None,
        ) -> tuple[torch.Tensor, torch.Tensor]:
            logits = self.model(**_feed(input_ids, attention_mask, token_type_ids)).logits
            return logits, torch.softmax(logits, dim=-1)

    return TextClassifier(model).eval(), input_names, labels


def _load(auto_class: Any, directory: Path) -> Any:
    """`auto_class.from_pretrained(directory)`, its failure an ExportError naming it."""
    try:
        return auto_class.from_pretrained(str(directory), **LOAD_OPTIONS)
    except Exception as exc:  # transformers raises ValueError, OSError, KeyError, ...
        raise ExportError(
            f"transformers cannot load {directory} as {auto_class.__name__}: {exc}"
        ) from exc


def _feed(input_ids: Any, attention_mask: Any, token_type_ids: Any) -> dict[str, Any]:
    """The wrapped model's keyword inputs; token_type_ids only for a model that takes
    them (the export passes what `_input_names` chose, in that order)."""
    feed = {"input_ids": input_ids, "attention_mask": attention_mask}
    if token_type_ids is not None:
        feed["token_type_ids"] = token_type_ids
    return feed


def _input_names(model: Any, directory: Path) -> list[str]:
    """The token tensors the model's forward takes: input_ids, attention_mask and, when
    it takes them, token_type_ids (ENCODING_FIELDS' order, the wrappers' arguments)."""
    accepted = inspect.signature(model.forward).parameters
    names = [name for name in ENCODING_FIELDS if name in accepted]
    if names[:2] != ["input_ids", "attention_mask"]:
        raise ExportError(
            f"the model in {directory} does not take input_ids and attention_mask; an hf:"
            " build exports text encoders that do"
        )
    return names


def _module_paths(directory: Path) -> list[str]:
    """The sub-directories of a sentence-transformers directory's modules."""
    modules_file = directory / MODULES_FILE
    if not modules_file.is_file():
        return []
    return [str(module["path"]) for module in _read_json(modules_file) if module.get("path")]


def _pooling_mode(path: Path) -> Literal["mean", "cls"]:
    """The one pooling mode a sentence-transformers Pooling config selects: `pooling_mode`
    (current releases) or the `pooling_mode_*` flags (older ones)."""
    config = _read_json(path)
    mode = config.get("pooling_mode")
    if mode is None:
        mode = [
            LEGACY_POOLING_FLAGS.get(key, key)
            for key, value in config.items()
            if key.startswith("pooling_mode_") and value is True
        ]
    if isinstance(mode, list) and len(mode) == 1:
        mode = mode[0]
    if mode == "mean" or mode == "cls":
        return "mean" if mode == "mean" else "cls"
    raise ExportError(
        f"{path}: pooling mode {mode!r} is not supported; allowed: {', '.join(POOLING_MODES)}"
    )


def _position_limit(config: dict[str, Any]) -> int:
    return int(config.get("max_position_embeddings", 512))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ExportError(f"{path} is not valid JSON: {exc}") from exc
