"""The run report's charts (matplotlib, as data URLs): convergence, liveness,
disclosure, and the position matrix of assemblies too large for a table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assembly.core.presentation import Series
from assembly.inspection.report_html import PALETTE, numeric, png, pyplot


def convergence_chart(per_round: Sequence[dict[str, Any]], lines: Sequence[Series]) -> str | None:
    """The protocol's convergence figures over rounds (its presentation's `chart_series`).
    Figures on another scale than shares (the consensus game's spread of values) get
    their own axis on the right."""
    series = [s for s in lines if any(numeric(r.get(s.key)) for r in per_round)]
    if not series:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.6, 3.6))
    right = ax.twinx() if any(not s.share for s in series) else None
    colors = iter(PALETTE)
    handles = []
    for s in series:
        xs = [r["round"] for r in per_round if numeric(r.get(s.key))]
        ys = [float(r[s.key]) for r in per_round if numeric(r.get(s.key))]
        target = ax if s.share or right is None else right
        handles += target.plot(xs, ys, s.style, label=s.label, linewidth=1.8, markersize=5, color=next(colors))
    ax.set_xlabel("round")
    ax.set_xticks([r["round"] for r in per_round])
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("share / similarity")
    if right is not None:
        right.set_ylim(bottom=0)
        right.set_ylabel("value spread")
    ax.grid(alpha=0.3)
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.12 if right else 1.01, 1.0), frameon=False, fontsize=9
    )
    ax.set_title("Action and idea convergence by round", fontsize=11)
    return png(fig)


def liveness_chart(per_round: Sequence[dict[str, Any]]) -> str | None:
    kinds = [
        ("turn_timeouts", "timeouts", "#cf222e"),
        ("throttled", "throttled (tool capacity)", "#0969da"),
        ("malformed", "malformed", "#9a6700"),
        ("provider_errors", "provider errors", "#8250df"),
        ("abstentions", "abstentions", "#8c959f"),
    ]
    if not any(r.get(k) for r in per_round for k, _, _ in kinds):
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.6, 2.8))
    rounds = [r["round"] for r in per_round]
    width = 0.2
    for i, (k, label, color) in enumerate(kinds):
        ax.bar(
            [x + (i - 1.5) * width for x in rounds], [r.get(k, 0) for r in per_round], width, label=label, color=color
        )
    ax.set_xlabel("round")
    ax.set_ylabel("turns")
    ax.set_xticks(rounds)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=9)
    ax.set_title("Liveness events by round", fontsize=11)
    return png(fig)


def disclosure_chart(rounds: Sequence[int], cumulative: dict[str, list[int]], dealt: dict[str, int]) -> str | None:
    if not rounds or not dealt:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.6, 2.8))
    styles = {"all": ("all facts", "#0b5cad"), "unshared": ("unshared facts (one holder)", "#cf222e")}
    for key, (label, color) in styles.items():
        if dealt.get(key):
            ax.plot(rounds, cumulative[key], "-o", color=color, label=f"{label}: disclosed")
            ax.axhline(dealt[key], color=color, linestyle=":", linewidth=1, label=f"{label}: dealt")
    from matplotlib.ticker import MaxNLocator

    ax.set_ylim(-0.3, max(dealt.values()) + 0.6)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round")
    ax.set_ylabel("distinct facts")
    ax.set_xticks(list(rounds))
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=9)
    ax.set_title("Private facts brought into the deliberation (cumulative)", fontsize=11)
    return png(fig)


def matrix_image(
    members: Sequence[str], rounds: Sequence[int], cells: dict[tuple[str, int], Any], colors: dict[str, str]
) -> str:
    """The position matrix as an image, for assemblies too large for a table."""
    import numpy as np
    from matplotlib.colors import ListedColormap

    plt = pyplot()
    keys = list(colors)
    grid = np.full((len(members), len(rounds)), -1.0)
    for i, m in enumerate(members):
        for j, r in enumerate(rounds):
            v = cells.get((m, r))
            if isinstance(v, str) and v in colors:
                grid[i, j] = keys.index(v)
    cmap = ListedColormap(["#ffffff", *colors.values()])
    fig, ax = plt.subplots(figsize=(min(12, 2 + 0.5 * len(rounds)), 6))
    ax.imshow(grid + 1, aspect="auto", cmap=cmap, vmin=0, vmax=len(keys), interpolation="nearest")
    ax.set_xlabel("round")
    ax.set_ylabel("member (seat order)")
    ax.set_xticks(range(len(rounds)), [str(r) for r in rounds])
    return png(fig)
