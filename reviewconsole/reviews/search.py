"""The queue's search: what an item is found by, and how a query is read.

An item is found by its summary values, every text and number in its output, and its run's input text (an
invoice's source, an article's topic), folded to lower case and stored on the item when it is created
(`ReviewItem.search_text`). A query matches items whose text contains every one of its words.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# Enough for a whole invoice or a long article; the tail of a longer text is not searched.
SEARCH_TEXT_MAX_CHARS = 20_000
QUERY_MAX_CHARS = 200
QUERY_MAX_WORDS = 8


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for inner in value.values():
            yield from _texts(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _texts(inner)
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        yield str(value)


def search_text(*, summary: list[dict[str, Any]], output: Any, inputs: Any) -> str:
    """The text an item is searched by (see the module docstring)."""
    shown = [str(field.get("value", "")) for field in summary if field.get("found")]
    text = "\n".join([*shown, *_texts(output), *_texts(inputs)]).casefold()
    return text[:SEARCH_TEXT_MAX_CHARS]


def query_words(query: str) -> list[str]:
    """The words every match must contain, folded like the stored text; the first QUERY_MAX_WORDS."""
    return query.casefold().split()[:QUERY_MAX_WORDS]
