"""Message texts as JSON string literals, escaped once and spliced into every JSON text that carries them.

A member's turn puts its messages into JSON twice: the response cache's key (sorted,
ASCII-escaped, as autogen's `ChatCompletionCache` writes it) and the request body.
Escaping is most of the cost of both (a few kB of prompt, the rest is a skeleton of
a few hundred bytes), and a member's system message is the same text every turn.
So each text is escaped once (`Literals`), and a JSON document is dumped with a
placeholder where each text goes (`dumps_spliced`), then the literals are spliced
in. The result is byte for byte what `json.dumps` gives for the whole document.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

# Stands in for a text while the rest of a document is dumped. A text itself never
# passes through the dump, so it may contain this string without confusing the splice.
SLOT = "\x00assembly-text\x00"
_SLOT_JSON = json.dumps(SLOT)  # the same with or without ensure_ascii: control characters are always escaped


class Literals:
    """JSON string literals of texts, kept for the texts seen lately.

    Two generations of at most `limit` texts each: a text used in this generation or
    the last is found, so a member's system message stays while it is used, and
    memory stays bounded however many turns a run has."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._current: dict[str, str] = {}
        self._previous: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        found = self._current.get(text)
        if found is None:
            found = self._previous.get(text)
            if found is None:
                found = json.dumps(text)  # ASCII-escaped, as the cache key has always been
            if len(self._current) >= self.limit:
                self._previous, self._current = self._current, {}
            self._current[text] = found
        return found


def take_texts(messages: Sequence[dict[str, Any]]) -> list[str]:
    """The text contents of `messages`, in order, each replaced by `SLOT` in its
    message (a list of content parts stays in place, dumped as it is)."""
    texts = []
    for message in messages:
        if isinstance(message.get("content"), str):
            texts.append(message["content"])
            message["content"] = SLOT
    return texts


def dumps_spliced(document: Any, texts: Sequence[str], literal: Callable[[str], str], sort_keys: bool = False) -> str:
    """`json.dumps(document, sort_keys=sort_keys)` of `document` with each `SLOT` in it
    replaced by the next of `texts`, each text's literal made by `literal`.

    `document` holds `SLOT` where each text goes, in the order the dump writes them,
    and nowhere else."""
    return splice(json.dumps(document, sort_keys=sort_keys), texts, literal)


def splice(dumped: str, texts: Sequence[str], literal: Callable[[str], str]) -> str:
    """A dumped document with its slots filled by `texts` (see `dumps_spliced`)."""
    parts = dumped.split(_SLOT_JSON)
    if len(parts) != len(texts) + 1:
        raise ValueError(f"{len(parts) - 1} slots in the document for {len(texts)} texts")
    out = [parts[0]]
    for text, part in zip(texts, parts[1:], strict=True):
        out.append(literal(text))
        out.append(part)
    return "".join(out)
