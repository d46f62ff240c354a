"""Hugging Face directories (hf:PATH): names, pooling, the files checked and hashed, and
`resolve`'s errors. No model loads here: the files are stand-ins."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

import pytest

from model_build.build import log_path
from model_build.errors import ExportError
from model_build.reference_models.eval_texts import EVALUATION_TEXTS
from model_build.reference_models.hf import (
    Pooling,
    model_name,
    read_pooling,
    source_files,
    source_sha256,
    transformer_info,
)
from model_build.spec import TransformerInfo, resolve
from model_runtime.manifest import NAME_PATTERN
from tests.support.texts import SENTENCES

CONFIG = {"model_type": "bert", "num_attention_heads": 12, "hidden_size": 768}


def hf_dir(root: Path, *, weights: str = "model.safetensors", name: str = "model") -> Path:
    directory = root / name
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({**CONFIG, "max_position_embeddings": 512}))
    (directory / weights).write_bytes(b"weights")
    (directory / "tokenizer.json").write_text("{}")
    return directory


def sentence_transformers_dir(
    root: Path, pooling: dict[str, object], *, normalize: bool = True, max_seq_length: int = 256
) -> Path:
    directory = hf_dir(root)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    if normalize:
        modules.append(
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            }
        )
    (directory / "modules.json").write_text(json.dumps(modules))
    (directory / "1_Pooling").mkdir()
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (directory / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False})
    )
    return directory


@pytest.mark.parametrize(
    ("directory", "expected"),
    [
        ("all-MiniLM-L6-v2", "all-minilm-l6-v2"),
        ("My Model (v2)", "my-model-v2"),
        ("__private.model", "private.model"),
        ("bert_base.v1", "bert_base.v1"),
        ("x" * 80, "x" * 63),
    ],
)
def test_a_directory_name_becomes_a_valid_model_name(directory: str, expected: str) -> None:
    name = model_name(Path("/models") / directory)
    assert name == expected
    assert re.fullmatch(NAME_PATTERN, name)


def test_the_current_directory_is_named_by_its_real_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "Sentiment").mkdir()
    monkeypatch.chdir(tmp_path / "Sentiment")
    assert model_name(Path(".")) == "sentiment"


def test_a_name_with_nothing_usable_asks_for_one() -> None:
    with pytest.raises(ExportError, match="--name"):
        model_name(Path("/models/日本語"))


def test_a_given_name_wins_and_must_be_valid() -> None:
    assert model_name(Path("/models/whatever"), "sentiment-v2") == "sentiment-v2"
    with pytest.raises(ExportError, match="'Bad Name' is not allowed"):
        model_name(Path("/models/whatever"), "Bad Name")


def test_a_plain_transformers_directory_gets_mean_pooling_normalized(tmp_path: Path) -> None:
    directory = hf_dir(tmp_path)
    assert read_pooling(directory, {"max_position_embeddings": 514}) == Pooling("mean", True, 514)


@pytest.mark.parametrize(
    ("pooling", "mode"),
    [
        # Older sentence-transformers releases: one flag per mode.
        ({"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}, "mean"),
        ({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, "cls"),
        # Current ones: `pooling_mode`, a name or a list of names.
        ({"embedding_dimension": 384, "pooling_mode": "cls"}, "cls"),
        ({"embedding_dimension": 384, "pooling_mode": ["mean"]}, "mean"),
    ],
)
def test_sentence_transformers_pooling_is_read(
    tmp_path: Path, pooling: dict[str, object], mode: Literal["mean", "cls"]
) -> None:
    directory = sentence_transformers_dir(tmp_path, pooling)
    assert read_pooling(directory, {"max_position_embeddings": 512}) == Pooling(mode, True, 256)


def test_without_a_normalize_module_embeddings_are_not_normalized(tmp_path: Path) -> None:
    directory = sentence_transformers_dir(
        tmp_path, {"pooling_mode": "cls"}, normalize=False, max_seq_length=128
    )
    assert read_pooling(directory, {}) == Pooling("cls", False, 128)


@pytest.mark.parametrize(
    "pooling",
    [
        {"pooling_mode": "max"},
        {"pooling_mode": ["mean", "max"]},
        {"pooling_mode_max_tokens": True, "pooling_mode_mean_tokens": False},
        {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True},
    ],
)
def test_an_unsupported_pooling_mode_names_the_file(
    tmp_path: Path, pooling: dict[str, object]
) -> None:
    directory = sentence_transformers_dir(tmp_path, pooling)
    with pytest.raises(
        ExportError, match=r"1_Pooling/config\.json: pooling mode .* allowed: mean, cls"
    ):
        read_pooling(directory, {})


def test_a_module_that_is_not_exported_is_refused(tmp_path: Path) -> None:
    directory = sentence_transformers_dir(tmp_path, {"pooling_mode": "mean"})
    modules = json.loads((directory / "modules.json").read_text())
    modules.append(
        {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}
    )
    (directory / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ExportError, match=r"modules\.json lists module\(s\) \['Dense'\]"):
        read_pooling(directory, {})


def test_the_files_a_model_is_built_from(tmp_path: Path) -> None:
    plain = hf_dir(tmp_path, weights="pytorch_model.bin", name="plain")
    assert [path.name for path in source_files(plain)] == [
        "config.json",
        "pytorch_model.bin",
        "tokenizer.json",
    ]
    st = sentence_transformers_dir(tmp_path, {"pooling_mode": "mean"})
    assert [str(path.relative_to(st)) for path in source_files(st)] == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "modules.json",
        "sentence_bert_config.json",
        "1_Pooling/config.json",
    ]


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("config.json", "config.json is missing"),
        ("model.safetensors", "has no weights: need one of model.safetensors, pytorch_model.bin"),
        ("tokenizer.json", "has no tokenizer.json"),
    ],
)
def test_a_missing_file_is_named_with_its_directory(
    tmp_path: Path, missing: str, message: str
) -> None:
    directory = hf_dir(tmp_path)
    (directory / missing).unlink()
    with pytest.raises(ExportError, match=re.escape(message)) as error:
        source_files(directory)
    assert str(directory) in str(error.value)


def test_the_source_hash_follows_every_file_the_task_and_the_name(tmp_path: Path) -> None:
    directory = sentence_transformers_dir(tmp_path, {"pooling_mode": "mean"})
    first = source_sha256(directory, "embeddings", None)
    assert source_sha256(directory, "embeddings", None) == first
    assert source_sha256(directory, "sequence-classification", None) != first
    assert source_sha256(directory, "embeddings", "other") != first
    seen = {first}
    for path in source_files(directory):
        path.write_bytes(path.read_bytes() + b" ")
        changed = source_sha256(directory, "embeddings", None)
        assert changed not in seen, path
        seen.add(changed)


def test_resolve_declares_an_hf_directory(tmp_path: Path) -> None:
    directory = hf_dir(tmp_path, name="My-Classifier")
    declaration = resolve(f"hf:{directory}", task="sequence-classification")
    assert declaration.reference == f"hf:{directory}"
    assert declaration.source_sha256 == source_sha256(directory, "sequence-classification", None)


def test_resolve_needs_a_task_for_hf(tmp_path: Path) -> None:
    with pytest.raises(
        ExportError, match=r"needs a task.*allowed: embeddings, sequence-classification"
    ):
        resolve(f"hf:{hf_dir(tmp_path)}")
    with pytest.raises(
        ExportError, match="'classify' is not one of: embeddings, sequence-classification"
    ):
        resolve(f"hf:{hf_dir(tmp_path, name='other')}", task="classify")


def test_resolve_names_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(
        ExportError, match=re.escape(f"directory {tmp_path / 'nope'} does not exist")
    ):
        resolve(f"hf:{tmp_path / 'nope'}", task="embeddings")


def test_resolve_refuses_a_bad_name_before_loading(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="'UPPER' is not allowed"):
        resolve(f"hf:{hf_dir(tmp_path)}", task="embeddings", name="UPPER")


def test_a_task_or_name_is_only_for_hf() -> None:
    with pytest.raises(ExportError, match="'digits' takes no task or name"):
        resolve("digits", task="embeddings")
    with pytest.raises(ExportError, match="'digits' takes no task or name"):
        resolve("digits", name="x")


def test_bert_models_get_the_optimizer_others_do_not() -> None:
    assert transformer_info(CONFIG) == TransformerInfo("bert", 12, 768)
    assert transformer_info({**CONFIG, "model_type": "gpt2"}) is None


def test_an_hf_reference_logs_to_one_file_name() -> None:
    assert log_path("hf:/data/models/my bert") == Path(
        "build/logs/build-hf-data-models-my-bert.log"
    )
    assert log_path("digits") == Path("build/logs/build-digits.log")
    assert log_path("pkg.models:net") == Path("build/logs/build-pkg.models-net.log")


def test_the_evaluation_texts_are_their_own() -> None:
    assert len(EVALUATION_TEXTS) >= 60 and len(set(EVALUATION_TEXTS)) == len(EVALUATION_TEXTS)
    assert not set(EVALUATION_TEXTS) & set(SENTENCES)
    lengths = sorted(len(text.split()) for text in EVALUATION_TEXTS)
    assert lengths[0] == 1 and lengths[-1] >= 40  # one word to a paragraph
