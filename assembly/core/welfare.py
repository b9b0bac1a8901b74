"""Pure plural-welfare figures: how well an option serves members with plural values.

A scenario gives each member ``i`` value weights ``values_i[d]`` over value
dimensions ``d``, each option ``o`` attributes ``attributes_o[d]``, and each
fact ``f`` effects ``effects_f[o]`` (how knowing ``f`` shifts the valuation of
``o``). From those this module derives each member's utilities, normalises
them, and scores an outcome by several welfare notions, so that an assembly's
choice can be compared with single-utility aggregation baselines:

* ``utilitarian`` (mean), ``nash`` (geometric mean, Nash 1950; Kaneko &
  Nakamura 1979), ``egalitarian`` (Rawlsian minimum), ``worst_role`` (the worst
  role's mean) and per-role regret;
* whether the option is the full-information Condorcet winner and whether it
  lies in Moulin's proportional veto core (see :mod:`assembly.core.social_choice`);
* the options picked by the baselines: utilitarian, Borda (what a
  Bradley–Terry reward model fit to pooled pairwise comparisons picks,
  Siththaranjan et al., arXiv:2312.08358) and maximin over roles (MaxMin-RLHF,
  Chakraborty et al., arXiv:2402.08925).

Conventions: the option order is the order of ``attributes`` (the scenario's
order) or, for the normalised-utility functions, the order of the first
member's utility dict unless ``options`` is given. Every tie is broken by that
order, earliest first. A member's ranking is her options by descending
utility, equal utilities ordered by option order; note that this turns exact
utility ties into strict preferences favouring earlier options (e.g. a member
with constant utilities ranks the options in scenario order). Floats in
:func:`welfare` are rounded to 6 decimals so the JSON they end up in is stable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from assembly.core.social_choice import borda_winner, condorcet_winner, maximin_winner, proportional_veto_core

__all__ = ["baselines", "normalize", "rank_options", "spearman", "spearman_rows", "utilities", "welfare"]

_DECIMALS = 6


def utilities(
    values: Mapping[str, float],
    attributes: Mapping[str, Mapping[str, float]],
    effects: Mapping[str, Mapping[str, float]],
    known_facts: Iterable[str] | None = None,
) -> dict[str, float]:
    """One member's utility for each option: ``u(o) = Σ_d values[d]·attributes_o[d] + Σ_{f known} effects_f[o]``.

    ``attributes`` maps option -> dimension -> level and defines the options
    and their order; ``effects`` maps fact -> option -> shift. ``known_facts``
    are the facts the member knows (all facts in ``effects`` if ``None``).
    Missing entries count as 0: a dimension the member does not weigh or the
    option does not have, a known fact with no listed effects, a fact with no
    effect on an option. A fact that shifts an option absent from
    ``attributes`` raises ``ValueError`` (it would be an option with no place
    in the scenario order, most likely a typo). Sums use ``math.fsum`` so the
    result does not depend on dict order.
    """
    options = list(attributes)
    known_options = set(options)
    for fact, shifts in effects.items():
        stray = [o for o in shifts if o not in known_options]
        if stray:
            raise ValueError(f"fact {fact!r} has effects on unknown options {stray!r}")
    facts = list(effects) if known_facts is None else list(dict.fromkeys(known_facts))
    out: dict[str, float] = {}
    for o in options:
        terms = [float(w) * float(attributes[o].get(d, 0.0)) for d, w in values.items()]
        terms += [float(effects.get(f, {}).get(o, 0.0)) for f in facts]
        out[o] = math.fsum(terms)
    return out


def normalize(u: Mapping[str, float]) -> dict[str, float]:
    """Range-normalise one member's utilities to ``[0, 1]``: ``(u - min) / (max - min)``.

    Why: utilities from different members are on arbitrary scales; range
    normalisation (the "0-1 normalisation" of relative utilitarianism, Dhillon
    & Mertens 1999) makes each member's best option worth 1 and worst worth 0,
    so that no member counts more just by having larger value weights. If all
    options are equal the member is indifferent and every option gets 1 (she
    is fully satisfied by any choice, so she has no regret).
    """
    if not u:
        return {}
    vals = [float(v) for v in u.values()]
    if any(math.isnan(v) for v in vals):
        raise ValueError("utilities contain NaN")
    lo, hi = min(vals), max(vals)
    if hi == lo:
        return dict.fromkeys(u, 1.0)
    span = hi - lo
    return {o: (float(v) - lo) / span for o, v in u.items()}


def _options_of(utilities_by_member: Mapping[str, Mapping[str, float]], options: Sequence[str] | None) -> list[str]:
    if not utilities_by_member:
        raise ValueError("no members")
    opts = list(options) if options is not None else list(next(iter(utilities_by_member.values())))
    if len(set(opts)) != len(opts):
        raise ValueError(f"duplicate options in {opts!r}")
    for member, u in utilities_by_member.items():
        if set(u) != set(opts):
            raise ValueError(f"member {member!r} has utilities for {sorted(u)!r}, expected {sorted(opts)!r}")
    return opts


def rank_options(u: Mapping[str, float], options: Sequence[str]) -> list[str]:
    """Options by descending utility; equal utilities keep ``options`` order (a stable sort)."""
    return sorted(options, key=lambda o: -u[o])


def _roles(utilities_by_member: Mapping[str, Mapping[str, float]], role_of: Mapping[str, str]) -> dict[str, list[str]]:
    """Role -> its members, roles sorted by name so output order is stable."""
    members_of: dict[str, list[str]] = {}
    for member in utilities_by_member:
        if member not in role_of:
            raise ValueError(f"member {member!r} has no role")
        members_of.setdefault(role_of[member], []).append(member)
    return {role: members_of[role] for role in sorted(members_of)}


def _mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs)


def welfare(
    option: str,
    normalized_utilities_by_member: Mapping[str, Mapping[str, float]],
    role_of: Mapping[str, str],
    *,
    options: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Welfare figures of choosing ``option``, from members' normalised full-information utilities.

    Keys:

    * ``utilitarian``: mean utility (Harsanyi).
    * ``nash``: geometric mean of utilities (Nash social welfare), exactly 0 if
      any member's utility is 0; it rewards balance between members.
    * ``egalitarian``: the worst-off member's utility (Rawls).
    * ``worst_role``: the minimum over roles of the role's mean utility, the
      group-level maximin objective of MaxMin-RLHF (arXiv:2402.08925).
    * ``regret_by_role``: role -> mean over its members of
      ``max_o u(o) - u(option)`` (roles sorted by name).
    * ``condorcet_winner``: whether ``option`` is the Condorcet winner of the
      members' rankings.
    * ``in_veto_core``: whether ``option`` is in the proportional veto core
      (Moulin 1981) of those rankings, computed with the polynomial flow method.

    Rankings come from :func:`rank_options` (descending utility, ties by option
    order). Utilities must be non-negative (they are meant to be outputs of
    :func:`normalize`); every member must have a role and utilities for the
    same options. ``options`` fixes the option order; by default the first
    member's. Floats are rounded to 6 decimals.
    """
    opts = _options_of(normalized_utilities_by_member, options)
    if option not in opts:
        raise ValueError(f"{option!r} is not an option")
    roles = _roles(normalized_utilities_by_member, role_of)
    u_at = {m: float(u[option]) for m, u in normalized_utilities_by_member.items()}
    vals = list(u_at.values())
    if any(math.isnan(v) or v < 0 for v in vals):
        raise ValueError("normalised utilities must be non-negative numbers")
    nash = 0.0 if any(v == 0 for v in vals) else math.exp(_mean([math.log(v) for v in vals]))
    regret = {
        m: max(float(x) for x in normalized_utilities_by_member[m].values()) - u_at[m]
        for m in normalized_utilities_by_member
    }
    rankings = [rank_options(u, opts) for u in normalized_utilities_by_member.values()]
    return {
        "utilitarian": round(_mean(vals), _DECIMALS),
        "nash": round(nash, _DECIMALS),
        "egalitarian": round(min(vals), _DECIMALS),
        "worst_role": round(min(_mean([u_at[m] for m in ms]) for ms in roles.values()), _DECIMALS),
        "regret_by_role": {role: round(_mean([regret[m] for m in ms]), _DECIMALS) for role, ms in roles.items()},
        "condorcet_winner": condorcet_winner(rankings, opts) == option,
        "in_veto_core": option in proportional_veto_core(rankings, opts),
    }


