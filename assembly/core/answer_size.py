"""The longest answer a JSON schema admits once a server enforces it by grammar.

A call's `max_tokens` is a safety net: with the schema enforced, every string has a
`maxLength`, every array a `maxItems` and every integer bounds, so the answer is
finite anyway. A net set below that length cuts valid answers off as invalid JSON,
and the re-ask gets the same answer again from a model that decodes the same way. So
the default is the longest answer in characters, counted as the server's grammar
writes it, at one token a character. That covers the cases a small model really
hits: a message of numbers (SmolLM2's and Llama's tokenizers give every digit its own
token) and whitespace between every key and value, which llama.cpp's grammar allows
(its `space` rule: `| " " | "\\n"{1,2} [ \\t]{0,20}`, after every value, key, `{`, `[`,
`,` and `:`). Text full of JSON escapes (``\\u00e9``: one character of a string's
length, six characters written) or of characters outside ASCII (one to four bytes a
character, and byte-level tokenizers may spend a token a byte) can still be longer.
"""

from __future__ import annotations

import json
from typing import Any

GAP_CHARS = 22  # llama.cpp's `space`: two newlines and twenty spaces or tabs


class UnboundedAnswer(ValueError):
    """The schema admits answers of any length (a string without maxLength, say)."""


def longest_answer_chars(schema: dict[str, Any], gap: int = GAP_CHARS) -> int:
    """Characters of the longest JSON instance of `schema`, with `gap` characters of
    whitespace after every token a grammar lets whitespace follow."""
    return _Walk(schema, gap).chars(schema)


class _Walk:
    def __init__(self, root: dict[str, Any], gap: int) -> None:
        self.defs: dict[str, Any] = root.get("$defs", {})
        self.gap = gap

    def chars(self, schema: dict[str, Any]) -> int:
        if "$ref" in schema:
            return self.chars(self.defs[schema["$ref"].rsplit("/", 1)[-1]])
        for union in ("anyOf", "oneOf"):
            if union in schema:
                return max(self.chars(s) for s in schema[union])
        if "enum" in schema:
            return max(len(json.dumps(v)) for v in schema["enum"]) + self.gap
        if "const" in schema:
            return len(json.dumps(schema["const"])) + self.gap
        kind = schema.get("type")
        if kind == "object":
            return self._object(schema)
        if kind == "array":
            return self._array(schema)
        if kind == "string":
            if "maxLength" not in schema:
                raise UnboundedAnswer("a string without maxLength")
            return 2 + int(schema["maxLength"]) + self.gap
        if kind == "integer":
            if "minimum" not in schema or "maximum" not in schema:
                raise UnboundedAnswer("an integer without both bounds")
            return max(len(str(int(schema["minimum"]))), len(str(int(schema["maximum"])))) + self.gap
        if kind == "boolean":
            return len("false") + self.gap
        if kind == "null":
            return len("null") + self.gap
        raise UnboundedAnswer(f"a value of type {kind!r}")

    def _object(self, schema: dict[str, Any]) -> int:
        if schema.get("additionalProperties") not in (None, False):
            raise UnboundedAnswer("an object that admits any key")
        members = [
            len(json.dumps(key)) + self.gap + 1 + self.gap + self.chars(value)  # "key" : value
            for key, value in schema.get("properties", {}).items()
        ]
        separators = max(len(members) - 1, 0) * (1 + self.gap)
        return 1 + self.gap + sum(members) + separators + 1 + self.gap  # { ... }

    def _array(self, schema: dict[str, Any]) -> int:
        if "maxItems" not in schema:
            raise UnboundedAnswer("an array without maxItems")
        items = int(schema["maxItems"])
        each = self.chars(schema["items"]) if items else 0
        separators = max(items - 1, 0) * (1 + self.gap)
        return 1 + self.gap + items * each + separators + 1 + self.gap  # [ ... ]
