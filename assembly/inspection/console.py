"""Terminal rendering of a run: the live progress display and the end-of-run table.

The live display is a transcript listener: it sees the same events that are written
to disk and computes its figures with the protocol's own metric functions.
Member-written text is printed with `rich.markup.escape` and control characters
stripped, so a member cannot inject markup or terminal escapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from assembly.core.events import AnyEvent, Disclosure, RoundEnded, RoundStarted, RunStarted, Seated, Tally, Turn
from assembly.core.metrics import liveness
from assembly.protocols import protocol_class

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe(text: Any) -> str:
    """Member text made inert for the terminal: no rich markup, no escape sequences."""
    return escape(_CONTROL.sub("", str(text)))


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
        self.round_events: list[AnyEvent] = []
        self.history: list[AnyEvent] = []
        self.phase_counts: dict[str, tuple[int, int]] = {}  # phase -> (asked, answered) this round
        self.rows: list[dict[str, Any]] = []
        self.turns = 0
        self.failed = 0

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def __call__(self, event: AnyEvent) -> None:
        if isinstance(event, RunStarted):
            self.started = event
        elif isinstance(event, Seated):
            self.seated = event
        elif isinstance(event, RoundStarted):
            self.history.extend(self.round_events)
            self.round_events = [event]
            self.phase_counts = {}
            self.progress.update(self.task, description=f"round {event.round}: speaking")
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
            figs = protocol_class(self.started.protocol).round_figures(
                self.round_events, self.started, self.seated, self.history
            )
            turns = [e for e in self.round_events if isinstance(e, Turn)]
            self.rows.append({"round": event.round, **figs, **liveness(turns)})
            self.progress.update(
                self.task, completed=event.round, description=f"{self.turns} turns, {self.failed} failed"
            )
            self.live.update(Group(self.progress, rounds_table(self.rows[-8:])))


def fmt(v: Any, digits: int = 2, escape: Callable[[str], str] = safe) -> str:
    """A figure for people: dash for missing, yes/no, fixed decimals, escaped text."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return escape(str(v))


# Columns shown when present, in this order; protocols add their own figures.
_COLUMNS = (
    "round",
    "speakers",
    "dispersion",
    "modal_share",
    "idea_similarity",
    "disclosures",
    "ballots_counted",
    "quorum_met",
    "support",
    "honest_mean",
    "honest_sd",
    "honest_modal_share",
    "stop_votes",
    "turn_timeouts",
    "malformed",
    "provider_errors",
    "abstentions",
)


# Short headers so the per-round table fits an 80-column terminal.
_HEADERS = {
    "round": "rd",
    "speakers": "spoke",
    "dispersion": "disp",
    "modal_share": "modal",
    "disclosures": "discl",
    "ballots_counted": "votes",
    "quorum_met": "quorum",
    "leading": "leading",
    "support": "supp",
    "honest_mean": "h.mean",
    "honest_sd": "h.sd",
    "honest_modal_share": "h.modal",
    "stop_votes": "stops",
    "turn_timeouts": "t/o",
    "malformed": "malf",
    "provider_errors": "err",
    "abstentions": "abst",
    "idea_similarity": "idea",
}


_MEANING = {
    "round": "round",
    "dispersion": "dispersion of support",
    "modal_share": "share on the modal position",
    "idea_similarity": "TF-IDF similarity of messages",
    "disclosures": "facts disclosed",
    "ballots_counted": "ballots counted",
    "support": "leading support",
    "honest_mean": "honest mean value",
    "honest_sd": "honest sd",
    "honest_modal_share": "honest share on the modal value",
    "stop_votes": "stop votes",
    "turn_timeouts": "timeouts",
    "malformed": "malformed",
    "provider_errors": "provider errors",
    "abstentions": "abstentions",
}


def rounds_table(rows: list[dict[str, Any]]) -> Table:
    cols = [c for c in _COLUMNS if any(c in r for r in rows)]
    legend = ", ".join(f"{_HEADERS[c]} {_MEANING[c]}" for c in cols if c in _MEANING)
    table = Table(box=None, pad_edge=False, caption=legend, caption_justify="left")
    for c in cols:
        table.add_column(
            _HEADERS.get(c, c.replace("_", " ")),
            justify="right",
            no_wrap=True,
            overflow="ellipsis",
            max_width=18 if c == "leading" else None,
        )
    for r in rows:
        table.add_row(*(fmt(r.get(c)) for c in cols))
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
    console.print(rounds_table(summary["per_round"]))
