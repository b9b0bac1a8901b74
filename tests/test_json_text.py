"""`llm.json_text`: texts escaped once and spliced into a dumped document give exactly `json.dumps`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from autogen_core.models import SystemMessage, UserMessage
from hypothesis import given, settings
from hypothesis import strategies as st

from assembly.llm.json_text import SLOT, Literals, dumps_spliced
from assembly.llm.openai_http import OpenAICompatClient
from assembly.llm.response_format import structured_format
from assembly.llm.wrappers import CreateCall
from assembly.protocols.facilitated.actions import Speech

TEXTS = st.text(max_size=60) | st.sampled_from([SLOT, json.dumps(SLOT), '"', "\\", "\x00", "é\u2028😀"])
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10)


@st.composite
def documents(draw: st.DrawFn) -> tuple[Any, Any, list[str]]:
    """(document with slots, the same document with its texts, the texts in dump order)."""
    texts: list[str] = []

    def build(depth: int) -> tuple[Any, Any]:
        kind = draw(st.sampled_from(["text", "scalar", "list", "dict"] if depth < 3 else ["text", "scalar"]))
        if kind == "text":
            text = draw(TEXTS)
            texts.append(text)
            return SLOT, text
        if kind == "scalar":
            value = draw(SCALARS)
            return value, value
        if kind == "list":
            pairs = [build(depth + 1) for _ in range(draw(st.integers(0, 3)))]
            return [a for a, _ in pairs], [b for _, b in pairs]
        # Keys in the order they are dumped (sorted), so the texts are collected in that order.
        keys = sorted(set(draw(st.lists(st.text(alphabet="abcdef", max_size=3), max_size=3))))
        slotted, plain = {}, {}
        for key in keys:
            slotted[key], plain[key] = build(depth + 1)
        return slotted, plain

    slotted, plain = build(0)
    return slotted, plain, texts


@settings(max_examples=300, deadline=None)
@given(documents())
def test_splicing_gives_exactly_json_dumps(case: tuple[Any, Any, list[str]]) -> None:
    slotted, plain, texts = case
    literals = Literals(limit=2)  # small: generations turn over within one example
    for _ in range(2):  # escaped, then found
        assert dumps_spliced(slotted, texts, literals, sort_keys=True) == json.dumps(plain, sort_keys=True)


def test_a_document_whose_slots_do_not_match_its_texts_is_refused() -> None:
    with pytest.raises(ValueError, match="2 slots in the document for 1 texts"):
        dumps_spliced([SLOT, SLOT], ["a"], Literals())


def test_literals_keep_two_generations_and_no_more() -> None:
    literals = Literals(limit=2)
    first = "a" * 10
    kept = literals(first)
    assert literals(first) is kept
    literals("b")
    literals("c")  # a new generation: "a" and "b" are the previous one
    assert literals(first) is kept  # found in the previous generation, kept in the current one
    for t in ("d", "e", "f", "g"):
        literals(t)
    assert literals(first) is not kept and literals(first) == kept  # gone: escaped again


@settings(max_examples=100, deadline=None)
@given(system=TEXTS, user=TEXTS)
def test_the_request_body_is_the_plain_dump_of_the_request(system: str, user: str) -> None:
    """The body spliced from escaped texts reads back as exactly the request it stands for."""
    client = OpenAICompatClient(model="m", base_url="http://127.0.0.1:9/v1", api_key="k", timeout_s=5, names=True)
    fmt = structured_format(Speech, "json_schema")
    call = CreateCall(
        [SystemMessage(content=system), UserMessage(content=user, source="member_1")],
        extra_create_args={"temperature": 0.5, "response_format": fmt, "assembly_salt": "s"},
    )
    body = json.loads(client._body(call, stream=False))
    assert body == {
        "model": "m",
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": user, "name": "member_1"},
        ],
        "temperature": 0.5,
        "response_format": json.loads(json.dumps(dict(fmt))),
    }
