"""Proportional seating: largest remainder within quotas, checked against independent oracles.

The oracles here share no code with `assembly.core.seating`: exact shares come from
scanning the breakpoints of the piecewise-linear seat function (not from holding
parts at their bounds, as the implementation does), and on small cases a brute
force over every feasible allocation picks the one closest to those shares.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from assembly.core.seating import apportion, role_counts, seat
from tests.helpers import scenario, tiny

MAX_N = 500


def clamp(x: Fraction, lo: int, hi: int | None) -> Fraction:
    return max(Fraction(lo), x if hi is None else min(x, Fraction(hi)))


def exact_shares(shares: list[float], n: int, lo: list[int], hi: list[int | None]) -> list[Fraction]:
    """clamp(t·s_i, lo_i, hi_i) at the level t where they add up to n, found by
    walking the breakpoints of g(t) = Σ clamp(t·s_i, lo_i, hi_i), which is linear
    between them."""
    s = [Fraction(str(x)) for x in shares]

    def g(t: Fraction) -> Fraction:
        return sum((clamp(t * si, a, b) for si, a, b in zip(s, lo, hi, strict=True)), Fraction(0))

    points = sorted(
        {Fraction(0)}
        | {Fraction(a) / si for a, si in zip(lo, s, strict=True)}
        | {Fraction(b) / si for b, si in zip(hi, s, strict=True) if b is not None}
    )
    points.append(points[-1] + n / min(s) + 1)  # past every bound: g only grows from here
    for a, b in itertools.pairwise(points):
        if g(a) <= n <= g(b):
            t = a if g(b) == g(a) else a + (n - g(a)) * (b - a) / (g(b) - g(a))
            return [clamp(t * si, lo_i, hi_i) for si, lo_i, hi_i in zip(s, lo, hi, strict=True)]
    raise AssertionError("infeasible quotas reached the oracle")


def brute_force(shares: list[float], n: int, lo: list[int], hi: list[int | None]) -> list[int]:
    """Among all allocations within the quotas, the one with the least squared distance
    to the exact shares (largest remainder minimises it); ties go to earlier parts."""
    e = exact_shares(shares, n, lo, hi)
    ranges = [range(a, (n if b is None else min(b, n)) + 1) for a, b in zip(lo, hi, strict=True)]
    feasible = (c for c in itertools.product(*ranges) if sum(c) == n)
    best = min(feasible, key=lambda c: (sum((ci - ei) ** 2 for ci, ei in zip(c, e, strict=True)), [-x for x in c]))
    return list(best)


quota_kind = st.one_of(
    st.just(("none", 0.0, None)),
    st.tuples(st.just("abs"), st.integers(0, 40), st.none() | st.integers(0, 300)),
    st.tuples(st.just("rel"), st.floats(0.0, 1.0), st.none() | st.floats(0.0, 1.0)),
)


def quotas_at(kinds: list[tuple[str, float, float | None]], n: int) -> tuple[list[int], list[int | None]]:
    """Integer quotas for n seats: absolute (min, min + extra) or a fraction of n."""
    lo: list[int] = []
    hi: list[int | None] = []
    for kind, a, b in kinds:
        if kind == "abs":
            lo.append(int(a))
            hi.append(None if b is None else int(a) + int(b))
        elif kind == "rel":
            low = math.floor(a * n)
            lo.append(low)
            hi.append(None if b is None else max(low, math.ceil(b * n)))
        else:
            lo.append(0)
            hi.append(None)
    return lo, hi


@settings(max_examples=40, deadline=None)
@given(
    shares=st.lists(st.floats(0.001, 1.0), min_size=1, max_size=6),
    kinds=st.data(),
)
def test_largest_remainder_within_quotas_for_every_n(shares: list[float], kinds: st.DataObject) -> None:
    drawn = kinds.draw(st.lists(quota_kind, min_size=len(shares), max_size=len(shares)))
    checked = 0
    for n in range(1, MAX_N + 1):
        lo, hi = quotas_at(drawn, n)
        if sum(lo) > n or (all(h is not None for h in hi) and sum(h for h in hi if h is not None) < n):
            continue  # the scenario schema refuses these quotas
        counts = apportion(shares, n, lo, hi)
        checked += 1
        assert sum(counts) == n
        e = exact_shares(shares, n, lo, hi)
        total = sum(Fraction(str(s)) for s in shares)
        plain = [n * Fraction(str(s)) / total for s in shares]
        for c, ei, a, b in zip(counts, e, lo, hi, strict=True):
            assert a <= c and (b is None or c <= b), (n, counts, lo, hi)
            # Every part gets the floor or ceiling of its exact share; a part whose
            # quota binds has an integer exact share (its bound).
            assert math.floor(ei) <= c <= math.ceil(ei), (n, counts, e)
        if all(a <= pi and (b is None or pi <= b) for pi, a, b in zip(plain, lo, hi, strict=True)):
            # When no quota binds, exact shares are the plain proportional ones.
            assert all(math.floor(pi) <= c <= math.ceil(pi) for c, pi in zip(counts, plain, strict=True))
        if n <= 12 and len(shares) <= 4:
            assert counts == brute_force(shares, n, lo, hi), (n, shares, lo, hi)
    if all(k == "none" for k, _, _ in drawn):
        assert checked == MAX_N  # no quotas: every N from 1 to 500 was checked


def test_demo_seats_commuters_by_their_share() -> None:
    """The issue's example: 30% of 24 seats is 7.2 commuters; the quota minimum (4)
    does not bind, so 7 or 8 commuters are seated, never 11."""
    sc = scenario("citizens_assembly")
    roles = sc.population.roles
    counts = role_counts(roles, sc.population.size)
    total = sum(r.share for r in roles)
    for role, c in zip(roles, counts, strict=True):
        share = sc.population.size * role.share / total
        assert math.floor(share) <= c <= math.ceil(share), (role.name, c, share)


def test_group_size_sweep_small_cell_follows_shares() -> None:
    """N = 6 with the sweep's minimums of 1: no role gets more than the ceiling of its share."""
    sc = scenario(
        "citizens_assembly", members=6, **{"population.roles.0.quota.min": 1, "population.roles.1.quota.min": 1}
    )
    roles = sc.population.roles
    counts = role_counts(roles, 6)
    total = sum(r.share for r in roles)
    assert all(
        math.floor(6 * r.share / total) <= c <= math.ceil(6 * r.share / total)
        for r, c in zip(roles, counts, strict=True)
    )


