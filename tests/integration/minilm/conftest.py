"""sentence-transformers' own embeddings of the fixed texts: the parity reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model_build.reference_models.minilm import reference_embeddings
from model_runtime.engine import Engine
from tests.support.texts import CORPUS, QUERIES, SENTENCES


@pytest.fixture(scope="session")
def reference() -> dict[str, np.ndarray]:
    embeddings = reference_embeddings(SENTENCES + CORPUS + QUERIES)
    sentences, rest = embeddings[: len(SENTENCES)], embeddings[len(SENTENCES) :]
    return {"sentences": sentences, "corpus": rest[: len(CORPUS)], "queries": rest[len(CORPUS) :]}


@pytest.fixture(scope="session")
def minilm_engine(minilm_dir: Path) -> Engine:
    return Engine.load(minilm_dir)


@pytest.fixture(scope="session")
def minilm_int8_engine(minilm_int8_dir: Path) -> Engine:
    return Engine.load(minilm_int8_dir)
