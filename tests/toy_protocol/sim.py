"""Offline members of the show of hands: a private lean, pulled toward the room.

A member's lean (its chance of yes) is drawn once from (seed, member). Each round it
mixes its lean with the share of hands it saw up last round, weighted by
`conformity` (a DeGroot-style step on a binary opinion), raises its hand when the
mix is above one half, and abstains when it is within `abstain_band` of it.
"""

from __future__ import annotations

from assembly.core.faults import SeededFaults
from assembly.core.member import Request, TurnResult
from assembly.core.seeding import stream
from assembly.core.view import Heard, View
from tests.toy_protocol.actions import Hand
from tests.toy_protocol.config import ShowOfHandsConfig


class HandsSim:
    def __init__(self, member_id: str, spec: ShowOfHandsConfig, faults: SeededFaults, seed: int) -> None:
        self.id = member_id
        self.spec = spec
        self.faults = faults
        self.lean = stream(seed, "lean", member_id).random()

    async def act(self, view: View, request: Request) -> TurnResult:
        return await self.faults.run(self.id, request, self.hand(view))

    def hand(self, view: View) -> Hand:
        seen = [h.public.get("hand") for h in _last_round(view) if h.member != self.id]
        counted = [v for v in seen if v in ("yes", "no")]
        if counted:
            up = counted.count("yes") / len(counted)
            mix = (1 - self.spec.conformity) * self.lean + self.spec.conformity * up
            reason = f"{counted.count('yes')} of {len(counted)} hands I saw were up"
        else:
            mix, reason = self.lean, "my first impression"
        if abs(mix - 0.5) < self.spec.abstain_band:
            return Hand(hand="abstain", reason=f"undecided: {reason}")
        return Hand(hand="yes" if mix > 0.5 else "no", reason=reason)


def _last_round(view: View) -> tuple[Heard, ...]:
    """What the member heard in the newest earlier round (nothing in round 1)."""
    for heard in view.recent:
        if heard and heard[0].round < view.round:
            return heard
    return ()
