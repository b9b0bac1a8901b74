"""Stop rules (`core.stop`): how they compose, when each fires, and that runs end as before.

The stall rule is checked against a direct reading of its definition (every pair of
figures in the window within the tolerance) over random histories; a scenario's
`stall` setting is checked end to end against the run's own per-round figures.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assembly.core.events import Attempt, RoundEnded, RunEnded, SeatedMember, Tally
from assembly.core.member import Member, Request, TurnResult
from assembly.core.stop import (
    BUDGET_SPENT,
    Never,
    RunState,
    StopRule,
    budget,
    decided,
    round_limit,
    stalled,
)
from assembly.core.view import View
from assembly.protocols.facilitated.protocol import FACILITATOR_ID, FacilitatedAssembly
from tests.helpers import run, scenario


def _end(label: str) -> RunEnded:
    return RunEnded(outcome="no_decision", reason=label)


class Fires(StopRule):
    """A rule that fires (or not) as told, returning an end labelled with its name."""

    def __init__(self, label: str, fires: bool) -> None:
        self.label, self.fires = label, fires

    def check(self, state: RunState) -> RunEnded | None:
        return _end(self.label) if self.fires else None


STATE = RunState(round=1, cost=0.0, clock_s=0.0)


def _reason(rule: StopRule, state: RunState = STATE) -> str | None:
    end = rule.check(state)
    return end.reason if end is not None else None


# ---- composition


@pytest.mark.parametrize("fires", list(itertools.product([False, True], repeat=3)))
def test_or_returns_the_first_rule_in_order_that_fires(fires: tuple[bool, bool, bool]) -> None:
    a, b, c = (Fires(name, f) for name, f in zip("abc", fires, strict=True))
    expected = next((name for name, f in zip("abc", fires, strict=True) if f), None)
    assert _reason(a | b | c) == expected
    assert _reason(a | (b | c)) == expected  # grouping does not change the order
    hit = (a | b | c).fired(STATE)  # names the rule that fired, for the round's `stop` flag
    assert (hit.rule if hit is not None else None) is {"a": a, "b": b, "c": c}.get(expected or "")


@pytest.mark.parametrize("fires", list(itertools.product([False, True], repeat=2)))
def test_and_fires_only_when_both_do_with_the_left_end(fires: tuple[bool, bool]) -> None:
    a, b = Fires("a", fires[0]), Fires("b", fires[1])
    assert _reason(a & b) == ("a" if all(fires) else None)
    assert _reason(b & a) == ("b" if all(fires) else None)


def test_and_binds_tighter_than_or() -> None:
    # Python's precedence: `a | b & c` is `a | (b & c)`, so b alone does not fire it.
    a, b, c = Fires("a", False), Fires("b", True), Fires("c", False)
    assert _reason(a | b & c) is None
    assert _reason(a | b & Fires("d", True)) == "b"


def test_never_never_fires_and_is_a_neutral_left_operand() -> None:
    assert Never().check(STATE) is None
    assert _reason(Never() | Fires("x", True)) == "x"


# ---- engine rules


def _conclude(cause: str) -> RunEnded:
    reason = BUDGET_SPENT if cause == "budget" else f"limit: {cause}"
    return RunEnded(outcome="no_decision", cause=cause, reason=reason)  # type: ignore[arg-type]


@given(st.integers(1, 50), st.integers(1, 60))
def test_round_limit_fires_from_the_last_allowed_round(limit: int, played: int) -> None:
    end = round_limit(limit, _conclude).check(RunState(round=played, cost=0.0, clock_s=0.0))
    assert (end is not None) == (played >= limit)
    assert end is None or end.cause == "round_limit"
    assert round_limit(limit, _conclude).limit


@given(
    st.one_of(st.none(), st.floats(0.0, 10.0)),
    st.one_of(st.none(), st.floats(0.0, 100.0)),
    st.floats(0.0, 10.0),
    st.floats(0.0, 100.0),
)
def test_budget_fires_when_either_budget_is_reached(
    max_cost: float | None, budget_s: float | None, cost: float, clock: float
) -> None:
    rule = budget(max_cost, budget_s, _conclude)
    end = rule.check(RunState(round=3, cost=cost, clock_s=clock))
    cost_out = max_cost is not None and cost >= max_cost
    time_out = budget_s is not None and clock >= budget_s
    assert (end is not None) == (cost_out or time_out)
    if end is not None:
        assert end.cause == "budget"
        assert end.detail["budget"] == [k for k, hit in (("cost", cost_out), ("time", time_out)) if hit]
        assert BUDGET_SPENT not in end.reason  # replaced by what was spent
        assert ("cost budget was spent" in end.reason) == cost_out
        assert ("time budget was spent" in end.reason) == time_out


def test_engine_order_decision_beats_budget_beats_round_limit() -> None:
    spent = RunState(round=5, cost=2.0, clock_s=0.0)

    def compose(protocol: StopRule) -> StopRule:  # as the engine composes them
        return protocol | budget(1.0, None, _conclude) | round_limit(5, _conclude)

    assert _reason(compose(Fires("decided", True)), spent) == "decided"
    end = compose(Never()).check(spent)
    assert end is not None and end.cause == "budget"
    end = compose(Never()).check(dataclasses.replace(spent, cost=0.5))
    assert end is not None and end.cause == "round_limit"
    assert compose(Never()).check(dataclasses.replace(spent, round=4, cost=0.5)) is None


def test_decided_fires_exactly_when_the_protocol_has_an_end() -> None:
    outcome: list[RunEnded | None] = [None]
    rule = decided(lambda: outcome[0])
    assert rule.check(STATE) is None
    outcome[0] = _end("won")
    assert _reason(rule) == "won"
    assert not rule.limit


# ---- stalled, against a direct reading of its definition

figure = st.floats(0.0, 1.0, allow_nan=False)
history = st.lists(st.tuples(st.one_of(st.none(), figure), figure), max_size=12)


def stalled_by_definition(seen: list[tuple[float | None, float]], k: int, tolerance: float) -> bool:
    """Stalled: more than k observations, and within the last k + 1 no two dispersions
    (where measured) and no two leading supports differ by more than the tolerance."""
    if len(seen) < k + 1:
        return False
    window = seen[len(seen) - k - 1 :]
    dispersions = [d for d, _ in window if d is not None]
    supports = [s for _, s in window]
    return all(abs(x - y) <= tolerance for xs in (dispersions, supports) for x in xs for y in xs)


@given(history, st.integers(1, 5), st.floats(0.0, 1.0))
def test_stalled_fires_exactly_by_its_definition(
    seen: list[tuple[float | None, float]], k: int, tolerance: float
) -> None:
    rule = stalled(k, tolerance, lambda: seen, lambda: _end("stalled"))
    assert (rule.check(STATE) is not None) == stalled_by_definition(seen, k, tolerance)


@given(st.lists(figure, min_size=1, max_size=6), st.integers(1, 5))
def test_flat_history_stalls_once_long_enough(values: list[float], k: int) -> None:
    seen = [(None, values[0])] * (k + 1)
    assert stalled(k, 0.0, lambda: seen, lambda: _end("s")).check(STATE) is not None
    assert stalled(k, 0.0, lambda: seen[:-1], lambda: _end("s")).check(STATE) is None


# ---- a scenario's `stall` setting, end to end

# A threshold nobody reaches, so runs end by stalling or at the round limit.
HARD = {"protocol.decision_rule.threshold": "99/100", "protocol.first_vote_round": 1}


def _expected_end(summary: dict[str, Any], stall: dict[str, Any] | None) -> tuple[str | None, int]:
    """(cause, round) the run should end with, read from its per-round figures:
    the first voting round where the stall definition holds, else its last round."""
    seen: list[tuple[float | None, float]] = []
    for fig in summary["per_round"]:
        if fig["voted"]:
            seen.append((fig["dispersion"], fig["support"]))
            if stall is not None and stalled_by_definition(seen, stall["rounds"], stall["tolerance"]):
                return "stalled", fig["round"]
    return ("round_limit" if summary["outcome"] == "no_decision" else None), summary["rounds"]


STALLS = [
    ({"seed": 1}, {"rounds": 1, "tolerance": 0.5}),
    ({"seed": 1}, {"rounds": 2, "tolerance": 0.05}),  # stalls in the last round: beats the round limit
    ({"seed": 1}, {"rounds": 3, "tolerance": 0.005}),
    ({"seed": 1}, None),
    ({"seed": 2}, {"rounds": 2, "tolerance": 0.05}),
]


def test_scenario_stall_setting_ends_runs_as_its_definition_says(tmp_path: Path) -> None:
    causes = set()
    for i, (extra, stall) in enumerate(STALLS):
        summary, events = run(scenario(**HARD, **extra, **{"protocol.stall": stall}), tmp_path / str(i))
        cause, last = _expected_end(summary, stall)
        assert (summary["cause"], summary["rounds"]) == (cause, last), (extra, stall)
        end = events[-1]
        assert isinstance(end, RunEnded)
        if cause == "stalled":
            assert stall is not None and end.outcome == "no_decision"
            assert end.reason == (
                f"dispersion and leading support moved less than {stall['tolerance']} "
                f"for {stall['rounds']} voting rounds"
            )
        # A stall or a decision stops the run within its round; a limit does not.
        final = [e for e in events if isinstance(e, RoundEnded)][-1]
        assert final.stop == (cause != "round_limit")
        causes.add(cause)
    # The cases cover a stall, a stall in the last round, the round limit and a decision.
    assert causes == {"stalled", "round_limit", None}


# ---- the budget, mid-round and between rounds


class CostlyFacilitator:
    """The facilitator's sim policy, billing $1 per synthesis."""

    def __init__(self, inner: Member) -> None:
        self.inner = inner

    async def act(self, view: View, request: Request) -> TurnResult:
        result = await self.inner.act(view, request)
        return dataclasses.replace(result, attempts=[Attempt(attempt=1, outcome="ok", cost_usd=1.0)])


@pytest.mark.parametrize(
    ("first_vote_round", "mid_round"),
    [(1, True), (5, False)],  # the second synthesis spends it: before round 2's vote, or with round 2
)
def test_budget_stops_mid_round_or_after_the_round(tmp_path: Path, first_vote_round: int, mid_round: bool) -> None:
    sc = scenario(**{**HARD, "protocol.first_vote_round": first_vote_round, "protocol.max_cost": 1.5})

    def facilitator(seat: SeatedMember) -> Member:
        return CostlyFacilitator(FacilitatedAssembly(sc).sim_member(seat))

    summary, events = run(sc, tmp_path / "run", overrides={FACILITATOR_ID: facilitator})
    assert (summary["cause"], summary["rounds"]) == ("budget", 2)
    assert "cost budget was spent ($2.0000 of max_cost $1.5)" in summary["reason"]
    voted = {e.round for e in events if isinstance(e, Tally)}
    # Mid-round, round 2's vote (held in round 1) was never asked; otherwise no round voted.
    assert voted == ({1} if mid_round else set())
    final = [e for e in events if isinstance(e, RoundEnded)][-1]
    assert final.stop == mid_round
