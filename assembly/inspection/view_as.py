"""`assembly replay --as MEMBER`: exactly what one member was given, turn by turn.

Views are not reconstructed by a second implementation. The run's own protocol is
driven again through the engine's own round loop (`Engine.run`) against the recorded
transcript: where the live engine asked members to act, the recorded turns are handed
back instead of calling anyone, and every recorded event is folded into a fresh
`ViewBuilder` with `Engine.observe`, in transcript order, exactly as the live engine
folded it. Each view is therefore taken at the same moment (after the same events)
by the same `ViewBuilder.view` call the engine made, and the `Request` is the one the
protocol built, so an LLM member's prompt can be re-rendered exactly with the
protocol's own `prompt(view, request)`.

If the protocol code asks for something the transcript does not contain (a
transcript from an incompatible version), replay stops with a clear message rather
than showing a view the member never had.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from assembly.core.actions import Action
from assembly.core.engine import BudgetSpent, Engine
from assembly.core.events import Event, RunInterrupted, RunStarted, Seated, SeatedMember, Turn
from assembly.core.member import Request
from assembly.core.presentation import Presentation
from assembly.core.prompt import Prompt
from assembly.core.protocol import Protocol
from assembly.core.transcript import Transcript
from assembly.core.view import View, ViewBuilder
from assembly.inspection.console import safe
from assembly.inspection.replay import ReplayError, RunRecord, describe_action, describe_turn, seat_of
from assembly.protocols import protocol_class
from assembly.scenario.model import Scenario


@dataclass(frozen=True)
class Seen:
    """One turn of the watched member: what it was given and what it answered."""

    request: Request
    view: View | None  # None: the phase was cut (round time spent) before anyone was asked
    turn: Turn
    disclosed_by: dict[str, tuple[int, str]]  # heard fact -> (round, member who disclosed it)
    prompt: Prompt | None = None
    prompt_note: str | None = None
    answer_schema: str | None = None


@dataclass
class Rebuilt:
    seat: SeatedMember
    seen: list[Seen]
    stopped: str | None  # why replay ended before a run_ended event, if it did


class _EndOfRecord(Exception):
    """The transcript has no more events (a live, killed or interrupted run)."""


def _key(e: Any) -> tuple[Any, ...]:
    return (
        getattr(e, "type", type(e).__name__),
        getattr(e, "round", None),
        getattr(e, "member", None),
        getattr(e, "phase", None),
        getattr(e, "fact", None),
    )


def _describe(e: Any) -> str:
    parts = [str(p) for p in _key(e) if p is not None]
    return " ".join(parts)


class _TranscriptEngine(Engine):
    """The engine's round loop, answered from a transcript instead of by members."""

    def __init__(
        self,
        scenario: Scenario,
        protocol: Protocol,
        views: ViewBuilder,
        recorded: Sequence[Any],
        watch: str,
        with_prompt: bool,
    ) -> None:
        super().__init__(scenario, protocol, {}, None, views)
        self._recorded = deque(recorded)
        self._taken = 0
        self.watch = watch
        self.with_prompt = with_prompt
        self.seen: list[Seen] = []

    def _take(self, produced: Any) -> Any:
        if not self._recorded or isinstance(self._recorded[0], RunInterrupted):
            raise _EndOfRecord()
        recorded = self._recorded.popleft()
        self._taken += 1
        if _key(recorded) != _key(produced):
            raise ReplayError(
                f"the transcript and this version of the {self.protocol.name!r} protocol disagree at "
                f"event {self._taken + 2}: the protocol produces '{_describe(produced)}', the transcript "
                f"has '{_describe(recorded)}'. Views cannot be rebuilt past this point; replay this run "
                f"with the assembly version recorded in its run_started event."
            )
        return recorded

    def emit(self, *events: Event) -> None:
        for e in events:
            # The recorded event is folded, not the re-derived one: views must hold
            # exactly what the live run held, timing included (it drives the budget).
            self.observe(self._take(e))

    async def ask(
        self, phase: str, member_ids: Sequence[str], action: type[Action], params: dict[str, object] | None = None
    ) -> list[Turn]:
        if self._over_budget():
            raise BudgetSpent()
        deadline = self.phase_deadline()
        request = Request(round=self.round, phase=phase, action=action, deadline_s=deadline, params=dict(params or {}))
        view, record = None, {}
        if self.watch in member_ids and deadline > 0:
            view = self.views.view(self.watch, self.round, phase)
            record = dict(self.views.record_of(self.watch).disclosed) if self.watch in self.views.index else {}
        turns = [self._take(Turn(round=self.round, phase=phase, member=m, status="skipped")) for m in member_ids]
        self.account(turns)
        if self.watch in member_ids:
            turn = turns[list(member_ids).index(self.watch)]
            self.seen.append(self._seen(request, view, turn, record))
        for t in turns:
            self.observe(t)
        return turns

    def _seen(self, request: Request, view: View | None, turn: Turn, disclosed: dict[str, tuple[int, str]]) -> Seen:
        if view is None:
            return Seen(request, None, turn, disclosed)
        prompt = note = schema = None
        try:
            schema = self.protocol.output_model(view, request).__name__
        except Exception as exc:  # a renderer bug must not hide the view
            schema = f"(output_model failed: {type(exc).__name__}: {exc})"
        if self.with_prompt:
            try:
                prompt = self.protocol.prompt(view, request)
            except NotImplementedError as exc:
                note = str(exc)
            except Exception as exc:
                note = f"prompt rendering failed: {type(exc).__name__}: {exc}"
        return Seen(request, view, turn, disclosed, prompt, note, schema)


