"""The show of hands: one phase per round, a tally, and a stop when enough agree.

1. raise_hands: every member shows a hand (yes / no / abstain) with a reason, heard
   by its audience (the topology's neighbourhood);
2. tally: the share of ALL seated members showing each hand; when one reaches
   `agree_share` the run ends with that hand as its decision.
Otherwise the run ends at the round limit with no decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from assembly.core import seating, topology
from assembly.core.events import RunEnded, RunStarted, Seated, SeatedMember, Tally, Turn
from assembly.core.member import Member
from assembly.core.protocol import Protocol, RoundContext
from assembly.core.spec import ScenarioBase
from tests.toy_protocol.actions import Hand
from tests.toy_protocol.config import ShowOfHandsConfig
from tests.toy_protocol.presentation import HandsPresentation
from tests.toy_protocol.sim import HandsSim
from tests.toy_protocol.state import RAISE, count_hands


class ShowOfHands(Protocol):
    name = "show_of_hands"
    config = ShowOfHandsConfig
    actions = (Hand,)
    presentation = HandsPresentation()

    def __init__(self, scenario: ScenarioBase) -> None:
        super().__init__(scenario)
        assert isinstance(scenario.protocol, ShowOfHandsConfig)
        self.spec: ShowOfHandsConfig = scenario.protocol
        self.member_ids: list[str] = []

    def seat(self) -> Seated:
        members = seating.seat(self.scenario)
        groups, of = topology.audiences(self.scenario.topology, len(members), self.scenario.seed)
        return Seated(members=members, audiences=groups, audience_of=of)

    def sim_member(self, seated: SeatedMember) -> Member:
        return HandsSim(seated.id, self.spec, self.seeded_faults(), self.scenario.seed)

    def apply(self, event: Any) -> None:
        if isinstance(event, Seated):
            self.member_ids = [m.id for m in event.members]

    async def play_round(self, ctx: RoundContext) -> RunEnded | None:
        hands = await ctx.ask(RAISE, self.member_ids, Hand)
        tally = self._tally(ctx.round, hands)
        ctx.emit(tally)
        if not tally.decided:
            return None
        return RunEnded(outcome="valid_decision", decision=tally.winner, reason=tally.detail)

    def _tally(self, r: int, hands: list[Turn]) -> Tally:
        n = len(self.member_ids)
        yes, no, other = count_hands(hands)
        need = Fraction(str(self.spec.agree_share))
        winner = "yes" if Fraction(yes, n) >= need else "no" if Fraction(no, n) >= need else None
        return Tally(
            round=r,
            rule="show_of_hands",
            candidates=["yes", "no"],
            counted=yes + no,
            seated=n,
            quorum_met=True,
            decided=winner is not None,
            winner=winner,
            leading="yes" if yes >= no else "no",
            leading_support=round(max(yes, no) / n, 6),
            support={"yes": round(yes / n, 6), "no": round(no / n, 6)},
            detail=f"{yes} up, {no} down, {other} abstained or failed; {need} of {n} needed",
        )

    def conclude(self, cause: str) -> RunEnded:
        return RunEnded(outcome="no_decision", cause=cause, reason=f"no {self.spec.agree_share:.0%} agreement")  # type: ignore[arg-type]

    @classmethod
    def round_figures(
        cls, round_events: list[Any], started: RunStarted, seated: Seated, history: Sequence[Any] = ()
    ) -> dict[str, Any]:
        yes, no, _ = count_hands(e for e in round_events if isinstance(e, Turn) and e.phase == RAISE)
        n = len(seated.members)
        return {"hands_up": round(yes / n, 6) if n else None, "hands_counted": yes + no}

    @classmethod
    def run_figures(cls, events: list[Any]) -> dict[str, Any]:
        tallies = [e for e in events if isinstance(e, Tally)]
        return {"final_hands_up": tallies[-1].support.get("yes") if tallies else None}
