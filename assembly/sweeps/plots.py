"""Sweep figures (PNG + SVG): outcomes, liveness, rounds and usage against group size,
and (for protocols with a welfare section) the liveness–fairness frontier.

Every figure is drawn from the sweep's two tables (results: one row per run; cells:
one row per grid cell, see `stats.cell_table`), so a figure never shows a number
that is not in summary.csv or results.csv.

The x axis is the group size when the grid has it (`members` or
`population.size`), otherwise the first grid factor; every other grid factor
becomes a separate series. Doubling sizes (6, 12, 24, ...) are drawn on a log2 axis
so that each step gets the same room.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from assembly.core.atomic import write_atomic
from assembly.core.errors import UserError
from assembly.protocols import reference_points
from assembly.scenario.loading import ALIASES
from assembly.sweeps.stats import CAUSES, DECIDED

# Okabe–Ito: distinguishable with the common colour-vision deficiencies.
OUTCOME_COLORS = {"valid_decision": "#009E73", "invalid_decision": "#E69F00", "no_decision": "#D55E00"}
OUTCOME_LABELS = {
    "valid_decision": "valid decision",
    "invalid_decision": "invalid decision",
    "no_decision": "no decision",
}
CAUSE_COLORS = {"round_limit": "#0072B2", "quorum_not_met": "#E69F00", "stalled": "#CC79A7", "budget": "#999999"}
CAUSE_LABELS = {
    "round_limit": "round limit",
    "quorum_not_met": "quorum never met",
    "stalled": "stalled",
    "budget": "budget spent",
}
EVENT_COLORS = {"turn_timeouts": "#56B4E9", "malformed": "#F0E442", "provider_errors": "#CC79A7"}
EVENT_LABELS = {"turn_timeouts": "turn timeouts", "malformed": "malformed output", "provider_errors": "provider errors"}
SERIES_COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
MAX_SERIES = 7
PAPER_MARKERS = ["s", "^", "D", "v", "P"]
REFERENCE_STYLE: dict[str, Any] = {
    "markersize": 8,
    "markerfacecolor": "none",
    "markeredgewidth": 1.6,
    "linestyle": ":",
    "linewidth": 1.2,
}


@dataclass
class Drawn:
    paths: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Axis:
    """How the sweep maps onto a figure: x column, its scale, and series."""

    column: str
    label: str
    values: list[Any]
    numeric: bool
    log2: bool
    series_keys: list[str]

    def pos(self, value: Any) -> float:
        return float(value) if self.numeric else float(self.values.index(value))

    def dodge(self, value: Any, i: int, m: int, step: float = 1.0) -> float:
        """Position of series i of m at `value`, spread so interval bars do not overlap."""
        shift = (i - (m - 1) / 2) * step
        if self.numeric and self.log2:
            return float(value) * 2 ** (0.07 * shift)
        if self.numeric:
            span = (max(self.values) - min(self.values)) or 1.0
            return float(value) + 0.015 * span * shift
        return self.pos(value) + 0.12 * shift

    def jitter(self, x: float, rng: np.random.Generator, size: int) -> np.ndarray:
        if self.log2:
            return x * 2 ** rng.uniform(-0.05, 0.05, size)
        width = 0.01 * ((max(self.values) - min(self.values)) or 1.0) if self.numeric else 0.06
        return x + rng.uniform(-width, width, size)

    def setup(self, ax: Axes) -> None:
        if self.numeric and self.log2:
            ax.set_xscale("log", base=2)
        if self.numeric:
            ax.set_xticks([float(v) for v in self.values])
            ax.set_xticklabels([_fmt(v) for v in self.values])
            ax.minorticks_off()
            lo, hi = float(min(self.values)), float(max(self.values))
            if self.log2:
                ax.set_xlim(lo / 2**0.4, hi * 2**0.4)
            else:
                pad = 0.1 * ((hi - lo) or 1.0)
                ax.set_xlim(lo - pad, hi + pad)
        else:
            ax.set_xticks(range(len(self.values)))
            ax.set_xticklabels([_fmt(v) for v in self.values], rotation=20 if len(self.values) > 5 else 0)
            ax.set_xlim(-0.6, len(self.values) - 0.4)
        ax.set_xlabel(self.label)


def _dollars(v: float, _: Any = None) -> str:
    return f"${v:,.4g}"


def _thousands(v: float, _: Any = None) -> str:
    return f"{v:,.0f}"


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def choose_axis(cells: pd.DataFrame, grid_keys: Sequence[str]) -> Axis:
    keys = [k for k in grid_keys if k in cells]
    size = next((k for k in keys if ALIASES.get(k, k) == "population.size"), None)
    column = size or (keys[0] if keys else "cell")
    values = list(dict.fromkeys(cells[column].tolist()))
    numeric = all(isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) for v in values)
    if numeric:
        values = sorted(values)
    log2 = numeric and all(v > 0 for v in values) and len(values) > 2 and max(values) / min(values) >= 8
    label = "group size (members)" if size else column
    return Axis(column, label, values, numeric, log2, [k for k in keys if k != column])


def _series(cells: pd.DataFrame, axis: Axis) -> list[tuple[str, pd.DataFrame]]:
    if not axis.series_keys:
        return [("", cells)]
    out = []
    for values, group in cells.groupby(axis.series_keys, sort=False, dropna=False):
        vals = values if isinstance(values, tuple) else (values,)
        # Short names in legends (`awareness`, not `protocol.awareness`); the grid keys are in the CSVs.
        label = ", ".join(f"{k.split('.')[-1]}={_fmt(v)}" for k, v in zip(axis.series_keys, vals, strict=True))
        out.append((label, group))
    return out[:MAX_SERIES]


def _n_note(cells: pd.DataFrame) -> str:
    ns = sorted(set(int(n) for n in cells["n"]))
    if not ns:
        return ""
    return f"n = {ns[0]} runs per point" if len(ns) == 1 else f"n = {ns[0]}–{ns[-1]} runs per point"


def _errorbar(
    ax: Axes,
    axis: Axis,
    group: pd.DataFrame,
    prefix: str,
    i: int,
    m: int,
    color: str,
    label: str,
    rate_suffix: str = "_rate",
    step: float = 1.0,
    **kw: Any,
) -> None:
    group = group.sort_values(axis.column, key=lambda s: s.map(axis.pos))
    xs = [axis.dodge(v, i, m, step) for v in group[axis.column]]
    y = group[f"{prefix}{rate_suffix}"].to_numpy(dtype=float)
    lo = group[f"{prefix}_lo"].to_numpy(dtype=float)
    hi = group[f"{prefix}_hi"].to_numpy(dtype=float)
    yerr = np.vstack([np.nan_to_num(y - lo), np.nan_to_num(hi - y)])
    ax.errorbar(
        xs,
        y,
        yerr=yerr,
        color=color,
        label=label,
        capsize=3,
        linewidth=1.5,
        elinewidth=1.1,
        **{"marker": "o", "markersize": 5, **kw},
    )


def _save(fig: Figure, out: Path, stem: str, drawn: Drawn) -> None:
    for ext in ("png", "svg"):
        path = out / f"{stem}.{ext}"
        buffer = io.BytesIO()
        fig.savefig(buffer, format=ext, dpi=150 if ext == "png" else None, bbox_inches="tight")
        write_atomic(path, buffer.getvalue())  # whole or absent, and never over a non-file
        drawn.paths.append(path)
    plt.close(fig)


def _title(fig: Figure, title: str, what: str, note: str) -> None:
    fig.suptitle(f"{title}: {what}" if title else what, fontsize=12, fontweight="bold", x=0.01, ha="left")
    if note:
        # Below the axes (outside the figure box; savefig uses a tight bbox).
        fig.text(0.01, -0.01, note, fontsize=8.5, color="#555555", ha="left", va="top")


# ----------------------------------------------------------------------------- figures


def outcome_rates(cells: pd.DataFrame, axis: Axis, out: Path, title: str, drawn: Drawn) -> None:
    series = _series(cells, axis)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.0), sharey=True, layout="constrained")
    for ax, outcome in zip(axes, OUTCOME_COLORS, strict=True):
        for i, (label, group) in enumerate(series):
            color = OUTCOME_COLORS[outcome] if len(series) == 1 else SERIES_COLORS[i]
            _errorbar(ax, axis, group, outcome, i, len(series), color, label or OUTCOME_LABELS[outcome])
        axis.setup(ax)
        ax.set_title(OUTCOME_LABELS[outcome])
        ax.set_ylim(-0.03, 1.03)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("share of runs")
    if len(series) > 1:
        axes[-1].legend(fontsize=8, loc="best")
    _title(
        fig, title, "outcome rates", f"Points: share of completed runs; bars: 95% Wilson intervals; {_n_note(cells)}."
    )
    _save(fig, out, "outcome_rates", drawn)


def liveness(cells: pd.DataFrame, results: pd.DataFrame, axis: Axis, out: Path, title: str, drawn: Drawn) -> None:
    series = _series(cells, axis)
    rows = len(series)
    fig, axes = plt.subplots(rows, 2, figsize=(12, 3.8 * rows), squeeze=False, layout="constrained")
    done = results[results["status"] == "complete"] if "status" in results else results
    for r, (label, group) in enumerate(series):
        ax_c, ax_e = axes[r]
        group = group.sort_values(axis.column, key=lambda s: s.map(axis.pos))
        pos = np.arange(len(group))
        bottom = np.zeros(len(group))
        for cause in CAUSES:
            share = group[f"cause_{cause}_rate"].to_numpy(dtype=float)
            if np.nansum(share) == 0:
                continue
            ax_c.bar(pos, share, bottom=bottom, color=CAUSE_COLORS[cause], label=CAUSE_LABELS[cause], width=0.6)
            bottom += np.nan_to_num(share)
        top = float(np.nanmax(bottom)) if len(bottom) else 0.0
        for p, total in zip(pos, bottom, strict=True):
            if top > 0:
                ax_c.text(p, total + 0.01, f"{total:.0%}", ha="center", va="bottom", fontsize=8)
        ax_c.set_ylim(0, max(0.1, top * 1.25))
        ax_c.set_ylabel("share of runs with no decision")
        ax_c.set_title("why runs ended without a decision" + (f" ({label})" if label else ""))
        if top == 0:
            ax_c.text(0.5, 0.5, "every run reached a decision", transform=ax_c.transAxes, ha="center", color="#555555")
        else:
            ax_c.legend(fontsize=8, loc="upper left")
        # Per member-round rates of failed turns: comparable across group sizes.
        bottom = np.zeros(len(group))
        per = _member_round_rates(done, group, axis)
        for kind in EVENT_COLORS:
            vals = np.array([per[v][kind] for v in group[axis.column]])
            if np.nansum(vals) == 0:
                continue
            ax_e.bar(pos, vals, bottom=bottom, color=EVENT_COLORS[kind], label=EVENT_LABELS[kind], width=0.6)
            bottom += np.nan_to_num(vals)
        abst = np.array([per[v]["abstentions"] for v in group[axis.column]])
        ax_e.plot(
            pos, abst, color="#333333", marker="D", markersize=4, linewidth=1, label="abstentions (incl. failed turns)"
        )
        ax_e.set_ylabel("events per member per round")
        ax_e.set_title("liveness events per member-round" + (f" ({label})" if label else ""))
        ax_e.set_ylim(0, max(0.05, float(np.nanmax(np.concatenate([bottom, abst]))) * 1.3))
        ax_e.legend(fontsize=8, loc="upper left")
        for ax in (ax_c, ax_e):
            ax.set_xlim(-0.6, len(pos) - 0.4)
            ax.set_xticks(pos)
            ax.set_xticklabels([f"{_fmt(v)}\nn={int(n)}" for v, n in zip(group[axis.column], group["n"], strict=True)])
            ax.set_xlabel(axis.label)
            ax.grid(axis="y", alpha=0.3)
    _title(
        fig,
        title,
        "liveness loss",
        "Left: completed runs that ended without a decision, by cause "
        "(stacked). Right: failed turns and abstentions per member and round, "
        "averaged over runs.",
    )
    _save(fig, out, "liveness", drawn)


def _member_round_rates(done: pd.DataFrame, group: pd.DataFrame, axis: Axis) -> dict[Any, dict[str, float]]:
    out: dict[Any, dict[str, float]] = {}
    for _, cell in group.iterrows():
        runs = done[done["cell"] == cell["cell"]] if "cell" in done else done
        denom = (runs["members"].astype(float) * runs["rounds"].astype(float)).replace(0, np.nan)
        out[cell[axis.column]] = {
            k: float(np.nanmean(runs[k].astype(float) / denom)) if len(runs) else np.nan
            for k in (*EVENT_COLORS, "abstentions")
        }
    return out


def rounds_to_decision(
    cells: pd.DataFrame, results: pd.DataFrame, axis: Axis, out: Path, title: str, drawn: Drawn
) -> None:
    series = _series(cells, axis)
    fig, ax = plt.subplots(figsize=(8.5, 4.6), layout="constrained")
    rng = np.random.default_rng(0)  # jitter only; fixed so the figure is reproducible
    decided = results[results["outcome"].isin(DECIDED)] if "outcome" in results else results.iloc[:0]
    m = len(series)
    ymax = 1.0
    for i, (label, group) in enumerate(series):
        color = SERIES_COLORS[i]
        for _, cell in group.iterrows():
            runs = decided[decided["cell"] == cell["cell"]]["rounds"].to_numpy(dtype=float)
            centre = axis.dodge(cell[axis.column], i, m, step=4.0)  # between this series' mean and median
            if runs.size:
                ax.scatter(
                    axis.jitter(centre, rng, runs.size),
                    runs + rng.uniform(-0.12, 0.12, runs.size),
                    s=10,
                    color=color,
                    alpha=0.3,
                    linewidths=0,
                )
                ymax = max(ymax, float(runs.max()))
        name = f" ({label})" if label else ""
        # Mean left of the runs, median right of them: two interval bars per cell.
        _errorbar(
            ax, axis, group, "rounds_mean", 2 * i, 2 * m, color, f"mean, 95% t interval{name}", rate_suffix="", step=2.0
        )
        med = group.sort_values(axis.column, key=lambda s: s.map(axis.pos))
        xs = [axis.dodge(v, 2 * i + 1, 2 * m, step=2.0) for v in med[axis.column]]
        y = med["rounds_median"].to_numpy(dtype=float)
        yerr = np.vstack(
            [
                np.nan_to_num(y - med["rounds_median_lo"].to_numpy(dtype=float)),
                np.nan_to_num(med["rounds_median_hi"].to_numpy(dtype=float) - y),
            ]
        )
        ax.errorbar(
            xs,
            y,
            yerr=yerr,
            color=color,
            marker="D",
            markersize=5,
            markerfacecolor="white",
            linestyle="none",
            capsize=3,
            label=f"median, 95% order-statistic interval{name}",
        )
    for _, cell in cells.iterrows():
        ax.text(
            axis.pos(cell[axis.column]),
            0.01,
            f"{int(cell['decided'])}/{int(cell['n'])} decided",
            ha="center",
            va="bottom",
            fontsize=7.5,
            color="#555555",
            transform=ax.get_xaxis_transform(),
        )
    axis.setup(ax)
    ax.set_ylim(0, ymax + 1)
    ax.set_ylabel("rounds to decision")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    _title(
        fig,
        title,
        "rounds to decision",
        "Decided runs only (decided/completed runs at the bottom); faint dots: individual runs, jittered.",
    )
    _save(fig, out, "rounds_to_decision", drawn)


def usage(cells: pd.DataFrame, axis: Axis, out: Path, title: str, drawn: Drawn) -> None:
    series = _series(cells, axis)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0), layout="constrained")
    panels = (("tokens_mean", "tokens per run (prompt + completion)"), ("cost_usd_mean", "cost per run (USD)"))
    for ax, (prefix, ylabel) in zip(axes, panels, strict=True):
        axis.setup(ax)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
        if prefix not in cells or float(np.nansum(cells[prefix].to_numpy(dtype=float))) == 0:
            ax.set_ylim(0, 1)
            ax.set_yticks([0])
            ax.text(
                0.5,
                0.5,
                "no model calls in this sweep\n(sim members: 0 tokens, $0)",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="#555555",
            )
            continue
        for i, (label, group) in enumerate(series):
            _errorbar(ax, axis, group, prefix, i, len(series), SERIES_COLORS[i], label or "mean", rate_suffix="")
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(FuncFormatter(_dollars if prefix.startswith("cost") else _thousands))
        if len(series) > 1:
            ax.legend(fontsize=8)
    total = float(cells["cost_usd_total"].sum()) if "cost_usd_total" in cells else 0.0
    _title(fig, title, "tokens and cost", f"Mean per completed run with 95% t intervals; total spend ${total:,.4f}.")
    _save(fig, out, "tokens_cost", drawn)


def reference_comparison(cells: pd.DataFrame, axis: Axis, ref: str, out: Path, title: str, drawn: Drawn) -> None:
    """Our outcome rates beside the paper's: same colour per condition, filled circles for
    this sweep, hollow markers on dotted lines for the paper (one marker shape per model).

    Paper points are matched to ours by field name: the x axis is the paper's `members`
    for group size, else the last part of the grid key (`protocol.byzantine` ->
    `byzantine`); every other grid factor filters the paper's points the same way.
    """
    try:
        paper = pd.DataFrame(reference_points(ref))
    except (UserError, KeyError, ValueError, OSError) as exc:
        drawn.notes.append(f"reference {ref!r} not drawn: {exc}")
        return
    xfield = "members" if ALIASES.get(axis.column, axis.column) == "population.size" else axis.column.split(".")[-1]
    if paper.empty or xfield not in paper:
        drawn.notes.append(f"reference {ref!r} not drawn: its points have no {xfield!r} to put on the x axis")
        return
    ours_x = {str(v) for v in axis.values}
    paper = paper[paper[xfield].astype(str).isin(ours_x)]
    if paper.empty:
        drawn.notes.append(f"reference {ref!r} not drawn: no paper point at this sweep's {xfield} values")
        return
    series = _series(cells, axis)
    models = list(dict.fromkeys(paper["model"].fillna(""))) if "model" in paper else [""]
    slots = len(series) * (len(models) + 1)
    panels = (
        ("valid_decision", "valid", "valid decision"),
        ("invalid_decision", "invalid", "invalid decision"),
        ("no_decision", "timeout", "no decision (paper: timeout)"),
    )
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), sharey=True, layout="constrained")
    for ax, (ours, theirs, name) in zip(axes, panels, strict=True):
        for i, (label, group) in enumerate(series):
            base = i * (len(models) + 1)
            _errorbar(
                ax, axis, group, ours, base, slots, SERIES_COLORS[i], "this sweep" + (f" ({label})" if label else "")
            )
            mine = paper
            for key in axis.series_keys:  # the paper's points for this condition
                leaf = key.split(".")[-1]
                if leaf in mine:
                    mine = mine[mine[leaf].astype(str) == str(group[key].iloc[0])]
            for j, model in enumerate(models):
                rows = mine[mine["model"].fillna("") == model] if "model" in mine else mine
                rows = rows.dropna(subset=[theirs]).sort_values(xfield, key=lambda s: s.map(axis.pos))
                if rows.empty:
                    continue
                xs = [axis.dodge(v, base + 1 + j, slots) for v in rows[xfield]]
                ax.plot(
                    xs,
                    rows[theirs].astype(float),
                    color=SERIES_COLORS[i],
                    label="paper" + (f": {model}" if model else "") + (f" ({label})" if label else ""),
                    marker=PAPER_MARKERS[j % len(PAPER_MARKERS)],
                    **REFERENCE_STYLE,
                )
        axis.setup(ax)
        ax.set_title(name)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("share of runs")
    handles, labels = axes[0].get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda k: (not labels[k].startswith("this sweep"), k))
    fig.legend([handles[k] for k in order], [labels[k] for k in order], loc="outside right upper", fontsize=8.5)
    fixed = [
        f"{c}={paper[c].iloc[0]}"
        for c in ("honest", "byzantine", "awareness")
        if c in paper
        and c != xfield
        and paper[c].nunique() == 1
        and not any(k.split(".")[-1] == c for k in axis.series_keys)
    ]
    source = paper["source"].iloc[0] if "source" in paper and paper["source"].notna().any() else ref
    _title(
        fig,
        title,
        f"this sweep beside the paper ({source})",
        "Filled circles: this sweep, 95% Wilson intervals. Hollow markers, dotted: values reported in the paper"
        + (f" ({', '.join(fixed)})" if fixed else "")
        + ".",
    )
    _save(fig, out, "reference_comparison", drawn)


BASELINE_STYLES = (("utilitarian", "--"), ("borda", ":"), ("maximin", "-."))
SIZE_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def liveness_fairness(
    cells: pd.DataFrame, results: pd.DataFrame, axis: Axis, out: Path, title: str, drawn: Drawn
) -> None:
    """The liveness–fairness frontier: how often a cell decides (x) against how well its
    decisions serve the worst-off role (left) and the average member (right).

    One hollow point per cell: colour by series (e.g. the decision rule), shape by the
    x-axis value of the other figures (the group size). Rules that make the same
    decisions land on the same spot, so each series is drawn a size smaller than the
    one before: coinciding points show as concentric rings. Baselines always decide;
    their lines are means over runs."""
    series = _series(cells, axis)
    done = results[results["status"] == "complete"] if "status" in results else results
    shape = {v: SIZE_MARKERS[i % len(SIZE_MARKERS)] for i, v in enumerate(axis.values)}
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), sharex=True, layout="constrained")
    panels = (("worst_role", "worst-off role's utility under the decision"), ("utilitarian", "mean utility"))
    for ax, (figure, ylabel) in zip(axes, panels, strict=True):
        for i, (_, group) in enumerate(series):
            color, size = SERIES_COLORS[i % len(SERIES_COLORS)], max(4.0, 13.0 - 2.0 * i)
            for _, cell in group.iterrows():
                x, y = float(cell["decided_rate"]), float(cell[f"welfare_assembly_{figure}_mean"])
                xerr = [[np.nan_to_num(x - float(cell["decided_lo"]))], [np.nan_to_num(float(cell["decided_hi"]) - x)]]
                lo, hi = (
                    float(cell[f"welfare_assembly_{figure}_mean_lo"]),
                    float(cell[f"welfare_assembly_{figure}_mean_hi"]),
                )
                yerr = [[np.nan_to_num(y - lo)], [np.nan_to_num(hi - y)]]
                ax.errorbar(
                    [x], [y], xerr=xerr, yerr=yerr, color=color, marker=shape[cell[axis.column]], markersize=size,
                    markerfacecolor="none", markeredgewidth=1.4, elinewidth=0.8, capsize=2, alpha=0.9,
                )  # fmt: skip
        for base, style in BASELINE_STYLES:
            column = f"welfare_{base}_{figure}"
            if column in done and done[column].notna().any():
                value = float(done[column].astype(float).mean())
                ax.axhline(value, color="#555555", linestyle=style, lw=1.1, label=f"{base} baseline ({value:.2f})")
        ax.set_xlim(-0.03, 1.05)
        ax.set_ylim(-0.03, 1.05)
        ax.set_xlabel("share of runs that decide")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    for i, (label, _) in enumerate(series):
        color = SERIES_COLORS[i % len(SERIES_COLORS)]
        handles.append(plt.Line2D([], [], color=color, marker="o", markerfacecolor="none", linestyle="none"))
        labels.append(label or "assembly")
    for v, marker in shape.items():
        handles.append(plt.Line2D([], [], color="#333333", marker=marker, markerfacecolor="none", linestyle="none"))
        labels.append(f"{axis.label.split(' (')[0]} {_fmt(v)}")
    fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    _title(
        fig,
        title,
        "liveness–fairness frontier",
        "One point per cell; x: share of completed runs that decided (95% Wilson); y: mean over deciding runs "
        f"of normalised utility (95% t); lines: baselines' mean over all runs; {_n_note(cells)}.",
    )
    _save(fig, out, "liveness_fairness", drawn)


def draw_sweep(
    results: pd.DataFrame,
    cells: pd.DataFrame,
    out: Path,
    *,
    grid_keys: Sequence[str],
    reference: str | None = None,
    title: str = "",
) -> Drawn:
    """Draw every sweep figure into `out`; returns the files written and any notes."""
    drawn = Drawn()
    if cells.empty or not int(cells["n"].sum()):
        drawn.notes.append("no completed runs: no figures drawn")
        return drawn
    cells = cells[cells["n"] > 0]
    axis = choose_axis(cells, grid_keys)
    outcome_rates(cells, axis, out, title, drawn)
    liveness(cells, results, axis, out, title, drawn)
    rounds_to_decision(cells, results, axis, out, title, drawn)
    usage(cells, axis, out, title, drawn)
    if reference:
        reference_comparison(cells, axis, reference, out, title, drawn)
    if "welfare_assembly_worst_role_mean" in cells:
        liveness_fairness(cells, results, axis, out, title, drawn)
    if math.isnan(float(cells["rounds_mean"].max())):
        drawn.notes.append("no run reached a decision: rounds-to-decision figure is empty")
    return drawn
