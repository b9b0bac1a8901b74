"""Pure social-choice functions over rankings, used to judge an assembly's outcome.

The project asks whether an assembly of members with plural values serves a
population better than single-utility aggregation. Judging that needs the
classical aggregation rules as yardsticks: Borda (what a Bradley–Terry reward
model fit to pooled pairwise comparisons picks, Siththaranjan et al.,
arXiv:2312.08358), plurality, the Condorcet winner, a maximin rule over groups
(MaxMin-RLHF, arXiv:2402.08925), and Moulin's (1981) proportional veto core with
Ianovski & Kondratev's (2021) "veto by consumption" rule that selects from it.

Conventions, shared by every function here:

* A *ranking* is a sequence of candidate ids, most preferred first, without
  repetitions. Every id must be one of ``candidates``; an unknown id or a
  repeated one raises ``ValueError`` (a typo must not silently vanish).
* ``candidates`` is the scenario's option order. Every tie is broken by it: the
  earliest candidate wins.
* Partial rankings (that omit candidates) are accepted by :func:`borda_scores`,
  :func:`borda_winner` and :func:`condorcet_winner`: a voter prefers every
  candidate she ranked to every one she did not, and is indifferent among the
  unranked ones. The veto rules (:func:`veto_by_consumption`,
  :func:`in_proportional_veto_core`, :func:`proportional_veto_core`) need
  complete rankings, because a veto is cast against the *least* preferred
  candidate, which a truncated ranking leaves undefined.
* Arithmetic on votes is exact (``int`` or ``fractions.Fraction``), so ties are
  real ties and never artefacts of floating point.

The module is pure (stdlib only) and imports nothing else from ``assembly``.

References:
    H. Moulin (1981), "The proportional veto principle", Review of Economic
    Studies 48(3): 407-416.
    E. Ianovski and A. Y. Kondratev (2021), "Computing the proportional veto
    core", AAAI 2021 (arXiv:2003.09153).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Hashable, Iterable, Mapping, Sequence
from fractions import Fraction
from itertools import combinations
from math import isnan
from typing import TypeVar

__all__ = [
    "MAX_BRUTE_FORCE_VOTERS",
    "borda_scores",
    "borda_winner",
    "condorcet_winner",
    "in_proportional_veto_core",
    "maximin_winner",
    "plurality_winner",
    "proportional_veto_core",
    "veto_by_consumption",
    "veto_by_consumption_finalists",
]

MAX_BRUTE_FORCE_VOTERS = 16
"""Largest electorate :func:`in_proportional_veto_core` enumerates coalitions for (2**16 of them)."""

G = TypeVar("G", bound=Hashable)


# ---------------------------------------------------------------- validation


def _check_candidates(candidates: Sequence[str]) -> list[str]:
    cands = list(candidates)
    if len(set(cands)) != len(cands):
        raise ValueError(f"duplicate candidates in {cands!r}")
    return cands


def _check_rankings(rankings: Iterable[Sequence[str]], candidates: list[str], *, complete: bool) -> list[list[str]]:
    known = set(candidates)
    out: list[list[str]] = []
    for ranking in rankings:
        r = list(ranking)
        if len(set(r)) != len(r):
            raise ValueError(f"ranking {r!r} repeats a candidate")
        unknown = [c for c in r if c not in known]
        if unknown:
            raise ValueError(f"ranking {r!r} names unknown candidates {unknown!r}")
        if complete and len(r) != len(candidates):
            raise ValueError(f"ranking {r!r} is not complete over {candidates!r}")
        out.append(r)
    return out


def _first_best(values: Mapping[str, Fraction | int | float], candidates: list[str]) -> str:
    """The earliest candidate (in ``candidates`` order) with the largest value."""
    best = candidates[0]
    for c in candidates[1:]:
        if values[c] > values[best]:
            best = c
    return best


# ---------------------------------------------------------------- scoring rules


def borda_scores(rankings: Iterable[Sequence[str]], candidates: Sequence[str]) -> dict[str, Fraction]:
    """Exact Borda scores, in ``candidates`` order.

    With ``m`` candidates, the candidate a voter ranks in position ``k``
    (0-based) gets ``m - 1 - k`` points, i.e. one point per candidate ranked
    below it. A partial ranking of length ``r`` leaves ``u = m - r`` candidates
    unranked; they share the bottom ``u`` positions' points equally, each
    getting ``(u - 1) / 2`` (the "averaged" convention). That is an affine
    transform of the symmetric Borda score for truncated ballots (Terzopoulou &
    Endriss 2021), so winners agree with it. Scores are ``Fraction``s; for
    complete rankings they are whole numbers (``denominator == 1``).

    Why Borda: the Bradley–Terry reward model fit to pooled pairwise
    comparisons ranks options by Borda count (Siththaranjan et al.,
    arXiv:2312.08358), so Borda stands for "one reward model on pooled
    preferences".
    """
    cands = _check_candidates(candidates)
    m = len(cands)
    scores = {c: Fraction(0) for c in cands}
    for ranking in _check_rankings(rankings, cands, complete=False):
        for k, c in enumerate(ranking):
            scores[c] += m - 1 - k
        unranked = m - len(ranking)
        if unranked:
            share = Fraction(unranked - 1, 2)
            ranked = set(ranking)
            for c in cands:
                if c not in ranked:
                    scores[c] += share
    return scores


def borda_winner(rankings: Iterable[Sequence[str]], candidates: Sequence[str]) -> str | None:
    """The Borda winner (see :func:`borda_scores`), ties broken by candidate order.

    ``None`` when there are no candidates or no rankings (no information to aggregate).
    """
    cands = _check_candidates(candidates)
    profile = _check_rankings(rankings, cands, complete=False)
    if not cands or not profile:
        return None
    return _first_best(borda_scores(profile, cands), cands)


def plurality_winner(first_choices: Iterable[str], candidates: Sequence[str]) -> str | None:
    """The candidate named first most often, ties broken by candidate order.

    ``first_choices`` holds one candidate id per voter. ``None`` when there are
    no candidates or no votes.
    """
    cands = _check_candidates(candidates)
    known = set(cands)
    counts: Counter[str] = Counter()
    for choice in first_choices:
        if choice not in known:
            raise ValueError(f"first choice {choice!r} is not a candidate")
        counts[choice] += 1
    if not cands or not counts:
        return None
    return _first_best({c: counts[c] for c in cands}, cands)


def condorcet_winner(rankings: Iterable[Sequence[str]], candidates: Sequence[str]) -> str | None:
    """The candidate that beats every other in a strict pairwise majority, or ``None``.

    ``a`` beats ``b`` when more voters rank ``a`` above ``b`` than ``b`` above
    ``a`` (positive margin; with complete strict rankings this is "more than
    half the voters"). In a partial ranking a ranked candidate is above every
    unranked one and unranked candidates are tied. The winner is unique when it
    exists. A lone candidate is trivially the winner (as in ``pref_voting``).
    """
    cands = _check_candidates(candidates)
    profile = _check_rankings(rankings, cands, complete=False)
    m = len(cands)
    index = {c: i for i, c in enumerate(cands)}
    # above[a][b]: voters who rank a above b; unranked candidates share the place below all ranked ones
    above = [[0] * m for _ in range(m)]
    for ranking in profile:
        ranked = [index[c] for c in ranking]
        seen = set(ranked)
        unranked = [i for i in range(m) if i not in seen]
        for place, a in enumerate(ranked):
            row = above[a]
            for b in ranked[place + 1 :]:
                row[b] += 1
            for b in unranked:
                row[b] += 1
    for a in range(m):
        if all(above[a][b] > above[b][a] for b in range(m) if b != a):
            return cands[a]
    return None


def maximin_winner(scores_by_group: Mapping[G, Mapping[str, float]], candidates: Sequence[str]) -> str | None:
    """The option whose worst group fares best: ``argmax_o min_g scores_by_group[g][o]``.

    ``scores_by_group[g][o]`` is group ``g``'s (mean) score for option ``o``;
    this is the MaxMin-RLHF aggregation (Chakraborty et al., arXiv:2402.08925)
    over groups. Ties are broken by candidate order (exact float equality).
    Every group must score every candidate (``ValueError`` otherwise; a missing
    score is ambiguous, not zero). ``None`` when there are no candidates or no
    groups.
    """
    cands = _check_candidates(candidates)
    if not cands or not scores_by_group:
        return None
    worst: dict[str, float] = {}
    for c in cands:
        vals = []
        for group, scores in scores_by_group.items():
            if c not in scores:
                raise ValueError(f"group {group!r} has no score for candidate {c!r}")
            v = float(scores[c])
            if isnan(v):
                raise ValueError(f"group {group!r} scores candidate {c!r} as NaN")
            vals.append(v)
        worst[c] = min(vals)
    return _first_best(worst, cands)


# ---------------------------------------------------------------- the proportional veto core


def veto_by_consumption_finalists(rankings: Iterable[Sequence[str]], candidates: Sequence[str]) -> list[str]:
    """The candidates eaten last by Moulin's veto by consumption, in candidate order.

    The rule as formalised by Ianovski & Kondratev (2021, Sec. 5): ``n`` voters,
    ``m`` candidates, each candidate a cake of size ``n / m``. All voters eat
    simultaneously at unit speed, each from her least preferred candidate not
    yet eaten up; a voter whose candidate runs out moves to her next least
    preferred one. Everything is eaten at time 1. The candidates that are eaten
    up at the very last instant are the finalists; usually there is one.

    The simulation is event driven with exact ``Fraction`` arithmetic: between
    two exhaustion events every rate is constant, so the next event time is
    ``min_c remaining[c] / eaters[c]``. At most ``m`` events, each O(n·m).

    Every finalist lies in the proportional veto core: while a candidate ``b``
    is being eaten the finalist ``x`` is still on the table, so everyone eating
    ``b`` prefers ``x`` to ``b``; the eating is then a flow that covers all
    other candidates through voters who prefer ``x``, which is exactly the
    matching certificate checked by :func:`proportional_veto_core`.

    With no voters every cake has size 0 and all candidates tie.
    """
    cands = _check_candidates(candidates)
    if not cands:
        raise ValueError("veto by consumption needs at least one candidate")
    profile = _check_rankings(rankings, cands, complete=True)
    n, m = len(profile), len(cands)
    if n == 0:
        return cands
    remaining = {c: Fraction(n, m) for c in cands}
    alive = list(cands)
    last: list[str] = alive
    while alive:
        alive_set = set(alive)
        eaters: Counter[str] = Counter()
        for ranking in profile:
            target = next(c for c in reversed(ranking) if c in alive_set)
            eaters[target] += 1
        step = min(remaining[c] / k for c, k in eaters.items())
        for c, k in eaters.items():
            remaining[c] -= k * step
        last = [c for c in alive if remaining[c] == 0]
        alive = [c for c in alive if remaining[c] != 0]
    return last


def veto_by_consumption(rankings: Iterable[Sequence[str]], candidates: Sequence[str]) -> str:
    """The winner of veto by consumption (Moulin 1981; Ianovski & Kondratev 2021).

    The last candidate eaten (see :func:`veto_by_consumption_finalists`); when
    several are eaten up at the same last instant, the earliest in
    ``candidates`` order wins. The rule is anonymous and always selects from
    the proportional veto core, whichever finalist is chosen. Needs complete
    rankings; ``ValueError`` on an empty candidate list.
    """
    return veto_by_consumption_finalists(rankings, candidates)[0]


def in_proportional_veto_core(option: str, rankings: Iterable[Sequence[str]], candidates: Sequence[str]) -> bool:
    """Whether ``option`` is in the proportional veto core, by brute force over coalitions.

    Definition (Moulin 1981; Ianovski & Kondratev 2021, Def. 1): with ``n``
    voters and ``m`` candidates, a coalition ``T`` of voters has veto power
    ``v(T) = ceil(m·|T|/n) - 1``. Candidate ``x`` is *blocked* if some
    non-empty coalition ``T`` and some set ``B`` of candidates with ``x ∉ B``
    and ``|B| >= m - v(T)`` are such that every voter in ``T`` ranks every
    candidate of ``B`` above ``x`` (``T`` can veto everything outside ``B``,
    ``x`` included, and all its members gain). Since ``m - |B|`` is an
    integer, ``|B| >= m - v(T)`` is equivalent to the exact-fraction test
    ``|T|/n + |B|/m > 1``, which is what is evaluated here. The core is the
    set of unblocked candidates; it is never empty.

    The test is monotone in ``B``, so for each coalition only the largest
    admissible ``B`` (the candidates all of ``T`` rank above ``x``) needs
    checking; coalitions are enumerated exhaustively, which is exponential in
    ``n``: more than :data:`MAX_BRUTE_FORCE_VOTERS` voters raise
    ``ValueError`` (use :func:`proportional_veto_core` instead). This function
    is the definition-level oracle for the efficient one.
    """
    cands = _check_candidates(candidates)
    if option not in cands:
        raise ValueError(f"{option!r} is not a candidate")
    profile = _check_rankings(rankings, cands, complete=True)
    n, m = len(profile), len(cands)
    if n > MAX_BRUTE_FORCE_VOTERS:
        raise ValueError(
            f"brute force over coalitions is limited to {MAX_BRUTE_FORCE_VOTERS} voters, got {n}; "
            "use proportional_veto_core"
        )
    above = [set(r[: r.index(option)]) for r in profile]
    for size in range(1, n + 1):
        for coalition in combinations(range(n), size):
            common = set.intersection(*(above[i] for i in coalition))
            if Fraction(size, n) + Fraction(len(common), m) > 1:
                return False
    return True


def _max_flow(capacity: list[dict[int, int]], source: int, sink: int) -> int:
    """Edmonds–Karp max flow on a residual graph given as adjacency dicts (mutated in place)."""
    total = 0
    n_nodes = len(capacity)
    while True:
        parent = [-1] * n_nodes
        parent[source] = source
        queue = deque([source])
        while queue and parent[sink] == -1:
            u = queue.popleft()
            for v, cap in capacity[u].items():
                if cap > 0 and parent[v] == -1:
                    parent[v] = u
                    queue.append(v)
        if parent[sink] == -1:
            return total
        bottleneck = None
        v = sink
        while v != source:
            u = parent[v]
            cap = capacity[u][v]
            bottleneck = cap if bottleneck is None else min(bottleneck, cap)
            v = u
        assert bottleneck is not None
        v = sink
        while v != source:
            u = parent[v]
            capacity[u][v] -= bottleneck
            capacity[v][u] = capacity[v].get(u, 0) + bottleneck
            v = u
        total += bottleneck


def proportional_veto_core(rankings: Iterable[Sequence[str]], candidates: Sequence[str]) -> set[str]:
    """The proportional veto core (definition in :func:`in_proportional_veto_core`), in polynomial time.

    Uses the flow characterisation of Ianovski & Kondratev (2021): ``x`` is in
    the core iff in the bipartite graph linking voter ``i`` to candidate
    ``b != x`` whenever ``i`` ranks ``x`` above ``b``, each voter can supply
    ``m`` units and each such candidate can absorb ``n`` units, and all other
    candidates can be saturated (max flow ``= n·(m-1)``). By Hall's theorem
    (Gale's supply–demand version) the flow falls short exactly when some set
    ``S`` of other candidates has ``m·|N(S)| < n·|S|``, with ``N(S)`` the
    voters who rank ``x`` above some member of ``S``; the voters outside
    ``N(S)``, ``T``, rank all of ``S`` above ``x`` and ``|T|/n + |S|/m > 1``,
    i.e. ``T`` blocks ``x`` with ``B = S``. Conversely a blocking ``(T, B)``
    violates Hall's condition for ``S = B``.

    Voters with the same ranking have the same edges, so they are merged into
    one node supplying ``m`` units per voter; merging nodes with identical
    neighbourhoods does not change the maximum flow, and it bounds the network
    by the number of distinct rankings (at most ``m!``) rather than by ``n``,
    which keeps a 2,048-member assembly fast. Integer capacities, Edmonds–Karp:
    O(m · V · E²) with ``V, E`` the merged network's size. Needs complete
    rankings.
    """
    cands = _check_candidates(candidates)
    profile = _check_rankings(rankings, cands, complete=True)
    n, m = len(profile), len(cands)
    if n == 0 or m <= 1:
        return set(cands)
    core: set[str] = set()
    types = Counter(tuple(r) for r in profile)
    positions = [({c: k for k, c in enumerate(r)}, count) for r, count in types.items()]
    t = len(positions)
    for x in cands:
        others = [b for b in cands if b != x]
        source, sink = 0, t + len(others) + 1
        capacity: list[dict[int, int]] = [{} for _ in range(sink + 1)]
        for i, (pos, count) in enumerate(positions):
            capacity[source][1 + i] = m * count
            for j, b in enumerate(others):
                if pos[x] < pos[b]:
                    capacity[1 + i][1 + t + j] = n * m  # effectively unbounded
        for j in range(len(others)):
            capacity[1 + t + j][sink] = n
        if _max_flow(capacity, source, sink) == n * len(others):
            core.add(x)
    return core
