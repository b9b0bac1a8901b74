"""Interval estimates for sweep cells: outcome rates, rounds to decision, usage.

Every interval here comes from scipy, not from a formula typed in by hand, so the
numbers in a paper table are the ones a reviewer gets from a standard library:

- rates: Wilson score intervals (`binomtest(...).proportion_ci(method="wilson")`),
  which behave at 0/n and n/n where the normal approximation collapses to a point;
- means: Student t intervals;
- medians: the distribution-free order-statistic interval (`quantile_test`), which
  needs no resampling (so no seed) and suits small integer samples such as rounds.

An interval that the data cannot support (n = 0, or a median of fewer than six
runs at 95%) is NaN, never a made-up bound.

Welfare (from each run's `welfare` section, flattened by `tables.welfare_columns`):
the mean of every welfare figure of every way of choosing, with a t interval; the
assembly's figures are null when it decided nothing, so their means are over the
runs that decided. The gap between the assembly's decision and a baseline is a
paired difference: each run scores both on its own seated population, and runs
with the same seed (and group size) share that population across cells, so the
differences are averaged within each seed first and the interval is a Student t
interval over the seed-level differences (`paired_difference`). With one run per
seed in a cell, this is exactly the paired t interval of `scipy.stats.ttest_rel`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
OUTCOMES = ("valid_decision", "invalid_decision", "no_decision")
CAUSES = ("round_limit", "quorum_not_met", "stalled", "budget")
DECIDED = ("valid_decision", "invalid_decision")


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float


NAN = Estimate(math.nan, math.nan, math.nan)


def wilson(k: int, n: int, confidence: float = CONFIDENCE) -> Estimate:
    """The rate k/n with its Wilson score interval (NaN when n is 0)."""
    if n <= 0:
        return NAN
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return Estimate(k / n, float(ci.low), float(ci.high))


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> Estimate:
    """Mean with a Student t interval; a constant sample has a zero-width interval."""
    x = _clean(values)
    if x.size == 0:
        return NAN
    mean = float(x.mean())
    if x.size == 1:
        return Estimate(mean, math.nan, math.nan)
    if np.all(x == x[0]):
        # scipy warns about catastrophic cancellation here; the answer is exact.
        return Estimate(mean, mean, mean)
    ci = stats.ttest_1samp(x, 0.0).confidence_interval(confidence_level=confidence)
    return Estimate(mean, float(ci.low), float(ci.high))


def median_ci(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> Estimate:
    """Median with the order-statistic interval (NaN bounds when n is too small)."""
    x = _clean(values)
    if x.size == 0:
        return NAN
    median = float(np.median(x))
    ci = stats.quantile_test(x, q=median, p=0.5).confidence_interval(confidence_level=confidence)
    return Estimate(median, float(ci.low), float(ci.high))


def _clean(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    return x[~np.isnan(x)]


def _rate_columns(prefix: str, est: Estimate, k: int) -> dict[str, float]:
    return {f"{prefix}_k": k, f"{prefix}_rate": est.value, f"{prefix}_lo": est.low, f"{prefix}_hi": est.high}


def _estimate_columns(prefix: str, est: Estimate) -> dict[str, float]:
    return {prefix: est.value, f"{prefix}_lo": est.low, f"{prefix}_hi": est.high}


def cell_row(runs: pd.DataFrame) -> dict[str, Any]:
    """Figures for one grid cell from its rows of results (one row per run).

    Rates are over the runs that completed (`n`); runs that raised are counted in
    `failed` and excluded, because they say nothing about the assembly.
    """
    done = runs[runs["status"] == "complete"] if "status" in runs else runs
    n = len(done)
    row: dict[str, Any] = {"n": n, "failed": int((runs.get("status") == "failed").sum()) if "status" in runs else 0}
    outcome = done["outcome"] if "outcome" in done else pd.Series(dtype=object)
    cause = done["cause"] if "cause" in done else pd.Series(dtype=object)
    for o in OUTCOMES:
        k = int((outcome == o).sum())
        row.update(_rate_columns(o, wilson(k, n), k))
    for c in CAUSES:
        k = int(((outcome == "no_decision") & (cause == c)).sum())
        row.update(_rate_columns(f"cause_{c}", wilson(k, n), k))
    decided = done[outcome.isin(DECIDED)] if n else done
    rounds = decided["rounds"].to_numpy(dtype=float) if "rounds" in decided else np.array([])
    row["decided"] = len(decided)
    row.update(_rate_columns("decided", wilson(len(decided), n), len(decided)))
    row.update(_estimate_columns("rounds_mean", mean_ci(rounds)))
    row.update(_estimate_columns("rounds_median", median_ci(rounds)))
    for col in ("tokens", "cost_usd", "turn_timeouts", "abstentions", "wall_s"):
        if col in done:
            row.update(_estimate_columns(f"{col}_mean", mean_ci(done[col].to_numpy(dtype=float))))
    if "cost_usd" in done:
        row["cost_usd_total"] = float(done["cost_usd"].sum())
    row.update(welfare_cell(done))
    return row


# The ways of choosing and the scalar figures every run's welfare section holds
# (`assembly.core.run_welfare`); the baselines are all of them but the assembly.
WELFARE_OUTCOMES = ("assembly", "utilitarian", "borda", "maximin", "plurality_round1")
WELFARE_FIGURES = ("utilitarian", "nash", "egalitarian", "worst_role")
WELFARE_FLAGS = ("condorcet_winner", "in_veto_core")


def paired_difference(runs: pd.DataFrame, a: str, b: str, cluster: str = "seed") -> Estimate:
    """Mean of `a - b` with a t interval clustered by `cluster`.

    Runs where either is null are left out; the differences are averaged within each
    cluster (a seed: one seated population) and the interval is over those cluster
    means, so several runs on one population do not pass for independent evidence."""
    if a not in runs or b not in runs:
        return NAN
    pairs = runs[[a, b, *([cluster] if cluster in runs else [])]].dropna(subset=[a, b])
    diffs = pairs[a].astype(float) - pairs[b].astype(float)
    if cluster in pairs:
        diffs = diffs.groupby(pairs[cluster]).mean()
    return mean_ci(diffs.to_numpy(dtype=float))


def welfare_cell(runs: pd.DataFrame) -> dict[str, Any]:
    """Welfare columns of one cell: means with t intervals, how often the decision was
    the Condorcet winner and in the veto core (Wilson, over deciding runs), and the
    seed-clustered paired gap between the assembly's decision and each baseline."""
    if not any(str(c).startswith("welfare_assembly_") for c in runs.columns):
        return {}  # a protocol without a welfare section
    row: dict[str, Any] = {}
    for name in WELFARE_OUTCOMES:
        for fig in WELFARE_FIGURES:
            col = f"welfare_{name}_{fig}"
            values = runs[col].to_numpy(dtype=float) if col in runs else np.array([])
            row.update(_estimate_columns(f"{col}_mean", mean_ci(values)))
    for flag in WELFARE_FLAGS:
        col = f"welfare_assembly_{flag}"
        known = runs[col].dropna() if col in runs else pd.Series(dtype=float)
        k = int((known.astype(float) == 1).sum())
        row.update(_rate_columns(col, wilson(k, len(known)), k))
    for base in WELFARE_OUTCOMES[1:]:
        for fig in WELFARE_FIGURES:
            gap = paired_difference(runs, f"welfare_assembly_{fig}", f"welfare_{base}_{fig}")
            row.update(_estimate_columns(f"welfare_gap_{base}_{fig}_mean", gap))
    if "welfare_fidelity" in runs:
        row.update(_estimate_columns("welfare_fidelity_mean", mean_ci(runs["welfare_fidelity"].to_numpy(dtype=float))))
    return row


def cell_table(results: pd.DataFrame, by: Iterable[str]) -> pd.DataFrame:
    """One row per grid cell (the distinct values of `by`), in first-seen order."""
    keys = list(by)
    if not keys:
        return pd.DataFrame([cell_row(results)])
    rows = []
    for values, group in results.groupby(keys, sort=False, dropna=False):
        vals = values if isinstance(values, tuple) else (values,)
        rows.append({**dict(zip(keys, vals, strict=True)), **cell_row(group)})
    return pd.DataFrame(rows)
