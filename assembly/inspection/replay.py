"""`assembly replay`: walk through a transcript round by round, and check its figures.

The walk-through is built from the transcript alone: each round's framing, every
member's message, position and disclosures, liveness events (marked, never hidden),
the facilitator's candidates, the vote with quorum and support, the round's figures
(recomputed with `metrics.summarize`, the same function that wrote summary.json),
and the outcome with its cause. A live run can be followed as it is written.

How each action reads is the run's protocol's presentation (`core.presentation`),
found through the registry by the protocol named in `run_started`. Everything a
member wrote is untrusted text: it passes through `safe`, so rich markup and
terminal escape sequences in a message are printed inert.

`check` recomputes every figure from the transcript and compares it with the run's
summary.json: a published figure that the transcript does not support is a bug or
an edit, and either way the researcher must know.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from assembly import launch
from assembly.core import metrics
from assembly.core.errors import UserError
from assembly.core.events import (
    READABLE_VERSIONS,
    Disclosure,
    RoundEnded,
    RoundStarted,
    RunEnded,
    RunInterrupted,
    RunStarted,
    Seated,
    SeatedMember,
    Tally,
    Turn,
)
from assembly.core.presentation import Presentation
from assembly.core.transcript import SUMMARY, TRANSCRIPT, Transcript, TranscriptError, parse_event, read_transcript
from assembly.inspection.console import fmt, safe
from assembly.protocols import protocol_class

FAILURE_MARK = {
    "timeout": "⏱ TIMEOUT",
    "malformed": "✗ MALFORMED",
    "provider_error": "✗ PROVIDER ERROR",
    "skipped": "– SKIPPED",
}
OUTCOME_STYLE = {"valid_decision": "green", "invalid_decision": "yellow", "no_decision": "red"}
# Per-round figures that count liveness events: shown in red when non-zero.
LIVENESS_KEYS = ("turn_timeouts", "malformed", "provider_errors", "abstentions", "retries")
# Model usage figures: noise in a sim run, so shown only when non-zero.
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "cost_usd")


class ReplayError(UserError):
    """A transcript or run folder that cannot be replayed as asked."""


def open_transcript(path: Path | str) -> Transcript:
    try:
        transcript = read_transcript(path)
        transcript.started  # noqa: B018 - raises TranscriptError when the header is missing
    except TranscriptError as exc:
        raise ReplayError(str(exc)) from None
    if not any(isinstance(e, Seated) for e in transcript.events):
        raise ReplayError(f"{transcript.path}: no seated event; the run died before it began")
    return transcript


# ----------------------------------------------------------------------------- structure


@dataclass
class RoundRecord:
    round: int
    events: list[Any] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return any(isinstance(e, RoundEnded) for e in self.events)

    @property
    def started(self) -> RoundStarted | None:
        return next((e for e in self.events if isinstance(e, RoundStarted)), None)

    @property
    def turns(self) -> list[Turn]:
        return [e for e in self.events if isinstance(e, Turn)]


@dataclass
class RunRecord:
    """A transcript cut into its header, rounds and ending."""

    started: RunStarted
    seated: Seated
    rounds: dict[int, RoundRecord]
    end: RunEnded | None
    interrupted: RunInterrupted | None

    @classmethod
    def of(cls, events: Sequence[Any]) -> RunRecord:
        started: RunStarted | None = None
        seated: Seated | None = None
        end = interrupted = None
        for e in events:
            if isinstance(e, RunStarted):
                started = e
            elif isinstance(e, Seated):
                seated = e
            elif isinstance(e, RunEnded):
                end = e
            elif isinstance(e, RunInterrupted):
                interrupted = e
        rounds = {r: RoundRecord(r, evs) for r, evs in metrics.events_by_round(events).items()}
        if started is None or seated is None:
            raise ReplayError("the transcript has no run_started/seated header")
        return cls(started, seated, rounds, end, interrupted)

    @property
    def presentation(self) -> Presentation:
        """How the run's protocol shows its actions."""
        return protocol_class(self.started.protocol).presentation


# ----------------------------------------------------------------------------- formatting


def _num(v: Any) -> str:
    return fmt(v, digits=3)


def describe_action(action: dict[str, Any] | None, presentation: Presentation, rule: str | None = None) -> str:
    """One action as inert rich markup (member text escaped), as its protocol shows it.

    `rule`: the decision rule a ballot was cast under, to show only what it reads."""
    if not action:
        return ""
    return presentation.describe(action, rule)


