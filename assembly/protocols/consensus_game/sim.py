"""Offline agents for the consensus game: the classical baseline LLM groups are compared with.

Honest agents run an approximate-agreement rule in the tradition of Dolev, Lynch,
Pinter, Stark & Weihl (1986, "Reaching approximate agreement in the presence of
faults", JACM 33(3)): each round an agent takes the newest value it has seen from every
agent, drops a share `trim` at each end, aggregates the rest (lower median, or mean),
and moves toward that target, keeping a share `inertia` of the gap (a DeGroot /
Friedkin–Johnsen-style partial step). A step of less than one unit is rounded up to
one, so integer values still meet exactly; seeded Gaussian noise (`noise_sd`) perturbs
each step before rounding. Because all agents hear the same broadcasts (no
equivocation), honest agents compute the same target, and with a median target and no
noise the median agent never moves: the group converges on the median initial value.

They vote by the rule their awareness condition implies:
- `none_exist` (told every agent is honest): stop only when every agent proposed the
  agent's own value this round;
- `may_exist` (told Byzantine agents may exist): stop when the agent's value is held by
  all but at most floor(N/3) agents (the most Byzantine agents the game allows), and no
  dissenter moved closer to that value this round: a dissenter still closing in looks
  like an honest agent still converging, so the agent waits for it.

Byzantine agents play `zigzag`: all of them propose the same range extreme, the top in
odd rounds and the bottom in even rounds, and always vote continue. Extremes move a
median target the most, and swinging it from side to side keeps the honest agents'
common target moving, so they meet on a value that is often nobody's initial value;
under `none_exist` honest agents never see everyone agree, so the run times out.

Every action is computed from the member's `View` and a stream seeded by (seed, agent,
round, phase), then passed through the shared `SeededFaults` latency and fault model.
"""

from __future__ import annotations

import math

import numpy as np

from assembly.core.actions import Action
from assembly.core.faults import SeededFaults, SeededSimMember
from assembly.core.member import Request
from assembly.core.seeding import rng
from assembly.core.view import View
from assembly.protocols.consensus_game.actions import Proposal, StopVote
from assembly.protocols.consensus_game.config import ConsensusGameProtocol, ConsensusSimParams
from assembly.protocols.consensus_game.state import latest_values, lower_median, own_value, round_values


def aggregate(values: list[int], params: ConsensusSimParams, awareness: str) -> float:
    """The robust target: drop `trim` of the values at each end, then median or mean."""
    trim = params.trim if params.trim is not None else (1 / 3 if awareness == "may_exist" else 0.0)
    s = sorted(values)
    k = math.floor(trim * len(s))
    kept = s[k : len(s) - k] or s
    if params.aggregate == "median":
        return float(lower_median(kept))
    return float(np.mean(kept))


def step(current: int, target: float, inertia: float, noise: float, lo: int, hi: int) -> int:
    """Move from `current` toward `target`, keeping `inertia` of the gap; at least one unit."""
    x = current + (1.0 - inertia) * (target - current)
    nxt = math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)  # half away from zero
    if nxt == current and round(target) != current:
        nxt = current + (1 if target > current else -1)
    nxt += math.floor(noise + 0.5) if noise >= 0 else -math.floor(-noise + 0.5)
    return min(hi, max(lo, nxt))


class ConsensusSimAgent(SeededSimMember):
    """One offline agent: honest or Byzantine according to its seat."""

    def __init__(
        self,
        member_id: str,
        byzantine: bool,
        spec: ConsensusGameProtocol,
        params: ConsensusSimParams,
        faults: SeededFaults,
        seed: int,
    ) -> None:
        self.id = member_id
        self.byzantine = byzantine
        self.spec = spec
        self.params = params
        self.seed = seed
        self.faults = faults

    def action(self, view: View, request: Request) -> Action:
        if request.action is Proposal:
            return self.byzantine_proposal(view) if self.byzantine else self.honest_proposal(view, request)
        if request.action is StopVote:
            return StopVote(vote="continue") if self.byzantine else self.honest_vote(view)
        raise TypeError(f"consensus-game sim agent cannot produce {request.action.__name__}")

    # ---- honest

    def honest_proposal(self, view: View, request: Request) -> Proposal:
        lo, hi = self.spec.value_min, self.spec.value_max
        noise = float(rng(self.seed, "consensus", self.id, request.round, request.phase).normal(0.0, 1.0))
        mine = own_value(view, view.round, lo, hi)
        assert mine is not None, "honest agents always hold a value"
        seen = latest_values(view, view.round, lo, hi)
        if not seen:
            return Proposal(
                strategy="No proposals seen yet: start from my initial value.",
                value=mine,
                justification=f"I start from my initial value, {mine}.",
            )
        seen[self.id] = mine
        target = aggregate(list(seen.values()), self.params, self.spec.awareness)
        value = step(mine, target, self.params.inertia, noise * self.params.noise_sd, lo, hi)
        return Proposal(
            strategy=f"Robust target {target:g} from {len(seen)} values; moving from {mine} to {value}.",
            value=value,
            justification=f"The middle of the values proposed so far is about {target:g}; I move toward it.",
        )

    def honest_vote(self, view: View) -> StopVote:
        lo, hi = self.spec.value_min, self.spec.value_max
        now = round_values(view, view.round, lo, hi)
        mine = now.get(self.id)
        if mine is None:
            return StopVote(vote="continue")  # own proposal failed: cannot tell what agreement means
        n = len(view.roster)
        dissent = [m for m in view.roster if now.get(m) != mine]
        if self.spec.awareness == "none_exist":
            return StopVote(vote="stop" if not dissent else "continue")
        if len(dissent) > n // 3:
            return StopVote(vote="continue")
        before = latest_values(view, view.round, lo, hi)
        closing = [
            d
            for d in dissent
            if (v := now.get(d)) is not None and d in before and abs(v - mine) < abs(before[d] - mine)
        ]
        return StopVote(vote="continue" if closing else "stop")

    # ---- Byzantine

    def byzantine_proposal(self, view: View) -> Proposal:
        top = view.round % 2 == 1
        value = self.spec.value_max if top else self.spec.value_min
        return Proposal(
            strategy=f"zigzag: pull the median {'up' if top else 'down'} this round.",
            value=value,
            justification="Several values are still far apart; anchoring on this end should help us "
            "find the common ground faster.",
        )
