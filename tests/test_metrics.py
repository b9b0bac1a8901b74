"""Liveness counts: each turn classified by the definitions, one turn at a time."""

from __future__ import annotations

from typing import Any, get_args

from hypothesis import given, settings
from hypothesis import strategies as st

from assembly.core.actions import by_kind
from assembly.core.events import Attempt, Turn, TurnStatus
from assembly.core.metrics import liveness
from assembly.protocols.facilitated.actions import Ballot, Speech, Synthesis

ACTIONS = by_kind((Speech, Synthesis, Ballot))
ACTION_DICTS: list[dict[str, Any] | None] = [
    None,
    {"kind": "ballot", "abstain": True},
    {"kind": "ballot", "abstain": False, "choice": "a"},
    {"kind": "speech", "message": "hello", "position": "a"},
    {"kind": "unknown_kind", "abstain": True},  # no class to say it abstains
]

turns = st.lists(
    st.builds(
        lambda status, action, tries: Turn(
            round=1,
            phase="vote",
            member="m",
            status=status,
            action=action,
            attempts=[Attempt(attempt=i + 1, outcome="ok") for i in range(tries)],
        ),
        st.sampled_from(get_args(TurnStatus)),
        st.sampled_from(ACTION_DICTS),
        st.integers(0, 4),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(turns)
def test_liveness_counts_each_turn_by_its_definition(ts: list[Turn]) -> None:
    expected = dict.fromkeys(
        ("turn_timeouts", "throttled", "malformed", "provider_errors", "abstentions", "retries"), 0
    )
    for t in ts:
        named = {"timeout": "turn_timeouts", "throttled": "throttled", "malformed": "malformed"}
        named["provider_error"] = "provider_errors"
        if t.status in named:
            expected[named[t.status]] += 1
        failed = t.status in ("timeout", "malformed", "provider_error", "skipped")
        explicit = t.action is not None and t.action.get("kind") == "ballot" and t.action.get("abstain") is True
        expected["abstentions"] += failed or explicit  # throttled is not a failure: the tool held it
        expected["retries"] += max(0, len(t.attempts) - 1)
    assert liveness(ts, ACTIONS) == expected
