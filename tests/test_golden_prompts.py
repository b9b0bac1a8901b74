"""Every kind of LLM prompt, rendered from fixed views, matches its recorded text.

One case per prompt kind (the assembly's speak, synthesize and three ballot forms;
the consensus game's proposal and stop vote for honest agents under both awareness
conditions and for Byzantine agents), recorded in `tests/golden_prompts/*.txt`. A
change to what members are told fails here; re-record with
`python -m tests.golden_prompts.cases` only when the change is meant, and say why.
"""

from __future__ import annotations

import difflib

import pytest

from tests.golden_prompts.cases import CASES, HERE, text


@pytest.mark.parametrize("name", sorted(CASES))
def test_prompt_matches_the_recorded_one(name: str) -> None:
    fresh = text(CASES[name]())
    recorded = (HERE / f"{name}.txt").read_text(encoding="utf-8")
    diff = "\n".join(difflib.unified_diff(recorded.splitlines(), fresh.splitlines(), "recorded", "now", lineterm=""))
    assert fresh == recorded, f"{name} changed:\n{diff}"


def test_every_recorded_prompt_has_a_case() -> None:
    assert {p.stem for p in HERE.glob("*.txt")} == set(CASES)
