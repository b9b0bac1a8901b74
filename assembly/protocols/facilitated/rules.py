"""Decision rules and quorum: pure, composable checks on a set of ballots.

Rules are configured from scenario YAML (`decision_rule: {kind: supermajority, threshold: 0.66}`),
so each spec is a strict pydantic model behind a discriminated union on `kind`. Deciding is
kept apart from quorum on purpose: "was the vote valid?" and "what did it decide?" are
different questions, and protocols combine them in different ways.

Ballots are member output, i.e. untrusted data: any option they name that is not a current
candidate is ignored, so a member can never create a candidate by voting for it. Shares are
compared with exact rational arithmetic (thresholds are read from their decimal spelling,
or written as "2/3"), because a 60% quorum must pass with exactly 6 of 10 and a float
product like 0.6 * 10 must not decide that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Annotated, Any, Literal, assert_never

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from assembly.core.actions import OptionId
from assembly.protocols.facilitated.actions import Ballot

__all__ = [
    "ApprovalRule",
    "DecisionRuleSpec",
    "MajorityRule",
    "RuleResult",
    "SchulzeRule",
    "Share",
    "SupermajorityRule",
    "UnanimityRule",
    "as_fraction",
    "decide",
    "quorum_met",
    "schulze_ranking",
]


def as_fraction(value: float | int | str | Fraction) -> Fraction:
    """Read a share the way a person wrote it: 0.6 means 3/5, not the nearest binary float."""
    if isinstance(value, bool):
        raise ValueError("a share must be a number, not a boolean")
    if isinstance(value, float):
        value = str(value)  # Fraction rejects 'nan'/'inf' spelled this way
    try:
        return Fraction(value)
    except ZeroDivisionError:
        # Validators turn ValueErrors into field errors; "1/0" must be one too.
        raise ValueError("a share cannot have a zero denominator") from None
    except (ValueError, TypeError):
        # Fraction's own message quotes the whole input; the caller shows it clipped.
        raise ValueError('a share is a number such as 0.6 or a fraction such as "2/3"') from None


def _dump_share(value: Fraction) -> float | str:
    """Round-trip shares readably: 33/50 stays 0.66 in manifests, 2/3 stays "2/3"."""
    as_float = float(value)
    return as_float if Fraction(str(as_float)) == value else str(value)


def _parse_share(value: Any) -> Any:
    return value if isinstance(value, Fraction) else as_fraction(value)


Share = Annotated[Fraction, BeforeValidator(_parse_share), PlainSerializer(_dump_share)]
"""A share as a scenario writes it (0.6, "2/3"), held exactly; used by rules and quorum."""


class _RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base: Literal["cast", "seated"] = Field(
        default="cast",
        description="Denominator of every share: non-abstaining ballots, or all seated members.",
    )


class MajorityRule(_RuleSpec):
    """Strictly more than half of the base choose the same candidate."""

    kind: Literal["majority"] = "majority"


class SupermajorityRule(_RuleSpec):
    """At least `threshold` of the base choose the same candidate (e.g. 0.66 or "2/3")."""

    kind: Literal["supermajority"] = "supermajority"
    threshold: Annotated[Share, Field(gt=0.5, le=1)]


class UnanimityRule(_RuleSpec):
    """Every ballot of the base chooses the same candidate."""

    kind: Literal["unanimity"] = "unanimity"


class ApprovalRule(_RuleSpec):
    """The most-approved candidate wins if approved by at least `threshold` of the base."""

    kind: Literal["approval"] = "approval"
    threshold: Annotated[Share, Field(gt=0, le=1)] = Fraction(1, 2)


class SchulzeRule(_RuleSpec):
    """Ranked ballots; the unique Schulze winner wins (partial rankings allowed)."""

    kind: Literal["schulze"] = "schulze"


DecisionRuleSpec = Annotated[
    MajorityRule | SupermajorityRule | UnanimityRule | ApprovalRule | SchulzeRule,
    Field(discriminator="kind"),
]

# The one Ballot field each rule counts (see `_Count`); the others are ignored.
BALLOT_FIELD: dict[str, str] = {
    "majority": "choice",
    "supermajority": "choice",
    "unanimity": "choice",
    "approval": "approve",
    "schulze": "ranking",
}


@dataclass(frozen=True, slots=True)
class RuleResult:
    """Outcome of one vote under one rule.

    `support` is per candidate, over `denominator`: first choices for the choice-based
    rules, approvals for approval, first places for Schulze. It is what reports plot as
    "how close was it", so it is filled in even when nothing is decided. `leading` is None
    when the top is tied (or nobody has support); `leading_support` is still the top share.
    Under Schulze the winner may differ from `leading`: first places are not the rule.
    """

    decided: bool
    winner: OptionId | None
    support: dict[OptionId, float]
    leading: OptionId | None
    leading_support: float
    counted: int
    denominator: int
    detail: str


def quorum_met(counted: int, seated: int, quorum: float | str | Fraction) -> bool:
    """True iff `counted` non-abstaining ballots reach `quorum` (a fraction) of `seated`.

    Exact arithmetic, so a quorum of 0.6 is met by exactly 6 of 10.
    """
    q = as_fraction(quorum)
    if not 0 <= q <= 1:
        raise ValueError(f"quorum must be a fraction in [0, 1], got {quorum!r}")
    if counted < 0 or seated < 0:
        raise ValueError("counted and seated must be non-negative")
    return counted >= q * seated


def schulze_ranking(ballots: Sequence[Ballot], candidates: Sequence[OptionId]) -> list[list[OptionId]]:
    """Schulze order as tiers, best first; candidates in one tier are tied.

    Reads `ranking` only. Ranked candidates beat unranked ones; unranked candidates are
    tied with each other, so a ballot that ranks one option says only "this one first".
    The Schulze "beats" relation is transitive, so peeling off the unbeaten candidates
    tier by tier yields a well-defined order.
    """
    cands = _unique(candidates)
    index = {c: i for i, c in enumerate(cands)}
    n = len(cands)
    d = [[0] * n for _ in range(n)]  # d[i][j]: ballots preferring i to j
    for ballot in ballots:
        if ballot.abstain:
            continue
        ranked = [index[c] for c in _unique(o for o in ballot.ranking if o in index)]
        unranked = [i for i in range(n) if i not in ranked]
        for pos, i in enumerate(ranked):
            for j in ranked[pos + 1 :] + unranked:
                d[i][j] += 1
    # Widest-path (Floyd–Warshall) over the pairwise-defeat graph.
    p = [[d[i][j] if d[i][j] > d[j][i] else 0 for j in range(n)] for i in range(n)]
    for k in range(n):
        for i in range(n):
            if i == k:
                continue
            for j in range(n):
                if j not in (i, k):
                    p[i][j] = max(p[i][j], min(p[i][k], p[k][j]))
    tiers: list[list[OptionId]] = []
    remaining = list(range(n))
    while remaining:
        top = [i for i in remaining if all(p[i][j] >= p[j][i] for j in remaining)]
        tiers.append([cands[i] for i in top])
        remaining = [i for i in remaining if i not in top]
    return tiers


def decide(
    spec: DecisionRuleSpec, ballots: Sequence[Ballot], candidates: Sequence[OptionId], seated: int
) -> RuleResult:
    """Apply `spec` to `ballots`. Ties and empty votes never decide anything.

    A non-abstaining ballot that names no valid candidate still counts as cast (it backs
    nobody), so malformed member output makes a decision harder, never easier.
    """
    if seated < 0 or len(ballots) > seated:
        raise ValueError(f"{len(ballots)} ballots but only {seated} seated members")
    cands = _unique(candidates)
    cast = [b for b in ballots if not b.abstain]
    denominator = len(cast) if spec.base == "cast" else seated
    tally = _Tally(spec, cast, cands, denominator)

    if denominator == 0:
        winner, detail = None, f"Not decided: no {tally.of_base}."
    else:
        match spec:
            case MajorityRule():
                winner, detail = tally.plurality(lambda top: 2 * top > denominator, "majority needs > 50%")
            case SupermajorityRule():
                need = f"supermajority needs ≥ {_pct(spec.threshold)}"
                winner, detail = tally.plurality(lambda top: top >= spec.threshold * denominator, need)
            case UnanimityRule():
                need = f"unanimity needs all {denominator} {tally.of_base}"
                winner, detail = tally.plurality(lambda top: top == denominator, need)
            case ApprovalRule():
                need = f"approval needs ≥ {_pct(spec.threshold)}"
                winner, detail = tally.plurality(lambda top: top >= spec.threshold * denominator, need)
            case SchulzeRule():
                winner, detail = tally.schulze()
            case _:
                assert_never(spec)

    support = {c: (n / denominator if denominator else 0.0) for c, n in tally.backing.items()}
    return RuleResult(
        decided=winner is not None,
        winner=winner,
        support=support,
        leading=tally.leading,
        leading_support=max(support.values(), default=0.0),
        counted=len(cast),
        denominator=denominator,
        detail=detail,
    )


class _Tally:
    """Per-candidate backing under one rule, plus the wording shared by every rule's detail."""

    def __init__(self, spec: DecisionRuleSpec, cast: list[Ballot], cands: list[OptionId], denominator: int) -> None:
        self.cast, self.cands, self.denominator = cast, cands, denominator
        self.of_base = "cast ballots" if spec.base == "cast" else "seated members"
        self.verb = "has"
        if isinstance(spec, ApprovalRule):
            self.verb = "is approved by"
            self.backing = {c: sum(c in b.approve for b in cast) for c in cands}
        elif isinstance(spec, SchulzeRule):
            firsts = [next((o for o in b.ranking if o in cands), None) for b in cast]
            self.backing = {c: firsts.count(c) for c in cands}
        else:
            self.backing = {c: sum(b.choice == c for b in cast) for c in cands}
        self.top = max(self.backing.values(), default=0)
        self.leaders = [c for c, n in self.backing.items() if n == self.top] if self.top else []
        self.leading = self.leaders[0] if len(self.leaders) == 1 else None

    def share(self, count: int) -> str:
        return f"{count}/{self.denominator} = {count / self.denominator:.0%} of {self.of_base}"

    def plurality(self, passes: Callable[[int], bool], need: str) -> tuple[OptionId | None, str]:
        """The sole leader wins iff its backing passes; a tie at the top never does."""
        if self.leading is not None:
            standing = f"{self.leading} {self.verb} {self.share(self.top)}"
        elif self.leaders:
            standing = f"{_names(self.leaders)} tie: each {self.verb} {self.share(self.top)}"
        else:
            standing = "No candidate has any support"
        winner = self.leading if self.leading is not None and passes(self.top) else None
        return winner, f"{standing}; {need}."

    def schulze(self) -> tuple[OptionId | None, str]:
        if not self.leaders:  # nobody ranked anybody: no preference to aggregate
            return None, "No unique Schulze winner: no candidate was ranked."
        top_tier = schulze_ranking(self.cast, self.cands)[0]
        if len(top_tier) > 1:
            return None, f"No unique Schulze winner: {_names(top_tier)} are unbeaten."
        winner = top_tier[0]
        firsts = self.share(self.backing[winner])
        return winner, f"{winner} is the unique Schulze winner, ranked first by {firsts}."


def _unique(items: Iterable[OptionId]) -> list[OptionId]:
    return list(dict.fromkeys(items))


def _names(options: Sequence[OptionId]) -> str:
    return ", ".join(options[:-1]) + " and " + options[-1] if len(options) > 1 else "".join(options)


def _pct(share: Fraction) -> str:
    return f"{float(share) * 100:.4g}%"