def describe_turn(turn: Turn, presentation: Presentation, rule: str | None = None) -> str:
    """A turn's action, or its failure marked so that it cannot be overlooked."""
    if turn.status != "ok":
        mark = FAILURE_MARK.get(turn.status, turn.status.upper())
        detail = f" [dim]{safe(turn.detail)}[/]" if turn.detail else ""
        return f"[bold red]{mark}[/]{detail}"
    text = describe_action(turn.action, presentation, rule)
    if len(turn.attempts) > 1:
        text += f" [yellow](after {len(turn.attempts)} attempts)[/]"
    return text


def header(run: RunRecord, transcript: Transcript) -> RenderableType:
    s = run.started
    sc = s.scenario
    roles: dict[str, int] = {}
    for m in run.seated.members:
        roles[m.role] = roles.get(m.role, 0) + 1
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("run", f"{safe(s.run_id)} [dim](key {safe(s.run_key)}, schema v{s.schema_version})[/]")
    table.add_row("scenario", f"{safe(sc.get('name', '?'))} · protocol {safe(s.protocol)} · seed {s.seed}")
    table.add_row("question", safe(sc.get("question", "")))
    if sc.get("options"):
        table.add_row("options", ", ".join(safe(o.get("id")) for o in sc["options"]))
    table.add_row(
        "seated", f"{len(run.seated.members)} members: " + ", ".join(f"{n} {safe(r)}" for r, n in roles.items())
    )
    if s.parent:
        table.add_row("continues", safe(json.dumps(s.parent, sort_keys=True)))
    table.add_row("transcript", safe(transcript.path))
    return Panel(table, title="replay", title_align="left")


def _figures_line(row: dict[str, Any] | None) -> str:
    if not row:
        return "[dim]no figures: the round did not end[/]"
    parts = []
    for k, v in row.items():
        if k == "round" or (k in USAGE_KEYS and not v):
            continue
        label = k.replace("_", " ")
        if k in LIVENESS_KEYS and v:
            parts.append(f"[bold red]{label} {_num(v)}[/]")
        else:
            parts.append(f"{label} {_num(v)}")
    return "[bold]figures[/] " + " · ".join(parts)


def _tally(t: Tally) -> str:
    quorum = "[green]quorum met ✓[/]" if t.quorum_met else "[bold red]quorum NOT met ✗[/]"
    decided = f"[bold green]decided: {safe(t.winner)}[/]" if t.decided else "[yellow]no decision this round[/]"
    lines = [f"[bold]vote[/] ({safe(t.rule)}): {t.counted}/{t.seated} ballots counted · {quorum} · {decided}"]
    for cand in t.candidates:
        share = t.support.get(cand, 0.0)
        bar = "█" * round(share * 20)
        lead = " [bold]← leading[/]" if cand == t.leading else ""
        lines.append(f"  {safe(cand):<24} {share:6.1%} [cyan]{bar}[/]{lead}")
    if t.detail:
        lines.append(f"  [dim]{safe(t.detail)}[/]")
    return "\n".join(lines)