def baselines(
    normalized_utilities_by_member: Mapping[str, Mapping[str, float]],
    role_of: Mapping[str, str],
    *,
    options: Sequence[str] | None = None,
) -> dict[str, str]:
    """The option each single-objective aggregation would choose, from full-information utilities.

    * ``utilitarian``: argmax of mean utility.
    * ``borda``: Borda winner of the members' rankings; a Bradley–Terry
      reward model fit to pooled pairwise comparisons ranks options by Borda
      count (Siththaranjan et al., arXiv:2312.08358), so this is the "one
      reward model on pooled preferences" choice.
    * ``maximin``: argmax over options of the worst role's mean utility
      (MaxMin-RLHF, Chakraborty et al., arXiv:2402.08925).

    Ties are broken by option order (``options``, default the first member's
    dict order); rankings as in :func:`welfare`.
    """
    opts = _options_of(normalized_utilities_by_member, options)
    roles = _roles(normalized_utilities_by_member, role_of)
    mean_u = {o: _mean([float(u[o]) for u in normalized_utilities_by_member.values()]) for o in opts}
    utilitarian = opts[0]
    for o in opts[1:]:
        if mean_u[o] > mean_u[utilitarian]:
            utilitarian = o
    rankings = [rank_options(u, opts) for u in normalized_utilities_by_member.values()]
    borda = borda_winner(rankings, opts)
    by_role = {
        role: {o: _mean([float(normalized_utilities_by_member[m][o]) for m in ms]) for o in opts}
        for role, ms in roles.items()
    }
    maximin = maximin_winner(by_role, opts)
    assert borda is not None and maximin is not None  # there is at least one member and one option
    return {"utilitarian": utilitarian, "borda": borda, "maximin": maximin}


