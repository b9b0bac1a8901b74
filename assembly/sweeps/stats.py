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
    row.update(_estimate_columns("rounds_mean", mean_ci(rounds)))
    row.update(_estimate_columns("rounds_median", median_ci(rounds)))
    for col in ("tokens", "cost_usd", "turn_timeouts", "abstentions", "wall_s"):
        if col in done:
            row.update(_estimate_columns(f"{col}_mean", mean_ci(done[col].to_numpy(dtype=float))))
    if "cost_usd" in done:
        row["cost_usd_total"] = float(done["cost_usd"].sum())
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