def round_view(rec: RoundRecord, run: RunRecord, figures: dict[str, Any] | None) -> RenderableType:
    parts: list[RenderableType] = []
    title = f"Round {rec.round}" + ("" if rec.complete else " (incomplete: no round_ended event)")
    parts.append(Rule(title, style="bold" if rec.complete else "bold red"))
    started = rec.started
    shown = run.presentation
    if started is not None and started.framing:
        parts.append(Panel(safe(started.framing), title=shown.framing_title, title_align="left", border_style="dim"))
    seat_of = {m.id: m for m in run.seated.members}
    member_turns = [t for t in rec.turns if t.member in seat_of]
    other_turns = [t for t in rec.turns if t.member not in seat_of]
    phases = list(dict.fromkeys(t.phase for t in member_turns))
    rule = next((e.rule for e in rec.events if isinstance(e, Tally)), None)
    disclosed: dict[str, list[str]] = {}
    for e in rec.events:
        if isinstance(e, Disclosure):
            disclosed.setdefault(e.member, []).append(e.fact)
    if member_turns:
        cells: dict[str, dict[str, list[Turn]]] = {}
        for t in member_turns:
            cells.setdefault(t.member, {}).setdefault(t.phase, []).append(t)
        table = Table(box=None, pad_edge=False, leading=1, expand=True)
        table.add_column("member", no_wrap=True)
        for ph in phases:
            table.add_column(safe(ph), ratio=3 if ph in shown.contribution_phases else 1)
        for m in run.seated.members:
            if m.id not in cells:
                continue
            failed = any(t.status != "ok" for ts in cells[m.id].values() for t in ts)
            who = f"{'[bold red]⚠ [/]' if failed else ''}{safe(m.id)}\n[dim]{safe(m.role)}[/]"
            row = [who]
            for ph in phases:
                text = "\n".join(describe_turn(t, shown, rule) for t in cells[m.id].get(ph, ()))
                if ph == phases[0] and m.id in disclosed:
                    text += "\n[magenta]discloses " + ", ".join(safe(f) for f in disclosed[m.id]) + "[/]"
                row.append(text)
            table.add_row(*row)
        parts.append(table)
    for t in other_turns:
        parts.append(
            Panel(
                describe_turn(t, shown),
                title=f"{safe(t.member)} · {safe(t.phase)}",
                title_align="left",
                border_style="red" if t.status != "ok" else "blue",
            )
        )
    for e in rec.events:
        if isinstance(e, Tally):
            parts.append(Text.from_markup(_tally(e)))
    failures = [t for t in rec.turns if t.status != "ok"]
    if failures:
        listed = ", ".join(f"{safe(t.member)} {safe(t.phase)} {t.status}" for t in failures)
        parts.append(Text.from_markup(f"[bold red]liveness:[/] {len(failures)} failed turns ({listed})"))
    parts.append(Text.from_markup(_figures_line(figures)))
    return Group(*parts)


def ending(run: RunRecord, transcript: Transcript, summary: dict[str, Any] | None) -> RenderableType:
    parts: list[RenderableType] = []
    if transcript.torn is not None:
        parts.append(
            Text.from_markup(
                f"[bold yellow]⚠ torn last line[/]: the transcript ends in {len(transcript.torn)} characters "
                "without a newline (the writer was cut off mid-line, e.g. killed); that line is ignored."
            )
        )
    if run.end is not None:
        e = run.end
        style = OUTCOME_STYLE.get(e.outcome, "red")
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        table.add_row("outcome", f"[bold {style}]{e.outcome}[/]")
        if e.cause:
            table.add_row("cause", safe(e.cause))
        if e.decision is not None:
            table.add_row("decision", safe(e.decision))
        table.add_row("reason", safe(e.reason))
        for k, v in (summary or {}).get("figures", {}).items():
            table.add_row(k.replace("_", " "), _num(v))
        parts.append(Panel(table, title="outcome", title_align="left", border_style=style))
    elif run.interrupted is not None:
        parts.append(
            Panel(
                f"interrupted in round {run.interrupted.round}: {safe(run.interrupted.reason)}\n"
                f"continue it with: assembly resume {safe(transcript.path.parent)}",
                title="outcome",
                title_align="left",
                border_style="yellow",
            )
        )
    else:
        parts.append(
            Panel(
                "no run_ended event: the run is still going (use --follow) or was killed.\n"
                f"continue it with: assembly resume {safe(transcript.path.parent)}",
                title="outcome",
                title_align="left",
                border_style="yellow",
            )
        )
    return Group(*parts)


def walkthrough(transcript: Transcript, only_round: int | None = None) -> Iterator[RenderableType]:
    """The whole replay as renderables, in order (the CLI pages them when long)."""
    run = RunRecord.of(transcript.events)
    if only_round is not None and only_round not in run.rounds:
        have = f"rounds {min(run.rounds)}–{max(run.rounds)}" if run.rounds else "no rounds"
        raise ReplayError(f"round {only_round} is not in this transcript ({have})")
    summary = launch.summarize(transcript.events)
    rows = {row["round"]: row for row in summary["per_round"]}
    yield header(run, transcript)
    for r in sorted(run.rounds):
        if only_round is None or r == only_round:
            yield round_view(run.rounds[r], run, rows.get(r))
    if only_round is None:
        yield ending(run, transcript, summary)


