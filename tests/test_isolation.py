"""Information isolation, as a property over random scenarios.

Every view the engine builds during a run is checked against an independent
reconstruction from the events seen so far: a member knows its own dealt facts,
plus facts disclosed by members in its audience, and nothing else — not in its
fact lists, and not hidden in the text of what it heard.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from assembly import launch
from assembly.core import run as core_run
from assembly.core.actions import Action
from assembly.core.events import Disclosure, Seated
from assembly.core.view import View, ViewBuilder
from assembly.scenario.loading import build_scenario
from assembly.scenario.model import Scenario


class CheckingViews(ViewBuilder):
    """A ViewBuilder that audits every view it hands out."""

    checked = 0

    def __init__(self, scenario: Scenario, actions: Iterable[type[Action]]) -> None:
        super().__init__(scenario, actions)
        self.seen: list[Any] = []

    def apply(self, event: Any) -> None:
        self.seen.append(event)
        super().apply(event)

    def view(self, member_id: str, round: int, phase: str) -> View:
        v = super().view(member_id, round, phase)
        seated = next(e for e in self.seen if isinstance(e, Seated))
        ids = [m.id for m in seated.members]
        if member_id in ids:
            i = ids.index(member_id)
            audience = {ids[j] for j in seated.audiences[seated.audience_of[i]]}
            dealt = set(seated.members[i].facts)
            heard_ok = {e.fact for e in self.seen if isinstance(e, Disclosure) and e.member in audience}
            assert {f.id for f in v.own_facts} == dealt
            assert {f.id for f in v.heard_facts} <= heard_ok - dealt
            known = dealt | {f.id for f in v.heard_facts}
            for utterances in v.recent:
                for h in utterances:
                    assert h.member in audience, (member_id, h.member)
                    text = str(h.public)
                    for fact in self.scenario.facts:
                        if fact.id not in known:
                            assert fact.text not in text, (member_id, fact.id)
            assert "disclose" not in str([h.public for u in v.recent for h in u if h.member != member_id])
        CheckingViews.checked += 1
        return v


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    n = draw(st.integers(2, 24))
    n_facts = draw(st.integers(0, 6))
    facts = []
    for k in range(n_facts):
        holders = draw(st.one_of(st.just("all"), st.builds(lambda c: {"count": c}, st.integers(1, n))))
        facts.append(
            {
                "id": f"fact{k}",
                "text": f"Secret number {k} is {draw(st.integers(1000, 9999))}.",
                "effects": {"A": draw(st.floats(-1, 1))},
                "holders": holders,
            }
        )
    topo = draw(
        st.sampled_from(
            [
                {"kind": "all_to_all"},
                {"kind": "tables", "table_size": draw(st.integers(2, 5))},
                {"kind": "small_world", "k": 2, "p": 0.3},
            ]
        )
    )
    data = {
        "name": "prop",
        "question": "?",
        "options": [{"id": "A", "text": "a", "attributes": {"x": 1}}, {"id": "B", "text": "b"}],
        "population": {"size": n, "roles": [{"name": "r", "share": 1, "values": {"x": draw(st.floats(-1, 1))}}]},
        "facts": facts,
        "topology": topo,
        "protocol": {"kind": "assembly", "max_rounds": draw(st.integers(1, 4)), "first_vote_round": 1},
        "members": {
            "sim": {"disclosure_rate": draw(st.floats(0, 1)), "faults": {"timeout_rate": draw(st.floats(0, 0.3))}}
        },
        "seed": draw(st.integers(0, 10**6)),
    }
    return build_scenario(data, {})


@settings(max_examples=40, deadline=None)
@given(scenarios())
def test_views_never_leak_undisclosed_facts(sc: Scenario) -> None:
    before = CheckingViews.checked
    original = core_run.ViewBuilder
    core_run.ViewBuilder = CheckingViews  # type: ignore[misc]
    try:
        with tempfile.TemporaryDirectory() as d:
            asyncio.run(launch.execute(sc, Path(d) / "run"))
    finally:
        core_run.ViewBuilder = original  # type: ignore[misc]
    assert CheckingViews.checked > before
