"""`longest_answer_chars` against answers written out as llama.cpp's grammar lets a model
write them: random schemas, with their longest instance built here, value by value, and
serialized with the grammar's widest whitespace wherever it allows whitespace.

The test's writer is its own: it emits characters token by token (`{`, a key, `:`, a
value, `,`, ...) and appends a gap after each one the grammar's `space` rule follows,
so a missed gap, key or separator in the count shows as a length mismatch.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assembly.core.answer_size import GAP_CHARS, UnboundedAnswer, longest_answer_chars
from assembly.protocols.facilitated.prompts import ballot_model, generations, speech_model, synthesis_model

WIDEST_GAP = "\n\n" + " \t" * 10  # `space ::= | " " | "\n"{1,2} [ \t]{0,20}`, at its longest
assert len(WIDEST_GAP) == GAP_CHARS

_KEY = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=12)


def _schemas(depth: int = 2) -> st.SearchStrategy[tuple[dict[str, Any], Any]]:
    """(schema, its longest instance as a value)."""
    leaves = st.one_of(
        st.integers(0, 300).map(lambda n: ({"type": "string", "maxLength": n}, "x" * n)),
        st.lists(_KEY, min_size=1, max_size=5, unique=True).map(
            lambda values: ({"type": "string", "enum": values}, max(values, key=len))
        ),
        st.tuples(st.integers(-1000, 10), st.integers(0, 10**6)).map(
            lambda b: (
                {"type": "integer", "minimum": b[0], "maximum": b[1]},
                max(b, key=lambda v: len(str(v))),
            )
        ),
        st.just(({"type": "boolean"}, False)),
    )
    if depth == 0:
        return leaves
    inner = _schemas(depth - 1)
    objects = st.lists(st.tuples(_KEY, inner), max_size=4, unique_by=lambda kv: kv[0]).map(
        lambda kvs: (
            {"type": "object", "properties": {k: s for k, (s, _) in kvs}, "additionalProperties": False},
            {k: v for k, (_, v) in kvs},
        )
    )
    arrays = st.tuples(inner, st.integers(0, 4)).map(
        lambda t: ({"type": "array", "items": t[0][0], "maxItems": t[1]}, [t[0][1]] * t[1])
    )
    return st.one_of(leaves, objects, arrays)


def write_widest(value: Any) -> str:
    """`value` as JSON with the widest gap after every token the grammar lets space follow."""
    if isinstance(value, dict):
        out = "{" + WIDEST_GAP
        for i, (k, v) in enumerate(value.items()):
            if i:
                out += "," + WIDEST_GAP
            out += json.dumps(k) + WIDEST_GAP + ":" + WIDEST_GAP + write_widest(v)
        return out + "}" + WIDEST_GAP
    if isinstance(value, list):
        out = "[" + WIDEST_GAP
        for i, v in enumerate(value):
            if i:
                out += "," + WIDEST_GAP
            out += write_widest(v)
        return out + "]" + WIDEST_GAP
    return json.dumps(value) + WIDEST_GAP


@settings(max_examples=300, deadline=None)
@given(_schemas())
def test_the_count_is_the_longest_instance_written_with_the_widest_gaps(case: tuple[dict[str, Any], Any]) -> None:
    schema, longest = case
    assert longest_answer_chars(schema) == len(write_widest(longest))
    assert longest_answer_chars(schema, gap=0) == len(json.dumps(longest, separators=(",", ":")))


def test_references_and_the_facilitated_output_models() -> None:
    """Through `$ref`s, as pydantic writes them: a speech's scores object is a `$def`."""
    options, facts = ("buses", "bikes", "parking"), ("grant",)
    speech = speech_model(options, facts)
    longest = {
        "message": "x" * 600,
        "position": "parking",
        "scores": {o: 100 for o in options},
        "disclose": ["grant"],
    }
    assert longest_answer_chars(speech.model_json_schema()) == len(write_widest(longest))
    synthesis = {"candidates": [{"option": "parking", "statement": "x" * 200}] * 2, "summary": "x" * 1000}
    assert longest_answer_chars(synthesis_model(options, 2).model_json_schema()) == len(write_widest(synthesis))
    ranking = {"ranking": {"buses": 2, "bikes": 2}, "abstain": False}
    assert longest_answer_chars(ballot_model("schulze", ("buses", "bikes")).model_json_schema()) == len(
        write_widest(ranking)
    )


def test_a_run_bounds_every_member_by_the_longest_ids() -> None:
    """The run's one limit per call kind covers every member's own output model."""
    options, facts = ["a", "bbbbbbbb", "cc"], ["f1", "fact_long", "f3"]
    limits = generations("approval", options, facts, facts=2, candidates=2)
    for held in [("f1",), ("f1", "f3"), ("fact_long", "f3"), ()]:
        own = longest_answer_chars(speech_model(tuple(options), held).model_json_schema())
        assert own <= limits["speak"]["max_tokens"]
    for pair in [("a", "cc"), ("a", "bbbbbbbb"), ("cc", "bbbbbbbb")]:
        own = longest_answer_chars(ballot_model("approval", pair).model_json_schema())
        assert own <= limits["vote"]["max_tokens"]


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string"},
        {"type": "integer", "minimum": 0},
        {"type": "array", "items": {"type": "boolean"}},
        {"type": "object", "properties": {}, "additionalProperties": True},
        {"type": "number"},
    ],
)
def test_an_unbounded_schema_is_refused_rather_than_given_a_limit(schema: dict[str, Any]) -> None:
    with pytest.raises(UnboundedAnswer):
        longest_answer_chars(schema)
