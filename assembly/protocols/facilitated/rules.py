"""Decision rules and quorum: pure, composable checks on a set of ballots.

Three rules protect minorities against a bare majority (docs: README, "Plural
welfare"): `borda` (ranked ballots, positional scores), `veto_by_consumption` (Moulin
1981; Ianovski & Kondratev 2021: complete rankings, always an option of the
proportional veto core of the counted rankings) and `maximin_score` (support scores,
the candidate whose worst-off role gives it the most mean support). Each is a thin
reading of ballots around `assembly.core.social_choice`, where the algorithms live.

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
from assembly.core.social_choice import borda_scores, veto_by_consumption_finalists
from assembly.protocols.facilitated.actions import Ballot

__all__ = [
    "BALLOT_FIELD",
    "MINORITY_RULES",
    "ApprovalRule",
    "BordaRule",
    "DecisionRuleSpec",
    "MajorityRule",
    "MaximinScoreRule",
    "RuleResult",
    "SchulzeRule",
    "Share",
    "SupermajorityRule",
    "UnanimityRule",
    "VetoByConsumptionRule",
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


class BordaRule(_RuleSpec):
    """Ranked ballots; the candidate with the unique highest Borda score wins.

    A ballot gives m-1 points to its first candidate, m-2 to the next, and so on; the
    candidates a partial ranking leaves out share its bottom points equally
    (`social_choice.borda_scores`). `base` scales the reported support only."""

    kind: Literal["borda"] = "borda"


class VetoByConsumptionRule(_RuleSpec):
    """Complete rankings; Moulin's veto by consumption picks from the proportional veto core.

    Every counted ballot must rank every candidate: a ballot that leaves one out is
    cast but spoiled (it cannot say which candidate it vetoes first). The last
    candidate eaten wins; several eaten at the same last instant are a tie, which
    decides nothing. `base` scales the reported support only."""

    kind: Literal["veto_by_consumption"] = "veto_by_consumption"


class MaximinScoreRule(_RuleSpec):
    """Support scores; the candidate whose worst-off role gives it the most mean support wins.

    For each candidate, each role's mean of its members' stated scores (a missing
    score counts as 0, no support); the winner maximises the minimum over roles that
    cast a ballot, and a tie at the top decides nothing. Only cast ballots make a
    role's mean (an abstainer has stated nothing), so `base` must be `cast`."""

    kind: Literal["maximin_score"] = "maximin_score"
    base: Literal["cast"] = Field(  # type: ignore[assignment]
        default="cast",
        description="Role means are over the role's cast ballots; `seated` has no meaning here.",
    )


DecisionRuleSpec = Annotated[
    MajorityRule
    | SupermajorityRule
    | UnanimityRule
    | ApprovalRule
    | SchulzeRule
    | BordaRule
    | VetoByConsumptionRule
    | MaximinScoreRule,
    Field(discriminator="kind"),
]

# The one Ballot field each rule counts (see `_Tally`); the others are ignored. Sim
# members and LLM output models produce exactly this field for the rule in force.
BALLOT_FIELD: dict[str, str] = {
    "majority": "choice",
    "supermajority": "choice",
    "unanimity": "choice",
    "approval": "approve",
    "schulze": "ranking",
    "borda": "ranking",
    "veto_by_consumption": "ranking",
    "maximin_score": "scores",
}
# Rules whose purpose is to protect minorities: they are judged by the welfare figures,
# so a scenario must give its members preferences to be judged by (`config.check`).
MINORITY_RULES = frozenset({"borda", "veto_by_consumption", "maximin_score"})
# Rules that need a complete ranking of the candidates on every counted ballot.
COMPLETE_RANKING = frozenset({"veto_by_consumption"})


@dataclass(frozen=True, slots=True)
class RuleResult:
    """Outcome of one vote under one rule.

    `support` is per candidate, in [0, 1]: over `denominator`, first choices for the
    choice-based rules, approvals for approval, first places for Schulze, Borda points
    (as a share of the most the base could give) for Borda, ballots that do not rank
    the candidate last for veto by consumption; for maximin_score it is the worst
    role's mean stated support. It is what reports plot as "how close was it", so it is
    filled in even when nothing is decided. `leading` is None when the top is tied (or
    nobody has support); `leading_support` is still the top value. Under Schulze and
    veto by consumption the winner may differ from `leading`.
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
    spec: DecisionRuleSpec,
    ballots: Sequence[Ballot],
    candidates: Sequence[OptionId],
    seated: int,
    roles: Sequence[str] | None = None,
) -> RuleResult:
    """Apply `spec` to `ballots`. Ties and empty votes never decide anything.

    A non-abstaining ballot that names no valid candidate still counts as cast (it backs
    nobody), so malformed member output makes a decision harder, never easier.
    `roles[i]` is the role of whoever cast `ballots[i]`; only maximin_score reads it
    (and needs it).
    """
    if seated < 0 or len(ballots) > seated:
        raise ValueError(f"{len(ballots)} ballots but only {seated} seated members")
    if roles is not None and len(roles) != len(ballots):
        raise ValueError(f"{len(roles)} roles for {len(ballots)} ballots")
    if isinstance(spec, MaximinScoreRule) and roles is None:
        raise ValueError("maximin_score needs the role of every ballot")
    cands = _unique(candidates)
    cast = [b for b in ballots if not b.abstain]
    cast_roles = [r for b, r in zip(ballots, roles, strict=True) if not b.abstain] if roles is not None else []
    denominator = len(cast) if spec.base == "cast" else seated
    if isinstance(spec, BordaRule | VetoByConsumptionRule | MaximinScoreRule):
        return _decide_protective(spec, cast, cast_roles, cands, denominator)
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
            case BordaRule() | VetoByConsumptionRule() | MaximinScoreRule():  # counted above
                raise AssertionError(spec.kind)
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


# ----------------------------------------------------------------------------- rules that protect minorities


def _ranking(ballot: Ballot, cands: Sequence[OptionId]) -> list[OptionId]:
    """The ballot's ranking of the candidates: unknown ids and repeats dropped (member output is data)."""
    known = set(cands)
    return _unique(o for o in ballot.ranking if o in known)


