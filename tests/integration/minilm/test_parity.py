"""The served MiniLM (text in, embeddings out) against sentence-transformers itself."""

from __future__ import annotations

from typing import Any

import numpy as np

from model_runtime.engine import Engine
from tests.support.texts import ANSWERS, CORPUS, QUERIES, SENTENCES


def embed(engine: Engine, texts: list[str], batch: int = 32) -> np.ndarray[Any, Any]:
    chunks = [
        engine.infer({"text": np.array(texts[i : i + batch], dtype=object)})["embedding"]
        for i in range(0, len(texts), batch)
    ]
    return np.concatenate(chunks)


def cosines(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def test_the_parity_set_is_big_enough() -> None:
    assert len(SENTENCES) >= 50 and len(set(SENTENCES)) == len(SENTENCES)


def test_fp32_matches_sentence_transformers(
    minilm_engine: Engine, reference: dict[str, np.ndarray[Any, Any]]
) -> None:
    cos = cosines(embed(minilm_engine, SENTENCES), reference["sentences"])
    assert cos.min() >= 0.9999, f"worst: {SENTENCES[int(cos.argmin())]!r} at {cos.min():.6f}"


def test_embeddings_are_unit_length(minilm_engine: Engine) -> None:
    norms = np.linalg.norm(embed(minilm_engine, SENTENCES[:10]), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


def test_int8_stays_close_to_sentence_transformers(
    minilm_int8_engine: Engine, reference: dict[str, np.ndarray[Any, Any]]
) -> None:
    # Batches of 1, 8 and 32: int8's dynamic activation ranges depend on the batch.
    for batch in (1, 8, 32):
        cos = cosines(embed(minilm_int8_engine, SENTENCES, batch), reference["sentences"])
        assert cos.mean() >= 0.99, f"batch {batch}: mean cosine {cos.mean():.4f}"
        worst = SENTENCES[int(cos.argmin())]
        assert cos.min() >= 0.98, f"batch {batch}: {worst!r} at {cos.min():.4f}"


def test_int8_retrieves_the_same_top1_neighbour(
    minilm_int8_engine: Engine, reference: dict[str, np.ndarray[Any, Any]]
) -> None:
    expected = (reference["queries"] @ reference["corpus"].T).argmax(axis=1)
    assert expected.tolist() == ANSWERS  # the set itself makes sense
    corpus = embed(minilm_int8_engine, CORPUS)
    queries = embed(minilm_int8_engine, QUERIES)
    assert (queries @ corpus.T).argmax(axis=1).tolist() == expected.tolist()


def test_fp32_retrieves_the_same_top1_neighbour(minilm_engine: Engine) -> None:
    corpus, queries = embed(minilm_engine, CORPUS), embed(minilm_engine, QUERIES)
    assert (queries @ corpus.T).argmax(axis=1).tolist() == ANSWERS


def test_padding_does_not_change_an_embedding(minilm_engine: Engine) -> None:
    alone = embed(minilm_engine, [SENTENCES[0]])
    beside_a_long_text = embed(minilm_engine, [SENTENCES[0], SENTENCES[52]])[:1]
    np.testing.assert_allclose(alone, beside_a_long_text, atol=2e-6)
