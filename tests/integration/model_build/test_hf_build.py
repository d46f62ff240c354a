"""`inferstack build hf:PATH --task ...` from directories written by transformers'
save_pretrained (tiny random BERTs with MiniLM's tokenizer.json), run as a user runs it:
the served artifact predicts what torch does, and a changed file rebuilds it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, BertModel

from model_build.reference_models import minilm
from model_runtime.engine import Engine
from model_runtime.manifest import Manifest
from model_runtime.preprocess import ENCODING_FIELDS

TEXTS = [
    "The service was quick and friendly.",
    "I waited an hour and nobody answered my call.",
    "ok",
    "Le colis est arrivé en retard, mais en bon état.",
]
LABELS = {0: "negative", 1: "neutral", 2: "positive"}
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "max_position_embeddings": 128,
}


def inferstack(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.app", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )


def save(model: torch.nn.Module, directory: Path) -> Path:
    model.save_pretrained(directory)
    shutil.copyfile(minilm.weights_dir() / "tokenizer.json", directory / "tokenizer.json")
    return directory


def tokens(texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
    feed = minilm.tokenize(texts, max_length=max_length)
    return {name: torch.from_numpy(feed[name]) for name in ENCODING_FIELDS}


def served(directory: Path, texts: list[str]) -> dict[str, np.ndarray[Any, Any]]:
    return Engine.load(directory).infer({"text": np.array(texts, dtype=object)})


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = BertConfig(
        **TINY, num_labels=3, id2label=LABELS, label2id={v: k for k, v in LABELS.items()}
    )
    model = BertForSequenceClassification(config).eval()
    return save(model, tmp_path_factory.mktemp("hf") / "Review Sentiment")


@pytest.fixture(scope="module")
def embedder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sentence-transformers directory: CLS pooling, no Normalize, 64 tokens."""
    torch.manual_seed(1)
    directory = save(
        BertModel(BertConfig(**TINY)).eval(), tmp_path_factory.mktemp("hf") / "Tiny_Embedder"
    )
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    (directory / "modules.json").write_text(json.dumps(modules))
    (directory / "1_Pooling").mkdir()
    (directory / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 32, "pooling_mode_cls_token": True})
    )
    (directory / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64}))
    return directory


def test_a_classifier_serves_what_torch_predicts(classifier_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    result = inferstack(
        "build", f"hf:{classifier_dir}", "--task", "sequence-classification",
        "--name", "sentiment", "--out", str(out), "--no-quantize", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifest = Manifest.load(out / "sentiment")
    assert manifest.labels == ["negative", "neutral", "positive"]
    assert [spec.name for spec in manifest.inputs] == ["text"]
    assert [spec.name for spec in manifest.outputs] == ["logits", "probabilities"]
    assert manifest.preprocessing is not None and manifest.preprocessing.max_length == 128
    assert manifest.source is not None and manifest.source.reference == f"hf:{classifier_dir}"

    model = BertForSequenceClassification.from_pretrained(classifier_dir).eval()
    with torch.no_grad():
        logits = model(**tokens(TEXTS, 128)).logits
    outputs = served(out / "sentiment", TEXTS)
    np.testing.assert_allclose(outputs["logits"], logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(
        outputs["probabilities"], torch.softmax(logits, -1).numpy(), atol=1e-5
    )
    predicted = [manifest.labels[index] for index in outputs["probabilities"].argmax(axis=1)]
    assert predicted == [LABELS[int(index)] for index in logits.argmax(dim=1)]


def test_a_sentence_transformers_directory_pools_as_it_says(
    embedder_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "models"
    result = inferstack(
        "build", f"hf:{embedder_dir}", "--task", "embeddings", "--out", str(out), "--no-quantize",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # Named after the directory; max_seq_length from sentence_bert_config.json.
    manifest = Manifest.load(out / "tiny_embedder")
    assert manifest.preprocessing is not None and manifest.preprocessing.max_length == 64

    model = BertModel.from_pretrained(embedder_dir).eval()
    long_text = " ".join(["many words in one long sentence"] * 30)
    with torch.no_grad():
        cls = model(**tokens([*TEXTS, long_text], 64)).last_hidden_state[:, 0]
    embeddings = served(out / "tiny_embedder", [*TEXTS, long_text])["embedding"]
    # CLS pooling without normalization: the first token's vector as it is.
    np.testing.assert_allclose(embeddings, cls.numpy(), atol=1e-4)
    assert not np.allclose(np.linalg.norm(embeddings, axis=1), 1.0)


def test_a_changed_file_rebuilds_the_artifact(classifier_dir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "sentiment"
    shutil.copytree(classifier_dir, directory)
    out = tmp_path / "models"
    args = ("build", f"hf:{directory}", "--task", "sequence-classification", "--out", str(out))

    first = inferstack(*args, "--no-quantize", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = inferstack(*args, "--no-quantize", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout and "built" not in again.stdout

    config = json.loads((directory / "config.json").read_text())
    config["id2label"] = {"0": "bad", "1": "so-so", "2": "good"}
    (directory / "config.json").write_text(json.dumps(config))
    changed = inferstack(*args, "--no-quantize", cwd=tmp_path)
    assert changed.returncode == 0, changed.stderr
    assert "built" in changed.stdout
    assert Manifest.load(out / "sentiment").labels == ["bad", "so-so", "good"]