def _decide_protective(
    spec: BordaRule | VetoByConsumptionRule | MaximinScoreRule,
    cast: list[Ballot],
    roles: list[str],
    cands: list[OptionId],
    denominator: int,
) -> RuleResult:
    """Borda, veto by consumption and maximin_score, which count exactly (`Fraction`s) and
    report support as floats like every other rule."""
    exact: dict[OptionId, Fraction] = {}
    winner: OptionId | None = None
    if denominator == 0 or not cands:
        detail = f"Not decided: no {'cast ballots' if spec.base == 'cast' else 'seated members'}."
    elif isinstance(spec, BordaRule):
        winner, detail, exact = _borda(cast, cands, denominator)
    elif isinstance(spec, VetoByConsumptionRule):
        winner, detail, exact = _veto(cast, cands, denominator)
    else:
        winner, detail, exact = _maximin_score(cast, roles, cands)
    support = {c: float(exact.get(c, 0)) for c in cands}
    top = max(support.values(), default=0.0)
    leaders = [c for c, v in support.items() if v == top] if top > 0 else []
    return RuleResult(
        decided=winner is not None,
        winner=winner,
        support=support,
        leading=leaders[0] if len(leaders) == 1 else None,
        leading_support=top,
        counted=len(cast),
        denominator=denominator,
        detail=detail,
    )


def _sole_best(values: dict[OptionId, Fraction]) -> tuple[list[OptionId], Fraction]:
    top = max(values.values())
    return [c for c, v in values.items() if v == top], top


def _borda(
    cast: list[Ballot], cands: list[OptionId], denominator: int
) -> tuple[OptionId | None, str, dict[OptionId, Fraction]]:
    scores = borda_scores([_ranking(b, cands) for b in cast], cands)
    most = (len(cands) - 1) * denominator  # every ballot of the base ranking a candidate first
    support = {c: (v / most if most else Fraction(int(bool(cast)))) for c, v in scores.items()}
    leaders, top = _sole_best(scores)
    if len(leaders) > 1:
        return None, f"No unique Borda winner: {_names(leaders)} tie on {_points(top)} points.", support
    return leaders[0], f"{leaders[0]} has the most Borda points ({_points(top)} of {most} possible).", support


def _veto(
    cast: list[Ballot], cands: list[OptionId], denominator: int
) -> tuple[OptionId | None, str, dict[OptionId, Fraction]]:
    profile = [r for r in (_ranking(b, cands) for b in cast) if len(r) == len(cands)]
    spoiled = len(cast) - len(profile)
    note = f" {spoiled} cast ballots did not rank every candidate and were not counted." if spoiled else ""
    if not profile:
        return None, "Not decided: no ballot ranked every candidate." + note, {}
    support = {c: Fraction(sum(r[-1] != c for r in profile), denominator) for c in cands}
    finalists = veto_by_consumption_finalists(profile, cands)
    if len(finalists) > 1:
        return (
            None,
            f"No unique veto-by-consumption winner: {_names(finalists)} are eaten last together." + note,
            support,
        )
    winner = finalists[0]
    return winner, f"{winner} survives veto by consumption over {len(profile)} complete rankings." + note, support


def _maximin_score(
    cast: list[Ballot], roles: list[str], cands: list[OptionId]
) -> tuple[OptionId | None, str, dict[OptionId, Fraction]]:
    by_role: dict[str, list[Ballot]] = {}
    for ballot, role in zip(cast, roles, strict=True):
        by_role.setdefault(role, []).append(ballot)
    # Exact means of the stated floats, so that equal supports are real ties.
    worst = {
        c: min(
            sum((Fraction(b.scores.get(c, 0.0)) for b in ballots), Fraction(0)) / len(ballots)
            for ballots in by_role.values()
        )
        for c in cands
    }
    leaders, top = _sole_best(worst)
    if len(leaders) > 1:
        return None, f"No unique maximin_score winner: {_names(leaders)} tie at {float(top):.3f}.", worst
    low = min(sorted(by_role), key=lambda r: sum(b.scores.get(leaders[0], 0.0) for b in by_role[r]) / len(by_role[r]))
    return (
        leaders[0],
        f"{leaders[0]} has the highest worst-role mean support ({float(top):.3f}, from {low}) "
        f"over {len(by_role)} roles.",
        worst,
    )


def _points(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):.4g}"


def _unique(items: Iterable[OptionId]) -> list[OptionId]:
    return list(dict.fromkeys(items))


def _names(options: Sequence[OptionId]) -> str:
    return ", ".join(options[:-1]) + " and " + options[-1] if len(options) > 1 else "".join(options)


def _pct(share: Fraction) -> str:
    return f"{float(share) * 100:.4g}%"