def follow(path: Path, poll_s: float = 0.5, appear_s: float = 30.0) -> Iterator[RenderableType]:
    """Replay a run while it is written: each round as soon as it ends.

    Waits up to `appear_s` for a run that is just starting to create its transcript.
    Stops at the run's end (or interruption); a run killed without either keeps
    this waiting, like `tail -f`, until the user stops it.
    """
    import time

    from assembly.core.transcript import iter_lines_following

    file = path if path.suffix == ".jsonl" else path / TRANSCRIPT
    deadline = time.monotonic() + appear_s
    while not file.exists():
        if time.monotonic() >= deadline:
            raise ReplayError(f"{file}: no transcript here (waited {appear_s:g}s for a run to start)")
        time.sleep(min(poll_s, 0.2))
    events: list[Any] = []
    run: RunRecord | None = None
    live = Transcript(path=file, events=events)
    for n, line in enumerate(iter_lines_following(file, poll_s)):
        if not line.strip():
            continue
        if n == 0:
            _check_version(file, line)
        try:
            event = parse_event(line)
        except ValueError as exc:
            raise ReplayError(f"{file}:{n + 1}: not a valid event ({exc})") from None
        events.append(event)
        if run is None:
            if any(isinstance(e, Seated) for e in events):
                run = RunRecord.of(events)
                yield header(run, live)
            continue
        if isinstance(event, RoundEnded):
            run = RunRecord.of(events)
            rows = {row["round"]: row for row in launch.summarize(events)["per_round"]}
            yield round_view(run.rounds[event.round], run, rows.get(event.round))
        elif isinstance(event, RunEnded | RunInterrupted):
            run = RunRecord.of(events)
            yield ending(run, live, launch.summarize(events))
            return


def _check_version(file: Path, line: str) -> None:
    try:
        version = json.loads(line).get("schema_version")
    except (json.JSONDecodeError, AttributeError):
        return
    if version is not None and version not in READABLE_VERSIONS:
        raise ReplayError(
            f"{file}: transcript schema version {version}; this assembly reads {sorted(READABLE_VERSIONS)}"
        )


# ----------------------------------------------------------------------------- --check


@dataclass
class CheckResult:
    run_dir: Path
    differences: list[str]
    torn: bool

    @property
    def ok(self) -> bool:
        return not self.differences


def check(run: Path | str) -> CheckResult:
    """Recompute summary.json from the transcript and list every difference."""
    run_dir = Path(run)
    if run_dir.is_file():
        run_dir = run_dir.parent
    transcript = open_transcript(run_dir)
    summary_path = run_dir / SUMMARY
    if not summary_path.exists():
        raise ReplayError(
            f"{summary_path}: no summary.json to check (the run has not finished; `assembly resume` completes it)"
        )
    try:
        published = json.loads(summary_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReplayError(f"{summary_path}: not valid JSON ({exc})") from None
    # Through JSON, so tuples and floats compare exactly as they were written.
    recomputed = json.loads(json.dumps(launch.summarize(transcript.events)))
    return CheckResult(run_dir, list(diff(published, recomputed)), transcript.torn is not None)


def diff(published: Any, recomputed: Any, path: str = "") -> Iterator[str]:
    """Differences between summary.json (published) and the transcript's figures."""
    if isinstance(published, dict) and isinstance(recomputed, dict):
        for k in published.keys() | recomputed.keys():
            sub = f"{path}.{k}" if path else str(k)
            if k not in recomputed:
                yield f"{sub}: in summary.json ({_show(published[k])}) but not supported by the transcript"
            elif k not in published:
                yield f"{sub}: missing from summary.json (transcript gives {_show(recomputed[k])})"
            else:
                yield from diff(published[k], recomputed[k], sub)
    elif isinstance(published, list) and isinstance(recomputed, list) and len(published) == len(recomputed):
        for i, (a, b) in enumerate(zip(published, recomputed, strict=True)):
            yield from diff(a, b, f"{path}[{i}]")
    elif published != recomputed or type(published) is not type(recomputed):
        yield f"{path}: summary.json has {_show(published)}, the transcript gives {_show(recomputed)}"


def _show(v: Any) -> str:
    text = json.dumps(v, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def seat_of(run: RunRecord, member_id: str) -> SeatedMember:
    seats = [*run.seated.members, *([run.seated.facilitator] if run.seated.facilitator else [])]
    for s in seats:
        if s.id == member_id:
            return s
    import difflib

    hint = difflib.get_close_matches(member_id, [s.id for s in seats], n=1)
    raise ReplayError(
        f"no member {member_id!r} in this run"
        + (f" (did you mean {hint[0]!r}?)" if hint else f"; members are {seats[0].id}…{seats[-1].id}")
    )