def rebuild(transcript: Transcript, member_id: str, with_prompt: bool | None = None) -> Rebuilt:
    """Every turn `member_id` was asked for, with the view and request it was given.

    `with_prompt`: render the LLM prompt too (default: only for LLM seats).
    """
    run = RunRecord.of(transcript.events)
    seat = seat_of(run, member_id)
    started, seated = run.started, run.seated
    try:
        scenario = Scenario.model_validate(started.scenario)
        protocol = protocol_class(started.protocol)(scenario)
    except Exception as exc:
        raise ReplayError(f"cannot rebuild the run's scenario from its transcript: {exc}") from None
    views = ViewBuilder(scenario, protocol.actions)
    rest = [e for e in transcript.events if not isinstance(e, RunStarted | Seated)]
    engine = _TranscriptEngine(
        scenario, protocol, views, rest, member_id, seat.policy == "llm" if with_prompt is None else with_prompt
    )
    for e in (started, seated):
        engine.observe(e)
    first = min((e.round for e in rest if hasattr(e, "round")), default=1)
    stopped = None
    try:
        asyncio.run(engine.run(start_round=first))
    except _EndOfRecord:
        stopped = "the transcript ends before the run did (still running, interrupted or killed)"
    return Rebuilt(seat, engine.seen, stopped)


# ----------------------------------------------------------------------------- rendering


def seat_panel(seat: SeatedMember, scenario: dict[str, Any]) -> RenderableType:
    facts = {f["id"]: f for f in scenario.get("facts", ())}
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row(
        "member",
        f"{safe(seat.id)} · role {safe(seat.role)} · policy {safe(seat.policy)}"
        + (f" · profile {safe(seat.profile)}" if seat.profile else ""),
    )
    if seat.values:
        table.add_row("values", ", ".join(f"{safe(k)} {v:+.2f}" for k, v in seat.values.items()))
    own = [f"[bold]{safe(f)}[/]: {safe(facts.get(f, {}).get('text', ''))}" for f in seat.facts]
    table.add_row("own private facts", "\n".join(own) or "[dim]none[/]")
    if seat.private:
        table.add_row("private state", ", ".join(f"{safe(k)} = {safe(v)}" for k, v in seat.private.items()))
    return Panel(table, title=f"seen as {safe(seat.id)}", title_align="left")