def test_seated_roles_and_profiles_follow_the_apportionment() -> None:
    """`seat` seats exactly `role_counts` per role, and deals `members.assign`
    profiles by the same largest-remainder rule."""
    shares = [0.5, 0.3, 0.2]
    sc = tiny(
        11,
        **{
            "population.roles": [
                {"name": "a", "share": 0.45, "values": {"x": 1.0}},
                {"name": "b", "share": 0.35, "values": {"x": -1.0}, "quota": {"min": 5}},
                {"name": "c", "share": 0.2, "values": {"x": 0.0}},
            ],
            "members.policy": "llm",
            "members.assign": [{"share": s, "profile": f"p{i}"} for i, s in enumerate(shares)],
        },
    )
    seated = seat(sc)
    roles = Counter(m.role for m in seated)
    assert [roles[r.name] for r in sc.population.roles] == role_counts(sc.population.roles, 11)
    assert roles["b"] == 5  # the minimum binds (0.35 of 11 is 3.85) ...
    assert roles["a"] in (3, 4) and roles["c"] in (1, 2)  # ... and the rest share 6 seats as 0.45 : 0.2
    profiles = Counter(m.profile for m in seated)
    for i, s in enumerate(shares):
        assert math.floor(11 * s) <= profiles[f"p{i}"] <= math.ceil(11 * s)
    assert [profiles[f"p{i}"] for i in range(3)] == apportion(shares, 11)
