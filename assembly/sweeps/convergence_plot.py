"""The sweep's convergence figure: per-round dispersion of positions, one curve per cell.

Rounds-to-decision says how long groups took; these curves say how they got there:
for each value on the sweep's x axis (the group size, when the grid has it), the
mean over runs of the per-round convergence figure, with its 95% Student t band.
The figure is the protocol's dispersion: `dispersion` (the assembly: mean over
options of the standard deviation of support) or, for the consensus game,
`honest_sd` (standard deviation of honest agents' values). See docs/figures.md.

A run contributes to a round only if it was still going then, so late rounds
average fewer runs (runs that decide early leave); the caption and a thinner line
where fewer than half the runs remain say so.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib import colormaps
from matplotlib.ticker import MaxNLocator

from assembly.sweeps.plots import Axis, Drawn, _fmt, _series, save
from assembly.sweeps.stats import mean_ci

# Per-round convergence figures, in order of preference, with their axis label.
METRICS = (
    ("dispersion", "dispersion of support (mean sd over options)"),
    ("honest_sd", "sd of honest agents' values"),
)


def metric_of(rounds: pd.DataFrame) -> tuple[str, str] | None:
    for column, label in METRICS:
        if column in rounds and rounds[column].notna().any():
            return column, label
    return None


def curves(rounds: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean, 95% t interval and number of runs per (cell, round)."""
    rows = []
    for (cell, r), group in rounds.dropna(subset=[column]).groupby(["cell", "round"], sort=False):
        est = mean_ci(group[column].to_numpy(dtype=float))
        rows.append(
            {"cell": cell, "round": int(r), "mean": est.value, "lo": est.low, "hi": est.high, "runs": len(group)}
        )
    return pd.DataFrame(rows, columns=["cell", "round", "mean", "lo", "hi", "runs"])


def convergence(
    rounds: pd.DataFrame | None, cells: pd.DataFrame, axis: Axis, out: Path, title: str, drawn: Drawn
) -> None:
    if rounds is None or rounds.empty or "cell" not in rounds:
        return
    chosen = metric_of(rounds)
    if chosen is None:
        drawn.notes.append("no per-round dispersion recorded: no convergence figure")
        return
    column, ylabel = chosen
    per_cell = curves(rounds, column)
    series = _series(cells, axis)
    fig, axes = plt.subplots(
        1, len(series), figsize=(6.5 * len(series), 4.2), squeeze=False, sharey=True, layout="constrained"
    )
    cmap = colormaps["viridis"]
    for ax, (label, group) in zip(axes[0], series, strict=True):
        group = group.sort_values(axis.column, key=lambda s: s.map(axis.pos))
        k = len(group)
        for i, (_, cell) in enumerate(group.iterrows()):
            curve = per_cell[per_cell["cell"] == cell["cell"]].sort_values("round")
            if curve.empty:
                continue
            color = cmap(0.1 + 0.8 * (i / max(1, k - 1)))
            name = f"{axis.label.split(' (')[0]} {_fmt(cell[axis.column])}"
            full = curve["runs"] >= curve["runs"].max() / 2  # thin where fewer than half remain
            ax.plot(curve["round"], curve["mean"], color=color, linewidth=0.8, alpha=0.8)
            ax.plot(curve["round"].where(full), curve["mean"].where(full), color=color, linewidth=2, label=name)
            ax.fill_between(curve["round"], curve["lo"], curve["hi"], color=color, alpha=0.15, linewidth=0)
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if label:
            ax.set_title(label)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8, loc="upper right")
    axes[0][0].set_ylabel(ylabel)
    note = (
        f"Mean {column} per round over the runs still going in that round, with 95% t bands; "
        "runs leave as they end, and lines thin where fewer than half of a cell's runs remain."
    )
    save(fig, out, "convergence", drawn, title, "convergence by round", note)


def rounds_frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    """Per-round rows (`tables.rounds_rows` plus a `cell`) as a frame; numeric where possible."""
    frame = pd.DataFrame(rows)
    for column, _ in METRICS:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame if len(frame) else pd.DataFrame(columns=["cell", "round"])