def seen_view(seen: Seen, earlier_facts: set[str], presentation: Presentation) -> RenderableType:
    req = seen.request
    parts: list[RenderableType] = [
        Rule(f"round {req.round} · {safe(req.phase)} · asked for {req.action.__name__}", style="bold")
    ]
    view = seen.view
    if view is None:
        parts.append(
            Text.from_markup(
                "[bold red]not asked[/]: the round's time budget was spent before "
                "this phase, so the member was given nothing"
            )
        )
    else:
        lines = [
            f"[bold]deadline[/] {req.deadline_s:g}s"
            + (f" · [bold]params[/] {safe(req.params)}" if req.params else "")
            + (f" · [bold]answer schema[/] {safe(seen.answer_schema)}" if seen.answer_schema else "")
        ]
        lines.append("[bold]own facts[/] " + (", ".join(safe(f.id) for f in view.own_facts) or "none"))
        if view.heard_facts:
            heard = []
            for f in view.heard_facts:
                when = seen.disclosed_by.get(f.id)
                src = f" (from {safe(when[1])}, round {when[0]})" if when else ""
                new = "[green]new[/] " if f.id not in earlier_facts else ""
                heard.append(f"  {new}[bold]{safe(f.id)}[/]{src}: {safe(f.text)}")
            lines.append("[bold]facts heard from others[/]\n" + "\n".join(heard))
        else:
            lines.append("[bold]facts heard from others[/] none")
        if view.framing:
            lines.append(f"[bold]framing[/] {safe(view.framing)}")
        lines += presentation.plenary(view.plenary, view.framing)
        parts.append(Text.from_markup("\n".join(lines)))
        heard_table = Table(
            box=None,
            pad_edge=False,
            expand=True,
            title_justify="left",
            title=f"heard (last {view.window} rounds, newest first)",
        )
        heard_table.add_column("round", justify="right", no_wrap=True)
        heard_table.add_column("from", no_wrap=True)
        heard_table.add_column("said", ratio=1)
        for group in view.recent:
            for h in group:
                heard_table.add_row(
                    str(h.round), safe(h.member), describe_action({"kind": h.kind, **h.public}, presentation)
                )
        if heard_table.row_count:
            parts.append(heard_table)
        else:
            parts.append(Text.from_markup("[dim]heard nothing yet[/]"))
        if view.own_history:
            parts.append(
                Text.from_markup(
                    "[bold]its own recent actions[/] "
                    + ", ".join(f"r{h.round} {safe(h.phase)}" for h in view.own_history)
                )
            )
        if seen.prompt is not None:
            parts.append(
                Panel(safe(seen.prompt.system), title="prompt · system", title_align="left", border_style="cyan")
            )
            parts.append(Panel(safe(seen.prompt.user), title="prompt · user", title_align="left", border_style="cyan"))
        elif seen.prompt_note:
            parts.append(Text.from_markup(f"[dim]prompt: {safe(seen.prompt_note)}[/]"))
    rule = req.params.get("rule")
    answer = describe_turn(seen.turn, presentation, rule if isinstance(rule, str) else None)
    parts.append(
        Panel(answer, title="answered", title_align="left", border_style="red" if seen.turn.status != "ok" else "green")
    )
    return Group(*parts)


def member_walkthrough(
    transcript: Transcript, member_id: str, only_round: int | None = None, with_prompt: bool | None = None
) -> list[RenderableType]:
    rebuilt = rebuild(transcript, member_id, with_prompt)
    out: list[RenderableType] = [seat_panel(rebuilt.seat, transcript.started.scenario)]
    presentation = protocol_class(transcript.started.protocol).presentation
    known: set[str] = set()
    for seen in rebuilt.seen:
        if only_round is None or seen.request.round == only_round:
            out.append(seen_view(seen, known, presentation))
        if seen.view is not None:
            known |= {f.id for f in seen.view.heard_facts}
    if not rebuilt.seen:
        out.append(Text.from_markup(f"[yellow]{safe(member_id)} was never asked to act in this transcript[/]"))
    if rebuilt.stopped:
        out.append(Text.from_markup(f"[yellow]{safe(rebuilt.stopped)}[/]"))
    if transcript.torn is not None:
        out.append(
            Text.from_markup(
                "[bold yellow]⚠ torn last line[/]: the transcript's last line was cut mid-write and is ignored"
            )
        )
    return out
