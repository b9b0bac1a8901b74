"""Stop rules: when a run ends, as small rules that compose with `|` and `&`.

After every round the engine checks one rule against the run's state and ends the
run with the `RunEnded` it returns (None: play on). The rule is composed as

    protocol.stop_rule() | budget(...) | round_limit(n)

so a protocol's own stop (a decision, a stall) wins over the engine's limits, and a
spent budget wins over the round limit, as in autogen-agentchat's termination
conditions. `a | b` returns the end of the first rule, in order, that fires; `a & b`
fires only when both do and returns `a`'s end (the left operand names the outcome;
`b` is a further condition on it).

Protocol rules read the protocol's own state (folded from events, so a resumed run
sees what the live one saw) through the callables they are built from; engine rules
read `RunState`. A rule is pure: checking it twice on one state gives one answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from assembly.core.events import RunEnded

# What `conclude("budget")` says in its reason; the budget rule, which alone knows
# whether the clock (`budget_s`) or the spend (`max_cost`) ran out, replaces it with that.
BUDGET_SPENT = "the run's time or cost budget was spent"

# A protocol's end of the run for an engine-level cause (`round_limit` or `budget`).
Conclude = Callable[[str], RunEnded]


@dataclass(frozen=True)
class RunState:
    """What engine rules see after a round: the round just played, and the run's cost
    and accounted clock (simulated seconds for virtual sim) including that round."""

    round: int
    cost: float
    clock_s: float


class Fired(NamedTuple):
    """A rule that fired and the end it returns."""

    rule: StopRule
    end: RunEnded


class StopRule:
    """A condition that ends a run. Subclasses implement `check`.

    `limit` marks the engine's limits (budget, round limit): they cut a run off
    between rounds rather than stop it, so the round's `stop` flag stays False."""

    limit: bool = False

    def check(self, state: RunState) -> RunEnded | None:
        """The run's end if this rule fires on `state`, else None."""
        raise NotImplementedError

    def fired(self, state: RunState) -> Fired | None:
        """Which rule fired (a composite names the part), with its end."""
        end = self.check(state)
        return Fired(self, end) if end is not None else None

    def __or__(self, other: StopRule) -> StopRule:
        return AnyOf((self, other))

    def __and__(self, other: StopRule) -> StopRule:
        return AllOf((self, other))


@dataclass(frozen=True, eq=False)
class AnyOf(StopRule):
    """`a | b | ...`: the first rule, in order, that fires."""

    rules: tuple[StopRule, ...]

    def __or__(self, other: StopRule) -> StopRule:
        return AnyOf((*self.rules, other))  # flat, so `fired` names the leaf

    def fired(self, state: RunState) -> Fired | None:
        for rule in self.rules:
            hit = rule.fired(state)
            if hit is not None:
                return hit
        return None

    def check(self, state: RunState) -> RunEnded | None:
        hit = self.fired(state)
        return hit.end if hit is not None else None


@dataclass(frozen=True, eq=False)
class AllOf(StopRule):
    """`a & b & ...`: fires when every rule does, with the first rule's end."""

    rules: tuple[StopRule, ...]

    def fired(self, state: RunState) -> Fired | None:
        hits = [rule.fired(state) for rule in self.rules]
        first = hits[0]
        return first if first is not None and all(h is not None for h in hits) else None

    def check(self, state: RunState) -> RunEnded | None:
        hit = self.fired(state)
        return hit.end if hit is not None else None


@dataclass(frozen=True, eq=False)
class Never(StopRule):
    """A protocol with no stop of its own: its runs end at the engine's limits."""

    def check(self, state: RunState) -> RunEnded | None:
        return None


@dataclass(frozen=True, eq=False)
class Decided(StopRule):
    """The protocol's decision: `outcome()` is its end once its last vote decided, else None."""

    outcome: Callable[[], RunEnded | None]

    def check(self, state: RunState) -> RunEnded | None:
        return self.outcome()


def decided(outcome: Callable[[], RunEnded | None]) -> StopRule:
    return Decided(outcome)


# One observation per voting round: figures that show movement (None = not measured).
Observation = Sequence[float | None]


@dataclass(frozen=True, eq=False)
class Stalled(StopRule):
    """No movement: over the last `rounds` + 1 observations, every figure stayed
    within `tolerance` (max - min, ignoring unmeasured values).

    Observations only grow with the protocol's votes, so checking after a round
    without a vote sees what the previous check saw."""

    rounds: int
    tolerance: float
    observations: Callable[[], Sequence[Observation]]
    end: Callable[[], RunEnded]

    def check(self, state: RunState) -> RunEnded | None:
        seen = self.observations()
        if len(seen) <= self.rounds:
            return None
        recent = seen[-(self.rounds + 1) :]
        for column in zip(*recent, strict=True):
            values = [v for v in column if v is not None]
            if values and max(values) - min(values) > self.tolerance:
                return None
        return self.end()


def stalled(
    rounds: int, tolerance: float, observations: Callable[[], Sequence[Observation]], end: Callable[[], RunEnded]
) -> StopRule:
    return Stalled(rounds, tolerance, observations, end)


@dataclass(frozen=True, eq=False)
class RoundLimit(StopRule):
    """The last round allowed (`max_rounds`) has been played."""

    rounds: int
    conclude: Conclude
    limit = True

    def check(self, state: RunState) -> RunEnded | None:
        return self.conclude("round_limit") if state.round >= self.rounds else None


def round_limit(rounds: int, conclude: Conclude) -> StopRule:
    return RoundLimit(rounds, conclude)


@dataclass(frozen=True, eq=False)
class Budget(StopRule):
    """The run's cost (`max_cost`, USD) or clock (`budget_s`) budget is spent.

    The engine also checks `spent` before every phase, so a budget runs out mid-round
    too (`BudgetSpent`); its end then comes from `check` on the state at that point."""

    max_cost: float | None
    budget_s: float | None
    conclude: Conclude
    limit = True

    def cost_spent(self, state: RunState) -> bool:
        return self.max_cost is not None and state.cost >= self.max_cost

    def time_spent(self, state: RunState) -> bool:
        return self.budget_s is not None and state.clock_s >= self.budget_s

    def spent(self, state: RunState) -> bool:
        return self.cost_spent(state) or self.time_spent(state)

    def check(self, state: RunState) -> RunEnded | None:
        """The protocol's end for cause `budget`, saying which budget ran out and by how much."""
        if not self.spent(state):
            return None
        end = self.conclude("budget")
        spent: list[str] = []
        if self.cost_spent(state):
            spent.append(f"the cost budget was spent (${state.cost:.4f} of max_cost ${self.max_cost:g})")
        if self.time_spent(state):
            spent.append(f"the time budget was spent ({state.clock_s:.1f} s of budget_s {self.budget_s:g} s)")
        what = " and ".join(spent)
        reason = end.reason.replace(BUDGET_SPENT, what) if BUDGET_SPENT in end.reason else f"{what}; {end.reason}"
        budget = [kind for kind, hit in (("cost", self.cost_spent(state)), ("time", self.time_spent(state))) if hit]
        return end.model_copy(update={"reason": reason, "detail": {**end.detail, "budget": budget}})


def budget(max_cost: float | None, budget_s: float | None, conclude: Conclude) -> Budget:
    return Budget(max_cost, budget_s, conclude)