def _average_ranks(xs: Sequence[float]) -> list[float]:
    """1-based ranks, tied values sharing the mean of the ranks they span: multiples
    of 1/2, so every sum of them below is exact."""
    order = sorted(range(len(xs)), key=xs.__getitem__)  # stable, as argsort(kind="stable")
    ranks = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in order[i : j + 1]:
            ranks[k] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _centred_ranks(xs: Sequence[float]) -> tuple[list[float], float]:
    """Average ranks minus their mean, and their sum of squares."""
    centre = (len(xs) + 1) / 2  # the mean of any average ranks of len(xs) values
    d = [r - centre for r in _average_ranks(xs)]
    return d, sum(x * x for x in d)


def spearman(stated: Mapping[str, float], assigned: Mapping[str, float]) -> float | None:
    """Spearman rank correlation between a member's stated and assigned option scores.

    Compares the options present in both dicts (in ``stated`` order). Ties get
    average ranks (the usual correction, as in ``scipy.stats.spearmanr``), and
    the result is the Pearson correlation of the ranks. ``None`` when fewer
    than 2 common options remain or either side is constant over them
    (correlation undefined). ``ValueError`` on NaN.
    """
    common = [o for o in stated if o in assigned]
    if len(common) < 2:
        return None
    a = [float(stated[o]) for o in common]
    b = [float(assigned[o]) for o in common]
    if any(math.isnan(v) for v in (*a, *b)):
        raise ValueError("spearman: NaN score")
    da, sum_a = _centred_ranks(a)
    db, sum_b = _centred_ranks(b)
    denom = math.sqrt(sum_a * sum_b)
    if denom == 0:
        return None
    return max(-1.0, min(1.0, sum(x * y for x, y in zip(da, db, strict=True)) / denom))


def spearman_rows(stated: np.ndarray, assigned: np.ndarray) -> list[float | None]:
    """:func:`spearman` of each row of ``stated`` with the same row of ``assigned``
    (both ``members x options``, the options already the common ones, in order).

    For a round's speeches all at once: at N = 64 a summary correlates 640 pairs,
    and one pair at a time took a seventh of the summary's time. The values are
    the ones :func:`spearman` returns, bit for bit: an average rank is
    ``1 + #{smaller} + (#{equal} - 1) / 2``, a multiple of 1/2, so the centred
    ranks, their products and their sums are exact in any order, and what
    follows is the same square root and division. ``ValueError`` on NaN."""
    if np.isnan(stated).any() or np.isnan(assigned).any():
        raise ValueError("spearman: NaN score")
    rows, k = stated.shape
    if k < 2:
        return [None] * rows
    da, db = _centred_rank_rows(stated), _centred_rank_rows(assigned)
    denom = np.sqrt(np.add.reduce(da * da, axis=1) * np.add.reduce(db * db, axis=1))
    num = np.add.reduce(da * db, axis=1)
    return [None if d == 0 else max(-1.0, min(1.0, float(x / d))) for x, d in zip(num, denom, strict=True)]


def _centred_rank_rows(m: np.ndarray) -> np.ndarray:
    """Average ranks within each row, minus their mean ``(k + 1) / 2``."""
    below = (m[:, None, :] < m[:, :, None]).sum(axis=2)
    equal = (m[:, None, :] == m[:, :, None]).sum(axis=2)
    return below + (equal - 1) / 2 + 1 - (m.shape[1] + 1) / 2
