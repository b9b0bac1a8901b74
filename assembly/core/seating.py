"""Seating an assembly from a population by stratified sortition.

Real assemblies draw members by lot so that the room matches the population on a
few strata; here the strata are roles. Seat counts follow role shares by the
largest-remainder method, then respect each role's quota; member order is shuffled
(seeded) so that table groups mix roles, as facilitators arrange them.
"""

from __future__ import annotations

import math

from assembly.core.errors import ScenarioError
from assembly.core.events import SeatedMember
from assembly.core.seeding import rng
from assembly.core.spec import Holders, RoleSpec, ScenarioBase


def role_counts(roles: list[RoleSpec], size: int) -> list[int]:
    """Seats per role: proportional to shares (largest remainder), within quotas."""
    total_share = sum(r.share for r in roles)
    counts = [r.quota.min for r in roles]
    caps = [r.quota.max if r.quota.max is not None else size for r in roles]
    remaining = size - sum(counts)
    while remaining > 0:
        # Distribute what is left in proportion to shares, never past a cap.
        open_idx = [i for i in range(len(roles)) if counts[i] < caps[i]]
        if not open_idx:
            raise ScenarioError("role quotas cannot seat population.size members", path="population.roles")
        open_share = sum(roles[i].share for i in open_idx) or total_share
        ideal = {i: remaining * roles[i].share / open_share for i in open_idx}
        granted = {i: min(math.floor(ideal[i]), caps[i] - counts[i]) for i in open_idx}
        if sum(granted.values()) == 0:
            # Hand out single seats by largest remainder (ties: earlier role first).
            order = sorted(open_idx, key=lambda i: (-(ideal[i] - math.floor(ideal[i])), i))
            granted = {order[0]: 1}
        for i, g in granted.items():
            counts[i] += g
        remaining = size - sum(counts)
    return counts


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


def apportion(shares: list[float], n: int) -> list[int]:
    """Split n seats in proportion to shares by largest remainder (ties: earlier first)."""
    total = sum(shares)
    ideal = [n * s / total for s in shares]
    counts = [math.floor(x) for x in ideal]
    order = sorted(range(len(shares)), key=lambda i: (-(ideal[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


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
