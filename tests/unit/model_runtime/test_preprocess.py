"""The tokenizer stage's checks of a batch of texts: one pass over the whole batch gives
the error that checking item by item gives (the first bad item's)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_runtime.errors import InvalidInput
from model_runtime.preprocess import _text, _texts

_TEXTS = st.lists(st.text(st.sampled_from(["a", "é", " ", "\t", "\n", "\udcff"]), max_size=4))


def _outcome(check: Callable[[], list[str]]) -> str | list[str]:
    try:
        return check()
    except InvalidInput as exc:
        return f"InvalidInput: {exc}"


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(texts=_TEXTS)
def test_the_batch_check_is_the_item_by_item_check(texts: list[str]) -> None:
    batch = _outcome(lambda: _texts("text", texts))
    by_item = _outcome(lambda: [_text("text", index, item) for index, item in enumerate(texts)])
    assert batch == by_item


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["fine", ""], "input 'text' item 1 is empty; send non-empty text"),
        (["ok", " \t"], "input 'text' item 1 is empty; send non-empty text"),
        (["ok", "ab\udcff"], "input 'text' item 1 is not valid UTF-8 text (character 2)"),
        (["", "\udcff"], "input 'text' item 0 is empty; send non-empty text"),
        ([b"\xff", "ok"], "input 'text' item 0 is not valid UTF-8 (byte 0)"),
        (["ok", 3], "input 'text' item 1 is not text"),
    ],
)
def test_the_first_bad_item_is_named(texts: list[object], message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        _texts("text", texts)
    assert str(raised.value) == message


def test_bytes_are_decoded() -> None:
    assert _texts("text", ["a", "café".encode()]) == ["a", "café"]
