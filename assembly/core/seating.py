"""Seating an assembly from a population by stratified sortition.

Real assemblies draw members by lot so that the room matches the population on a
few strata; here the strata are roles. Seat counts follow role shares by the
largest-remainder method within each role's quota (`apportion`): every role whose
quota does not bind gets the floor or the ceiling of its exact share. Member order
is shuffled (seeded) so that table groups mix roles, as facilitators arrange them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from assembly.core.errors import ScenarioError
from assembly.core.events import SeatedMember
from assembly.core.seeding import rng
from assembly.core.spec import Holders, RoleSpec, ScenarioBase


def role_counts(roles: list[RoleSpec], size: int) -> list[int]:
    """Seats per role: proportional to shares by largest remainder, within quotas (see `apportion`)."""
    try:
        return apportion(
            [r.share for r in roles], size, lower=[r.quota.min for r in roles], upper=[r.quota.max for r in roles]
        )
    except ValueError as exc:
        raise ScenarioError(str(exc), path="population.roles") from exc


def seat(scenario: ScenarioBase, prefix: str = "member") -> list[SeatedMember]:
    roles = scenario.population.roles
    counts = role_counts(roles, scenario.population.size)
    r = rng(scenario.seed, "seat")
    slots = [role for role, c in zip(roles, counts, strict=True) for _ in range(c)]
    order = r.permutation(len(slots))
    slots = [slots[i] for i in order]
    default_policy = scenario.members.policy
    members: list[SeatedMember] = []
    for idx, role in enumerate(slots):
        noise = rng(scenario.seed, "values", idx)
        values = {
            dim: round(float(w + noise.normal(0.0, role.value_noise)), 6) for dim, w in sorted(role.values.items())
        }
        policy = role.policy or default_policy
        members.append(
            SeatedMember(
                id=f"{prefix}_{idx}",
                role=role.name,
                policy=policy,
                profile=(role.profile or scenario.members.profile) if policy == "llm" else None,
                values=values,
            )
        )
    members = assign_profiles(scenario, members, [role.profile is None for role in slots])
    return deal_facts(scenario, members)


def apportion(
    shares: Sequence[float],
    n: int,
    lower: Sequence[int] | None = None,
    upper: Sequence[int | None] | None = None,
) -> list[int]:
    """Split n seats in proportion to shares: largest remainder (Hamilton) within quotas.

    1. Exact shares: each part's share of n, `n * s_i / sum(s)`; where that is below a
       part's `lower` or above its `upper` bound, the part is held at the bound and
       the seats left are shared out in proportion among the others, until no bound
       is crossed (`_bounded_shares`). Without quotas this is just `n * s_i / sum(s)`.
    2. Every part gets the floor of its exact share; the seats left over go one each
       to the largest fractional remainders. Equal remainders go to the earlier part
       in the list (the order of roles in the scenario), so seating never depends
       on anything but the scenario.

    So a part held at a bound gets exactly that bound, and every other part gets
    the floor or the ceiling of its exact share. Shares are read as the decimals
    they print as (0.15 is 15/100, not the nearest binary float) and everything is
    computed in exact fractions, so equal written shares tie exactly."""
    k = len(shares)
    lo: list[int] = list(lower) if lower is not None else [0] * k
    hi: list[int | None] = list(upper) if upper is not None else [None] * k
    if sum(lo) > n or any(h is not None and h < m for h, m in zip(hi, lo, strict=True)):
        raise ValueError(f"role quotas cannot seat {n} members (minimums add up to {sum(lo)})")
    if all(h is not None for h in hi) and sum(h for h in hi if h is not None) < n:
        raise ValueError(f"role quotas cannot seat {n} members (maximums add up to less)")
    exact = _bounded_shares([Fraction(str(s)) for s in shares], n, lo, hi)
    counts = [math.floor(e) for e in exact]
    order = sorted(range(k), key=lambda i: (counts[i] - exact[i], i))  # largest remainder first
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def _bounded_shares(shares: list[Fraction], n: int, lo: list[int], hi: list[int | None]) -> list[Fraction]:
    """Exact shares of n seats, proportional to `shares` among the parts no bound holds.

    The answer is `clamp(t * s_i, lo_i, hi_i)` for the one level t at which they add
    up to n. Found by holding parts at their bounds: at the proportional level of the
    parts still free, if the parts below their minimum lack more seats than the parts
    above their maximum have in excess, the true level is lower, so those below
    their minimum are below it at the true level too and are held there (and
    symmetrically); if both are equal, the level is right and both are held. Each
    pass holds at least one more part, so this ends within len(shares) passes."""
    held: dict[int, Fraction] = {}
    while True:
        free = [i for i in range(len(shares)) if i not in held]
        if not free:
            return [held[i] for i in range(len(shares))]
        level = (n - sum(held.values(), Fraction(0))) / sum((shares[i] for i in free), Fraction(0))
        exact = {i: level * shares[i] for i in free}
        below = {i: lo[i] - exact[i] for i in free if exact[i] < lo[i]}
        above = {i: exact[i] - hi_i for i in free if (hi_i := hi[i]) is not None and exact[i] > hi_i}
        if not below and not above:
            return [held[i] if i in held else exact[i] for i in range(len(shares))]
        lack, excess = sum(below.values()), sum(above.values())
        if lack >= excess:
            held.update({i: Fraction(lo[i]) for i in below})
        if excess >= lack:
            held.update({i: Fraction(hi[i] or 0) for i in above})


def assign_profiles(scenario: ScenarioBase, members: list[SeatedMember], open_seat: list[bool]) -> list[SeatedMember]:
    """Deal `members.assign` profiles to the LLM members whose role names none.

    Its own seeded stream, so adding an assignment changes no other draw of the run."""
    assign = scenario.members.assign
    idx = [i for i, m in enumerate(members) if m.policy == "llm" and open_seat[i]]
    if not assign or not idx:
        return members
    counts = apportion([a.share for a in assign], len(idx))
    profiles = [a.profile for a, c in zip(assign, counts, strict=True) for _ in range(c)]
    order = rng(scenario.seed, "assign").permutation(len(idx))
    out = list(members)
    for k, i in enumerate(order):
        out[idx[int(i)]] = out[idx[int(i)]].model_copy(update={"profile": profiles[k]})
    return out


def deal_facts(scenario: ScenarioBase, members: list[SeatedMember]) -> list[SeatedMember]:
    held: list[list[str]] = [[] for _ in members]
    for fact in scenario.facts:
        if fact.holders == "all":
            chosen = list(range(len(members)))
        else:
            assert isinstance(fact.holders, Holders)
            eligible = [i for i, m in enumerate(members) if not fact.holders.roles or m.role in fact.holders.roles]
            count = fact.holders.count
            if count is None or count >= len(eligible):
                chosen = eligible
            else:
                pick = rng(scenario.seed, "deal", fact.id).choice(len(eligible), size=count, replace=False)
                chosen = sorted(eligible[i] for i in pick)
        for i in chosen:
            held[i].append(fact.id)
    return [m.model_copy(update={"facts": h}) for m, h in zip(members, held, strict=True)]
