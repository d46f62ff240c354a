"""Pre-processing declared in the manifest: text in, the model's token tensors out.

`tokenizers` is imported only when a model declares a tokenizer stage, so numeric
models never pay for it at cold start.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np

from model_runtime.datatypes import to_numpy
from model_runtime.errors import ArtifactError, InvalidInput
from model_runtime.manifest import TokenizerStage

Tensors = dict[str, np.ndarray[Any, Any]]

TOKENIZER_FILE = "tokenizer.json"
# Model input name -> the `tokenizers.Encoding` attribute that holds it (BERT-style names).
ENCODING_FIELDS = {
    "input_ids": "ids",
    "attention_mask": "attention_mask",
    "token_type_ids": "type_ids",
}


@dataclass(frozen=True)
class TokenizerSpec:
    """At export: the model takes text. `path` is the tokenizer.json shipped in the
    artifact; texts longer than `max_length` tokens (special tokens included) are cut."""

    path: Path
    max_length: int
    input_name: str = "text"


class TextTokenizer:
    """The tokenizer stage: validates texts, tokenizes, pads to the batch's longest."""

    def __init__(self, tokenizer: Any, stage: TokenizerStage) -> None:
        self._tokenizer = tokenizer
        self.stage = stage

    @classmethod
    def load(cls, directory: Path, stage: TokenizerStage) -> TextTokenizer:
        path = Path(directory) / stage.file
        unknown = [spec.name for spec in stage.model_inputs if spec.name not in ENCODING_FIELDS]
        if unknown:
            raise ArtifactError(
                f"tokenizer stage in {directory} feeds model input(s) {unknown} that a tokenizer"
                f" does not produce; allowed: {', '.join(ENCODING_FIELDS)}"
            )
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises bare Exceptions
            raise ArtifactError(f"cannot load tokenizer {path}: {exc}") from exc
        # tokenizer.json may carry its own (training-time) truncation and fixed padding;
        # the manifest's max_length and dynamic padding are what this model serves with.
        padding = tokenizer.padding or {}
        tokenizer.enable_truncation(max_length=stage.max_length)
        tokenizer.enable_padding(
            pad_id=padding.get("pad_id", 0),
            pad_type_id=padding.get("pad_type_id", 0),
            pad_token=padding.get("pad_token", "[PAD]"),
        )
        return cls(tokenizer, stage)

    def __call__(self, inputs: Tensors) -> tuple[Tensors, dict[str, Any]]:
        """Token tensors for the model, and response parameters saying what was cut."""
        # Per item, only C runs (map, numpy, the tokenizer): no Python loop per text.
        name = self.stage.input
        texts = _texts(name, inputs[name].ravel().tolist())
        encodings = self._tokenizer.encode_batch(texts)
        feed = {
            spec.name: np.array(
                list(map(attrgetter(ENCODING_FIELDS[spec.name]), encodings)),
                dtype=to_numpy(spec.datatype),
            )
            for spec in self.stage.model_inputs
        }
        overflowing = map(bool, map(attrgetter("overflowing"), encodings))
        truncated = np.flatnonzero(np.fromiter(overflowing, bool, len(encodings))).tolist()
        parameters: dict[str, Any] = {
            "truncated": bool(truncated),
            "max_tokens": self.stage.max_length,
        }
        if truncated:
            # Open Inference Protocol parameter values are scalars: a comma-separated list.
            parameters["truncated_items"] = ",".join(map(str, truncated))
        return feed, parameters


def _texts(name: str, items: list[Any]) -> list[str]:
    """The items as the tokenizer's texts; an error names the first bad item. Strings
    (all that JSON gives) are checked for the whole batch at once; anything else (bytes
    from an in-process caller) item by item."""
    if set(map(type, items)) - {str}:
        return [_text(name, index, item) for index, item in enumerate(items)]
    lengths = np.fromiter(map(len, items), np.int64, len(items))
    blank = (lengths == 0) | np.fromiter(map(str.isspace, items), bool, len(items))
    first_blank = int(np.argmax(blank)) if blank.any() else len(items)
    try:
        "".join(items).encode("utf-8")  # lone surrogates ("\udcff") fail
    except UnicodeEncodeError as exc:
        ends = np.cumsum(lengths)
        index = int(np.searchsorted(ends, exc.start, side="right"))
        if index < first_blank:
            character = exc.start - int(ends[index] - lengths[index])
            raise _not_utf8_text(name, index, character) from None
    if first_blank < len(items):
        raise _empty(name, first_blank)
    return items


def _text(name: str, index: int, item: object) -> str:
    if isinstance(item, bytes):
        try:
            item = item.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"input {name!r} item {index} is not valid UTF-8 (byte {exc.start})"
            ) from None
    if not isinstance(item, str):
        raise InvalidInput(f"input {name!r} item {index} is not text")
    try:
        # JSON can carry lone surrogates ("\udcff"): not text, and not encodable as UTF-8.
        item.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _not_utf8_text(name, index, exc.start) from None
    if not item.strip():
        raise _empty(name, index)
    return item


def _not_utf8_text(name: str, index: int, character: int) -> InvalidInput:
    return InvalidInput(
        f"input {name!r} item {index} is not valid UTF-8 text (character {character})"
    )


def _empty(name: str, index: int) -> InvalidInput:
    return InvalidInput(f"input {name!r} item {index} is empty; send non-empty text")
