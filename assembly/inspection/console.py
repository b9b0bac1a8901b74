"""Terminal rendering of a run: the live progress display and the end-of-run table.

The live display is a transcript listener: it sees the same events that are written
to disk and computes its figures with the protocol's own metric functions; which
figures the rounds table shows, and how they are headed, is the protocol's
presentation. Member-written text is printed through `safe` (markup escaped, acting
characters shown, keys removed), so a member cannot inject markup or terminal escapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from assembly.core.actions import by_kind
from assembly.core.events import Disclosure, RoundEnded, RoundStarted, RunStarted, Seated, Tally, Turn
from assembly.core.metrics import liveness
from assembly.core.presentation import Figure, Presentation, safe
from assembly.protocols import protocol_class

__all__ = ["LiveProgress", "fmt", "print_summary", "rounds_table", "safe"]


class LiveProgress:
    """Round, votes cast, quorum and dispersion while a run goes."""

    def __init__(self, console: Console, max_rounds: int) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]round"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=console,
        )
        self.task = self.progress.add_task("", total=max_rounds)
        self.live = Live(Group(self.progress, Table()), console=console, refresh_per_second=8, transient=True)
        self.started: RunStarted | None = None
        self.seated: Seated | None = None
        self.round_events: list[Any] = []
        self.history: list[Any] = []
        self.phase_counts: dict[str, tuple[int, int]] = {}  # phase -> (asked, answered) this round
        self.rows: list[dict[str, Any]] = []
        self.turns = 0
        self.failed = 0

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def __call__(self, event: Any) -> None:
        if isinstance(event, RunStarted):
            self.started = event
        elif isinstance(event, Seated):
            self.seated = event
        elif isinstance(event, RoundStarted):
            self.history.extend(self.round_events)
            self.round_events = [event]
            self.phase_counts = {}
            self.progress.update(self.task, description=f"round {event.round}")
        elif isinstance(event, Turn | Tally | Disclosure):
            self.round_events.append(event)
            if isinstance(event, Turn):
                self.turns += 1
                self.failed += event.status != "ok"
                # Counted as they come: rescanning the round per event is quadratic in N.
                asked, answered = self.phase_counts.get(event.phase, (0, 0))
                self.phase_counts[event.phase] = (asked + 1, answered + (event.status == "ok"))
                self.progress.update(
                    self.task,
                    description=f"round {event.round}: {event.phase} "
                    f"({answered + (event.status == 'ok')}/{asked + 1} "
                    "answered)",
                )
        elif isinstance(event, RoundEnded) and self.started and self.seated:
            proto = protocol_class(self.started.protocol)
            figs = proto.round_figures(self.round_events, self.started, self.seated, self.history)
            turns = [e for e in self.round_events if isinstance(e, Turn)]
            self.rows.append({"round": event.round, **figs, **liveness(turns, by_kind(proto.actions))})
            self.progress.update(
                self.task, completed=event.round, description=f"{self.turns} turns, {self.failed} failed"
            )
            self.live.update(Group(self.progress, rounds_table(self.rows[-8:], proto.presentation)))


def fmt(v: Any, digits: int = 2, escape: Callable[[str], str] = safe) -> str:
    """A figure for people: dash for missing, yes/no, fixed decimals, escaped text."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return escape(str(v))


# The rounds table: the round, the protocol's own figures (its presentation's
# `terminal_figures`), then the liveness events every run has. Columns are shown when
# present; short headers keep the table within an 80-column terminal.
_ROUND = Figure("round", "rd", "round")
_LIVENESS = (
    Figure("turn_timeouts", "t/o", "timeouts"),
    Figure("malformed", "malf", "malformed"),
    Figure("provider_errors", "err", "provider errors"),
    Figure("abstentions", "abst", "abstentions"),
)


def rounds_table(rows: list[dict[str, Any]], presentation: Presentation) -> Table:
    figures = (_ROUND, *presentation.terminal_figures, *_LIVENESS)
    cols = [f for f in figures if any(f.key in r for r in rows)]
    legend = ", ".join(f"{f.header} {f.meaning}" for f in cols if f.meaning is not None)
    table = Table(box=None, pad_edge=False, caption=legend, caption_justify="left")
    for f in cols:
        table.add_column(f.header, justify="right", no_wrap=True, overflow="ellipsis")
    for r in rows:
        table.add_row(*(fmt(r.get(f.key)) for f in cols))
    return table


def print_summary(console: Console, summary: dict[str, Any], run_dir: str) -> None:
    style = {"valid_decision": "green", "invalid_decision": "yellow", "no_decision": "red"}.get(
        summary.get("outcome") or "", "red"
    )
    head = Table(show_header=False, box=None)
    head.add_column(style="bold")
    head.add_column()
    head.add_row("outcome", f"[{style}]{summary.get('outcome') or summary.get('status')}[/]")
    if summary.get("cause"):
        head.add_row("cause", safe(summary["cause"]))
    if summary.get("decision") is not None:
        head.add_row("decision", safe(summary["decision"]))
    head.add_row("reason", safe(summary.get("reason") or ""))
    head.add_row("rounds / members / seed", f"{summary['rounds']} / {summary['members']} / {summary['seed']}")
    t = summary["totals"]
    head.add_row(
        "liveness",
        f"{t['turn_timeouts']} timeouts, {t['malformed']} malformed, "
        f"{t['provider_errors']} provider errors, {t['abstentions']} abstentions, "
        f"{t['retries']} retries",
    )
    if t.get("calls"):
        head.add_row(
            "model calls",
            f"{t['calls']} ({t['cache_hits']} cached), {t['prompt_tokens']} in / "
            f"{t['completion_tokens']} out tokens, ${t['cost_usd']:.4f}",
        )
    for k, v in summary.get("figures", {}).items():
        head.add_row(k.replace("_", " "), fmt(v))
    head.add_row("run folder", safe(run_dir))
    console.print(head)
    console.print(rounds_table(summary["per_round"], protocol_class(summary["protocol"]).presentation))
