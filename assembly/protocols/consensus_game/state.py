"""Consensus-game state: who holds which value, folded from events or read from a view.

Two readers need the same facts and must never disagree about them:

- the protocol and its figures fold transcript events into a `Board` (current value of
  every agent, honest initial values, who is Byzantine);
- members (sim agents, LLM prompts) read the same facts from their `View`, which
  holds only the public (value, justification) of proposals plus their own seat.

A proposal's value is parsed in one place (`proposal_value`): an integer is clamped
into the game's range, as the paper's code does; anything else (a Byzantine agent's
explicit "abstain", a member that returned junk) is an abstention, and an
abstaining agent keeps its previous value.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

from assembly.core.events import Seated, Turn
from assembly.core.view import View

PROPOSE = "propose"
STOP_VOTE = "stop_vote"


def proposal_value(action: dict[str, Any] | None, lo: int, hi: int) -> int | None:
    """The value a proposal sets, or None if it is an abstention."""
    if not action:
        return None
    v = action.get("value")
    if isinstance(v, bool) or not isinstance(v, int):
        return None
    return min(hi, max(lo, v))


def stop_votes_needed(threshold: Fraction, n: int) -> int:
    """The fewest stop votes k with k / n >= threshold."""
    return -(-threshold.numerator * n // threshold.denominator)


def lower_median(values: list[int]) -> int:
    s = sorted(values)
    return s[(len(s) - 1) // 2]


def is_median(value: int, initials: list[int]) -> bool:
    """Whether `value` is "the median" of `initials` as the paper's code decides it:
    equal to int(statistics.median), which truncates the midpoint of an even count."""
    return value == int(statistics.median(initials))


@dataclass
class Board:
    """The game's state, folded from events exactly as a live run built it."""

    lo: int
    hi: int
    ids: list[str] = field(default_factory=list)
    byzantine: set[str] = field(default_factory=set)
    initial: dict[str, int] = field(default_factory=dict)  # honest agents only
    current: dict[str, int] = field(default_factory=dict)  # agents that hold a value

    @classmethod
    def from_seated(cls, seated: Seated, lo: int, hi: int) -> Board:
        board = cls(lo, hi)
        board.seat(seated)
        return board

    def seat(self, seated: Seated) -> None:
        self.ids = [m.id for m in seated.members]
        self.byzantine = {m.id for m in seated.members if m.private.get("byzantine")}
        self.initial = {m.id: int(m.private["initial"]) for m in seated.members if m.id not in self.byzantine}
        self.current = dict(self.initial)

    def apply(self, turn: Turn) -> None:
        """Fold one turn: an ok proposal with a value becomes that agent's current value."""
        if turn.phase == PROPOSE and turn.status == "ok":
            v = proposal_value(turn.action, self.lo, self.hi)
            if v is not None:
                self.current[turn.member] = v

    @property
    def honest(self) -> list[str]:
        return [m for m in self.ids if m not in self.byzantine]

    def honest_values(self) -> list[int]:
        return [self.current[m] for m in self.honest]

    def agreement(self) -> tuple[int | None, bool]:
        """(the value all honest agents hold, or None; whether it is an honest initial value)."""
        values = set(self.honest_values())
        if len(values) != 1:
            return None, False
        v = values.pop()
        return v, v in self.initial.values()


def value_figures(values: list[int], initials: set[int]) -> dict[str, Any]:
    """Dispersion of a set of honest values. The sd is the sample standard deviation
    (n - 1), as in the paper's code (`statistics.stdev`)."""
    if not values:
        return {"honest_mean": None, "honest_median": None, "honest_sd": None, "honest_modal_share": None}
    modal = Counter(values).most_common(1)[0][1]
    return {
        "honest_mean": round(statistics.fmean(values), 6),
        "honest_median": float(statistics.median(values)),
        "honest_sd": round(statistics.stdev(values), 6) if len(values) > 1 else 0.0,
        "honest_modal_share": round(modal / len(values), 6),
    }


# ----------------------------------------------------------------------------- views
# The same readings from a member's `View`, clamped into the game's range [lo, hi]
# exactly as the protocol clamps them, so a member never sees a value the game
# did not record.


def round_values(view: View, round: int, lo: int, hi: int) -> dict[str, int | None]:
    """Each roster agent's proposal in `round` as the view heard it (None: abstained).

    Empty if the view holds nothing of that round."""
    for heard in view.recent:
        if heard and heard[0].round == round:
            got = {h.member: proposal_value(h.public, lo, hi) for h in heard if h.kind == "proposal"}
            return {m: got.get(m) for m in view.roster}
    return {}


def latest_values(view: View, before: int, lo: int, hi: int) -> dict[str, int]:
    """The newest value the view shows for each agent, from rounds before `before`."""
    out: dict[str, int] = {}
    for heard in view.recent:  # newest round first
        for h in heard:
            if h.round < before and h.kind == "proposal" and h.member not in out:
                v = proposal_value(h.public, lo, hi)
                if v is not None:
                    out[h.member] = v
    return out


def own_value(view: View, before: int, lo: int, hi: int) -> int | None:
    """The agent's own current value after its proposals before round `before`.

    Its newest successful proposal, else its initial value (None for a Byzantine agent
    that never proposed). A view keeps `view_window` own actions and rounds, so this is
    exact unless the agent failed every proposal in that many rounds.
    """
    for h in view.own_history:  # newest first, full actions
        if h.kind == "proposal" and h.round < before:
            v = proposal_value(h.public, lo, hi)
            if v is not None:
                return v
    mine = latest_values(view, before, lo, hi).get(view.member.id)
    if mine is not None:
        return mine
    initial = view.member.private.get("initial")
    return int(initial) if initial is not None else None


@dataclass(frozen=True, slots=True)
class Shown:
    """One agent in one round, as a member's view shows it.

    `status` is how its proposal went: `proposed` a value, `abstained` (a Byzantine
    agent's explicit "abstain"), or `failed` (no usable answer in time). An agent that
    did not propose keeps its previous value, as the game does; `value` is that value
    as far as the view knows it: the viewer's own is exact (it knows its initial value),
    another agent's is the newest value it announced within the view's window, else
    None. Another agent's initial value is private until it proposes, and showing it
    would also tell honest agents (who have one) from Byzantine ones (who do not).
    """

    value: int | None
    status: Literal["proposed", "abstained", "failed"]
    justification: str


def shown_round(view: View, round: int, lo: int, hi: int) -> dict[str, Shown]:
    """Every roster agent as the view shows it after the proposals of `round`."""
    heard = {h.member: h.public for hs in view.recent for h in hs if h.round == round and h.kind == "proposal"}
    before = latest_values(view, round, lo, hi)
    out: dict[str, Shown] = {}
    for m in view.roster:
        public = heard.get(m)
        value = proposal_value(public, lo, hi)
        why = str(public.get("justification", "")) if public else ""
        if value is not None:
            out[m] = Shown(value, "proposed", why)
            continue
        kept = own_value(view, round, lo, hi) if m == view.member.id else before.get(m)
        out[m] = Shown(kept, "abstained" if public is not None else "failed", why)
    return out
