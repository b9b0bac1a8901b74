"""The sweep's liveness–fairness frontier (protocols with a welfare section): how often
a cell decides against how well its decisions serve the worst-off role and the
average member, beside the single-utility baselines. See docs/figures.md."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from assembly.sweeps.plots import SERIES_COLORS, Axis, Drawn, _fmt, _n_note, _series, save

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
    save(
        fig,
        out,
        "liveness_fairness",
        drawn,
        title,
        "liveness–fairness frontier",
        "One point per cell; x: share of completed runs that decided (95% Wilson); y: mean over deciding runs "
        f"of normalised utility (95% t); lines: baselines' mean over all runs; {_n_note(cells)}.",
    )
