"""A run's plural welfare: its decision scored against single-utility baselines, from the transcript.

Ground truth comes from the scenario recorded in `run_started` and the seats in
`seated`: each seated member's value weights (after seating noise), the options'
attributes and the facts' effects define its utilities (`welfare.utilities`),
range-normalised per member (`welfare.normalize`). Against those, every way of
choosing is scored the same way (`welfare.welfare`):

- `assembly`: the run's decision (option and figures null when nothing was decided);
- `utilitarian`, `borda`, `maximin`: the single-objective aggregations of the same
  seated population under full information (`welfare.baselines`);
- `plurality_round1`: the most common position stated in round 1, i.e. what a
  reward model fit to pre-deliberation feedback would pick.

Ties are broken by the scenario's option order, earliest first, everywhere.

What members *said* is protocol-specific, so a protocol reads it from its own
actions (`Protocol.stated_preferences`); a protocol that returns None (one without
options, like the consensus game) has no welfare section. The core never names a
protocol. Every function here is pure, so `replay --check` certifies these figures
like every other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from assembly.core.events import Disclosure, RunStarted, Seated
from assembly.core.social_choice import plurality_winner
from assembly.core.welfare import (
    baselines,
    normalize,
    rank_options,
    spearman_rows,
    utilities,
    welfare,
)

__all__ = [
    "OUTCOMES",
    "RunWelfare",
    "StatedPreferences",
    "fidelity_by_round",
    "has_preferences",
    "informed_facts",
    "run_welfare",
]

# The ways of choosing scored in every welfare section, in this order.
OUTCOMES = ("assembly", "utilitarian", "borda", "maximin", "plurality_round1")
# The figures each outcome carries (null when its option is null).
FIGURES = (
    "utilitarian",
    "nash",
    "egalitarian",
    "worst_role",
    "utility_by_role",
    "regret_by_role",
    "condorcet_winner",
    "in_veto_core",
)
_DECIMALS = 6


@dataclass(frozen=True)
class StatedPreferences:
    """What a protocol's members said about the scenario's options, read from its transcript.

    `decision`: the option the run decided, or None. `positions[r][member]`: the option
    a member favoured in round r. `scores[r][member][option]`: the support it stated
    for each option in round r (members that state none are simply absent).
    """

    decision: str | None
    positions: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    scores: Mapping[int, Mapping[str, Mapping[str, float]]] = field(default_factory=dict)


def _ground_truth(started: RunStarted) -> tuple[list[str], dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Option order, attributes by option, effects by fact, from the recorded scenario."""
    sc = started.scenario
    options = [str(o["id"]) for o in sc.get("options", ())]
    attributes = {str(o["id"]): dict(o.get("attributes") or {}) for o in sc.get("options", ())}
    effects = {str(f["id"]): dict(f.get("effects") or {}) for f in sc.get("facts", ())}
    return options, attributes, effects


def has_preferences(
    attributes: Mapping[str, Mapping[str, float]],
    values: Iterable[Mapping[str, float]],
    effects: Mapping[str, Mapping[str, float]],
) -> bool:
    """Whether anyone can prefer one option to another: a value dimension some member
    weighs and some option is rated on (both non-zero), or a fact with an effect.

    Without either, every member is indifferent between all options, so there is no
    welfare to score (and nothing for a minority-protecting rule to protect)."""
    rated = {d for a in attributes.values() for d, level in a.items() if level}
    weighed = {d for v in values for d, w in v.items() if w}
    return bool(rated & weighed) or any(v for shifts in effects.values() for v in shifts.values())


def informed_facts(events: Sequence[Any], seated: Seated) -> dict[str, list[str]]:
    """Each member's facts by the end of the run: its own, plus every fact disclosed by
    someone it could hear (a member of its audience, `seated.audiences`), in order.

    This mirrors `view.ViewBuilder`: a disclosure reaches every audience its speaker
    belongs to, and a member hears its own audience's record. Folded per audience, not
    per member, so an all-to-all room of thousands stays one pass."""
    index = {m.id: i for i, m in enumerate(seated.members)}
    groups = [set(group) for group in seated.audiences]
    heard: list[list[str]] = [[] for _ in groups]
    for e in events:
        if isinstance(e, Disclosure) and e.member in index:
            speaker = index[e.member]
            for a, group in enumerate(groups):
                if speaker in group and e.fact not in heard[a]:
                    heard[a].append(e.fact)
    known: dict[str, list[str]] = {}
    for i, m in enumerate(seated.members):
        own = list(m.facts)
        known[m.id] = own + [f for f in heard[seated.audience_of[i]] if f not in own]
    return known


def _r(x: float) -> float:
    return round(float(x), _DECIMALS)


def _role_means(per_member: Mapping[str, float], role_of: Mapping[str, str]) -> dict[str, float]:
    members_of: dict[str, list[float]] = {}
    for m, v in per_member.items():
        members_of.setdefault(role_of[m], []).append(v)
    return {role: _r(math.fsum(vs) / len(vs)) for role, vs in sorted(members_of.items())}


def _scored(
    option: str | None, full: Mapping[str, Mapping[str, float]], role_of: Mapping[str, str], options: list[str]
) -> dict[str, Any]:
    if option is None or option not in options:
        return {"option": None, **dict.fromkeys(FIGURES)}
    figs = welfare(option, full, role_of, options=options)
    figs["utility_by_role"] = _role_means({m: u[option] for m, u in full.items()}, role_of)
    return {"option": option, **{k: figs[k] for k in FIGURES}}


