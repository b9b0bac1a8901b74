"""A sweep in the terminal: the live progress bar, and the report printed at the end."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from assembly.sweeps import stats
from assembly.sweeps.sweep import CELLS, FIGURES, RESULTS, SweepReport, Tally


class SweepProgress:
    """A rich progress bar: runs done/total, elapsed, ETA, then member-turns (calls and
    spend for LLM runs) as they happen, outcomes so far, and, once every run is done,
    which table or figure is being written.

    Called with a `Tally` (from the sweep's thread and from its progress ticker) and,
    through `stage`, with what post-processing is doing."""

    def __init__(self, console: Console, name: str) -> None:
        self.progress = Progress(
            TextColumn(f"[bold]{escape(name)}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[tally]}"),
            console=console,
            refresh_per_second=4,
        )
        self.task: Any = None
        self.tally: Tally | None = None

    def __enter__(self) -> SweepProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def __call__(self, tally: Tally) -> None:
        self.tally = tally
        if self.task is None:
            # Runs kept from an earlier attempt start the bar without feeding the
            # speed estimate, so the ETA reflects only runs executed now.
            self.task = self.progress.add_task("", total=tally.total, completed=tally.done, tally=tally.line())
        else:
            self.progress.update(self.task, completed=tally.done, tally=tally.line())

    def stage(self, text: str) -> None:
        """Show what post-processing is doing; an empty text shows the tally again."""
        if self.task is not None:
            shown = escape(text) if text else (self.tally.line() if self.tally else "")
            self.progress.update(self.task, tally=shown)


def iter_failed(report: SweepReport) -> Iterator[tuple[str, str]]:
    if report.results.empty or "status" not in report.results:
        return
    failed = report.results[report.results["status"] == "failed"]
    for _, row in failed.iterrows():
        yield str(row["run"]), str(row.get("error"))


def _pct(rate: float, lo: float, hi: float) -> str:
    if pd.isna(rate):
        return "–"
    return f"{rate:.0%} ({lo * 100:.0f}–{hi * 100:.0f})"


def _short_label(cell: str) -> str:
    """`members=8,protocol.awareness=none_exist` -> `members=8, awareness=none_exist` (for the terminal)."""
    return re.sub(r"(^|,)[A-Za-z0-9_.]*\.([A-Za-z0-9_]+)=", r"\1\2=", cell).replace(",", ", ")


def speed(report: SweepReport) -> str:
    """How much ran and how fast; a sweep that ran nothing new says so, not "0.0 runs/s"."""
    t = report.tally
    ran = t.done - t.skipped
    if ran == 0:
        return f"nothing to run: all {t.done} runs were already complete" if t.done else "no runs"
    rate = ran / report.wall_s if report.wall_s > 0 else 0.0
    return f"{ran} runs in {report.wall_s:.1f} s ({rate:.1f} runs/s)"


def quiet_line(report: SweepReport) -> str:
    """The one line `assembly sweep -q` prints."""
    t = report.tally
    return f"{t.done}/{t.total} runs, {t.failed} failed, {t.line()} -> {report.out}"


def print_report(console: Console, report: SweepReport) -> None:
    """The per-cell table and where everything was written."""
    from rich.table import Table

    from assembly.inspection.console import safe

    cells = report.cells
    if not cells.empty:
        table = Table(title="outcome rates, % (95% Wilson interval)", title_justify="left", box=None)
        # Figures never wrap or shrink; long cell labels wrap instead.
        table.add_column("cell", overflow="fold")
        for col in ("n", "valid", "invalid", "no decision", "rounds mean/median"):
            table.add_column(col, justify="right", no_wrap=True, min_width=len(col) if col != "n" else 3)
        for _, c in cells.iterrows():
            failed = f" (+{int(c['failed'])} failed)" if c["failed"] else ""
            table.add_row(
                safe(_short_label(str(c["cell"]))),
                f"{int(c['n'])}{failed}",
                _pct(c["valid_decision_rate"], c["valid_decision_lo"], c["valid_decision_hi"]),
                _pct(c["invalid_decision_rate"], c["invalid_decision_lo"], c["invalid_decision_hi"]),
                _pct(c["no_decision_rate"], c["no_decision_lo"], c["no_decision_hi"]),
                "–" if pd.isna(c["rounds_mean"]) else f"{c['rounds_mean']:.1f} / {c['rounds_median']:g}",
            )
        console.print(table)
        causes = {k: int(cells[f"cause_{k}_k"].sum()) for k in stats.CAUSES}
        if any(causes.values()):
            console.print(
                "no decision, by cause: " + ", ".join(f"{k} {v}" for k, v in causes.items() if v),
                highlight=False,
                markup=False,
            )
    t = report.tally
    console.print(
        f"{t.done}/{t.total} runs ({t.skipped} kept from before, {t.failed} failed); {speed(report)}; {t.line()}",
        highlight=False,
        markup=False,
    )
    for run, error in list(iter_failed(report))[:10]:
        console.print(f"[red]failed[/] {safe(run)}: {safe(error)}")
    if report.stopped_for_cost:
        console.print(
            f"[yellow]stopped at the spend limit:[/] {report.not_started} runs not started; raise "
            "--max-cost and add --resume to finish"
        )
    for note in report.notes:
        console.print(f"[yellow]note:[/] {safe(note)}")
    figures = ""
    if report.figures:
        kept = " (unchanged inputs: kept, not redrawn)" if report.figures_kept else ""
        figures = f"\nfigures: {safe(report.out / FIGURES)}/{kept}"
    console.print(f"tables: {safe(report.out / RESULTS)}, {safe(report.out / CELLS)}{figures}")
    console.print("every column and figure is defined in docs/figures.md", style="dim", highlight=False)