def fidelity_by_round(
    stated: StatedPreferences, assigned: Mapping[str, Mapping[str, float]], role_of: Mapping[str, str]
) -> dict[int, dict[str, list[float]]]:
    """Round -> role -> the Spearman correlations between each member's stated scores
    and its assigned (full-information) utilities; undefined correlations are left out.

    Each round's members are correlated together (`spearman_rows`), grouped by the
    options their two sides share: one group, unless some speech left options out."""
    out: dict[int, dict[str, list[float]]] = {}
    for r in sorted(stated.scores):
        said = stated.scores[r]
        groups: dict[tuple[str, ...], list[str]] = {}
        for member, scores in said.items():
            if member in assigned:
                mine = assigned[member]
                common = tuple(scores) if scores.keys() <= mine.keys() else tuple(o for o in scores if o in mine)
                groups.setdefault(common, []).append(member)
        rho: dict[str, float | None] = {}
        for common, members in groups.items():
            shape = (len(members), len(common))
            a = np.array([[said[m][o] for o in common] for m in members], dtype=float).reshape(shape)
            b = np.array([[assigned[m][o] for o in common] for m in members], dtype=float).reshape(shape)
            rho.update(zip(members, spearman_rows(a, b), strict=True))
        by_role: dict[str, list[float]] = {}
        for member in said:  # in the order members spoke
            value = rho.get(member)
            if value is not None:
                by_role.setdefault(role_of[member], []).append(value)
        out[r] = by_role
    return out


def _mean(xs: Sequence[float]) -> float | None:
    return _r(math.fsum(xs) / len(xs)) if xs else None


def _fidelity_table(by_round: Mapping[int, Mapping[str, list[float]]]) -> dict[str, dict[str, Any]]:
    """Per role: its mean fidelity in each round it stated scores, and its drift (last − first)."""
    roles = sorted({role for rows in by_round.values() for role in rows})
    table: dict[str, dict[str, Any]] = {}
    for role in roles:
        means = [
            (r, math.fsum(by_round[r][role]) / len(by_round[r][role]))
            for r in sorted(by_round)
            if by_round[r].get(role)
        ]
        rows = [{"round": r, "mean": _r(mean), "n": len(by_round[r][role])} for r, mean in means]
        drift = _r(means[-1][1] - means[0][1]) if len(means) > 1 else None
        table[role] = {"by_round": rows, "drift": drift}
    return table


@dataclass(frozen=True)
class RunWelfare:
    """The summary's `welfare` section, and the per-round mean fidelity for `per_round`."""

    section: dict[str, Any]
    fidelity_by_round: dict[int, float | None]


def run_welfare(events: Sequence[Any], stated: StatedPreferences) -> RunWelfare | None:
    """Every welfare figure of a run; None when the scenario gives nobody a preference."""
    started = next(e for e in events if isinstance(e, RunStarted))
    seated = next(e for e in events if isinstance(e, Seated))
    options, attributes, effects = _ground_truth(started)
    if not options or not seated.members:
        return None
    if not has_preferences(attributes, (m.values for m in seated.members), effects):
        return None
    role_of = {m.id: m.role for m in seated.members}
    raw = {m.id: utilities(m.values, attributes, effects) for m in seated.members}
    full = {m: normalize(u) for m, u in raw.items()}
    known = informed_facts(events, seated)
    informed = {
        m.id: normalize(utilities(m.values, attributes, effects, known_facts=known[m.id])) for m in seated.members
    }
    chosen: dict[str, str | None] = {"assembly": stated.decision, **baselines(full, role_of, options=options)}
    first = stated.positions.get(1, {})
    chosen["plurality_round1"] = plurality_winner([p for p in first.values() if p in options], options)
    fidelity = fidelity_by_round(stated, raw, role_of)
    # Ways of choosing often agree: each option chosen is scored once.
    scored = {o: _scored(o, full, role_of, options) for o in dict.fromkeys(chosen[name] for name in OUTCOMES)}
    section = {
        "options": options,
        "roles": {role: sum(1 for r in role_of.values() if r == role) for role in sorted(set(role_of.values()))},
        "outcomes": {name: dict(scored[chosen[name]]) for name in OUTCOMES},
        "information": _information(full, informed, known, effects, options),
        "fidelity": _fidelity_table(fidelity),
        "members": {
            m.id: {
                "role": m.role,
                "full": {o: _r(full[m.id][o]) for o in options},
                "informed": {o: _r(informed[m.id][o]) for o in options},
                "facts_known": len(known[m.id]),
            }
            for m in seated.members
        },
    }
    per_round = {r: _mean([x for xs in rows.values() for x in xs]) for r, rows in fidelity.items()}
    return RunWelfare(section, per_round)


def _information(
    full: Mapping[str, Mapping[str, float]],
    informed: Mapping[str, Mapping[str, float]],
    known: Mapping[str, list[str]],
    effects: Mapping[str, Mapping[str, float]],
    options: list[str],
) -> dict[str, Any]:
    """How much of the evidence members held by the end, and whether it sufficed:
    the share of facts with an effect that a member knew (mean over members), and the
    share of members whose best option on what they knew is their full-information best."""
    weighed = [f for f, shifts in effects.items() if any(shifts.values())]
    known_share = (
        _r(math.fsum(sum(f in known[m] for f in weighed) / len(weighed) for m in known) / len(known))
        if weighed
        else None
    )
    agree = sum(rank_options(full[m], options)[0] == rank_options(informed[m], options)[0] for m in full)
    return {"facts": len(weighed), "mean_known_share": known_share, "informed_best_share": _r(agree / len(full))}
