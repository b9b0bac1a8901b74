"""Continuing runs from a transcript: re-execute, fork, resume.

One mechanism serves all three. A run's state lives only in its events, so a fresh
engine, view builder and protocol that fold a transcript prefix with
`Engine.observe` are in exactly the state the live run had after that prefix, and
`Engine.run(start_round=R)` continues the round loop from there:

- `rerun`: no prefix. The same resolved scenario and seed are executed again into a
  new run folder, and the two transcripts are compared with `transcript.canonical`
  (timing aside). LLM members answer from the source run's response cache; what no
  cache can hold (a call cancelled at the deadline, a provider error) is taken from
  the source transcript (see `Recorded`), so a rerun calls no model.
- `fork`: the rounds before R are copied unchanged into a new transcript whose
  `run_started` names its parent, then the run continues live from round R under a
  modified scenario. Seating is part of the kept prefix, so changes that would seat a
  different assembly (population, facts, topology, options) are refused.
- `resume`: an interrupted or killed run continues in place from its last complete
  round. The partial round and any torn last line are moved aside (to
  `transcript.dropped.jsonl`) and the transcript is rewritten atomically first. Sim
  members draw from (seed, member, round, phase) and keep no state between turns, so
  a resumed sim run ends exactly as an uninterrupted one would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assembly.core.atomic import write_atomic
from assembly.core.engine import Engine, Listener
from assembly.core.errors import UserError
from assembly.core.events import (
    Attempt,
    Event,
    RoundEnded,
    RunEnded,
    RunInterrupted,
    RunStarted,
    Seated,
    SeatedMember,
    Turn,
)
from assembly.core.lock import writer_lock
from assembly.core.member import Member, Request, TurnResult
from assembly.core.protocol import MemberFactory
from assembly.core.run import models_of, unused_dir, versions
from assembly.core.spec import resolved, run_key
from assembly.core.transcript import TRANSCRIPT, Transcript, TranscriptError, TranscriptWriter, canonical, parse_event
from assembly.core.transcript import read_transcript as _read
from assembly.core.view import View, ViewBuilder
from assembly.launch import build_members, write_summary
from assembly.protocols import protocol_class
from assembly.scenario.loading import build_scenario
from assembly.scenario.model import Scenario

if TYPE_CHECKING:
    from assembly.llm.setup import LLMSetup

DROPPED = "transcript.dropped.jsonl"
# Parts of a scenario that define the deliberation's world; a fork keeps them.
WORLD_FIELDS = ("question", "options", "facts", "population", "topology")


class RerunError(UserError):
    """A run that cannot be re-executed, forked or resumed as asked."""


def read_run(path: Path) -> Transcript:
    try:
        t = _read(path)
        if not t.events and t.torn is None:
            raise RerunError(
                f"{t.path} is empty: the run was killed before its first event, so there is nothing to "
                f"resume; start it again (`assembly run SCENARIO --out {t.path.parent}` replaces it)"
            )
        t.started  # noqa: B018 - raises when the header is missing
    except TranscriptError as exc:
        raise RerunError(str(exc)) from None
    if not any(isinstance(e, Seated) for e in t.events):
        # `run --out` refuses a folder with a transcript, so this says how to get past it.
        raise RerunError(
            f"{t.path}: the run died before its members were seated, so there is nothing to resume; "
            f"remove {t.path} and start the run again"
        )
    return t


def _seated(t: Transcript) -> Seated:
    return next(e for e in t.events if isinstance(e, Seated))


def _scenario_of(started: RunStarted) -> Scenario:
    try:
        return Scenario.model_validate(started.scenario)
    except Exception as exc:
        raise RerunError(f"the run's recorded scenario no longer validates with this assembly version: {exc}") from None


# ----------------------------------------------------------------------------- replaying what the world did


class _RecordedTimeout(TurnResult):
    """Marks a turn that timed out in the source run (see `_RerunEngine`)."""

    __slots__ = ()


TurnKey = tuple[int, str]  # (round, phase)


@dataclass
class Recorded:
    """What a source run's members met that no cache can replay, by turn.

    A response cache holds what a model answered; it cannot hold a call the engine
    cancelled at the deadline, or a provider error (a 429, a 5xx, a dropped
    connection), because neither produced an answer. Those are facts about the
    world during the source run, so a rerun takes them from the transcript:

    - `timed_out`: the engine cancelled the turn; it times out again at once, without
      calling anyone (sim members in virtual time reproduce their own timeouts and
      are not listed);
    - `failed`: an LLM turn that ended in a provider error; its recorded outcome is
      replayed as it was;
    - `errors`: an LLM turn that succeeded after provider errors; the answers come
      from the cache as usual, and the recorded failed attempts are put back where
      they happened in its attempt list.
    """

    timed_out: set[TurnKey] = field(default_factory=set)
    failed: dict[TurnKey, Turn] = field(default_factory=dict)
    errors: dict[TurnKey, list[Attempt]] = field(default_factory=dict)

    @classmethod
    def of(cls, events: Sequence[Any], llm_seats: set[str]) -> dict[str, Recorded]:
        out: dict[str, Recorded] = {}
        for e in events:
            if not isinstance(e, Turn):
                continue
            key = (e.round, e.phase)
            if e.status == "timeout" and e.latency_s is None:
                out.setdefault(e.member, cls()).timed_out.add(key)
            elif e.member in llm_seats and e.status == "provider_error":
                out.setdefault(e.member, cls()).failed[key] = e
            elif e.member in llm_seats and any(a.outcome == "provider_error" for a in e.attempts):
                out.setdefault(e.member, cls()).errors[key] = list(e.attempts)
        return out


class _ReplayWorld:
    """Wraps a member so that it meets the recorded timeouts and provider errors."""

    def __init__(self, inner: Member, recorded: Recorded) -> None:
        self.id = inner.id
        self.inner = inner
        self.recorded = recorded

    async def act(self, view: View, request: Request) -> TurnResult:
        key = (request.round, request.phase)
        if key in self.recorded.timed_out:
            return _RecordedTimeout(action=None)
        failed = self.recorded.failed.get(key)
        if failed is not None:
            return TurnResult(
                action=None, status="provider_error", attempts=list(failed.attempts), detail=failed.detail
            )
        result = await self.inner.act(view, request)
        source = self.recorded.errors.get(key)
        if source is not None:
            result.attempts = _with_recorded_errors(source, result.attempts)
        return result

    async def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            await close()


def _with_recorded_errors(source: Sequence[Attempt], rerun: Sequence[Attempt]) -> list[Attempt]:
    """The source's attempt list with each answered attempt taken from the rerun.

    If the rerun's answered attempts do not line up one for one with the source's,
    the rerun's own list is kept, so the comparison shows the difference."""
    answered = iter(rerun)
    out: list[Attempt] = []
    for a in source:
        if a.outcome == "provider_error":
            out.append(a)
            continue
        b = next(answered, None)
        if b is None:
            return list(rerun)
        out.append(b.model_copy(update={"attempt": a.attempt}))
    return out if next(answered, None) is None else list(rerun)


class _RerunEngine(Engine):
    def _turn(self, phase: str, member: str, task: asyncio.Future[Any], deadline: float) -> Turn:
        if (
            task.done()
            and not task.cancelled()
            and task.exception() is None
            and isinstance(task.result()[0], _RecordedTimeout)
        ):
            # Exactly the event the engine writes when it cancels a late member.
            return self.timeout_turn(phase, member, deadline)
        return super()._turn(phase, member, task, deadline)


# ----------------------------------------------------------------------------- the one mechanism


async def _drive(
    scenario: Scenario,
    run_dir: Path,
    header: Sequence[Event],
    prefix: Sequence[Event],
    start_round: int,
    *,
    append: bool,
    listeners: Sequence[Listener],
    factory: MemberFactory | None,
    recorded: dict[str, Recorded] | None = None,
) -> dict[str, Any]:
    """Fold `header + prefix`, then run live from `start_round`; return the summary.

    A new run folder (rerun, fork) is written under its writer lock (`core.lock`),
    checked again to be fresh once the lock is held; a resume holds its lock already."""
    args = (scenario, run_dir, header, prefix, start_round)
    if append:
        return await _drive_locked(*args, append=True, listeners=listeners, factory=factory, recorded=recorded)
    parent = header[0].parent if isinstance(header[0], RunStarted) else None
    with writer_lock(run_dir, str((parent or {}).get("mode", "rerun"))):
        _fresh_dir(run_dir)
        return await _drive_locked(*args, append=False, listeners=listeners, factory=factory, recorded=recorded)


async def _drive_locked(
    scenario: Scenario,
    run_dir: Path,
    header: Sequence[Event],
    prefix: Sequence[Event],
    start_round: int,
    *,
    append: bool,
    listeners: Sequence[Listener],
    factory: MemberFactory | None,
    recorded: dict[str, Recorded] | None,
) -> dict[str, Any]:
    seated = next(e for e in header if isinstance(e, Seated))
    protocol = protocol_class(scenario.protocol.kind)(scenario)
    views = ViewBuilder(scenario, protocol.actions)
    members = build_members(seated, protocol, scenario, run_dir, factory)
    started = header[0]
    if not append and isinstance(started, RunStarted) and started.models is None:
        # Record the profiles the members were actually built with (see runner.execute).
        header = [started.model_copy(update={"models": models_of(members)}), *header[1:]]
    for member_id, world in (recorded or {}).items():
        if member_id in members:
            members[member_id] = _ReplayWorld(members[member_id], world)
    writer = TranscriptWriter(run_dir / TRANSCRIPT, append=append)
    engine = _RerunEngine(scenario, protocol, members, writer, views, listeners)
    try:
        if append:  # already on disk: fold and show, do not write again
            for e in (*header, *prefix):
                engine.observe(e)
                for listener in listeners:
                    listener(e)
        else:
            engine.emit(*header, *prefix)
        # The live engine checks the budget right after a round ends; a run killed
        # between that round's end and its `run_ended` must conclude the same way.
        if prefix and engine._over_budget():
            engine.emit(protocol.conclude("budget"))
        else:
            await engine.run(start_round=start_round)
    finally:
        writer.close()
        for m in members.values():
            close = getattr(m, "close", None)
            if close is not None:
                await close()
    return write_summary(run_dir)


def _fresh_dir(out: Path) -> None:
    if (out / TRANSCRIPT).exists():
        raise RerunError(f"{out} already holds a run; pick another --out")
    out.mkdir(parents=True, exist_ok=True)


def default_out(source: Path, scenario: Scenario, tag: str) -> Path:
    base = source.parent if source.parent != Path("") else Path("runs")
    return unused_dir(base, f"{scenario.name}-{tag}-{time.strftime('%Y%m%d-%H%M%S')}")


# ----------------------------------------------------------------------------- rerun


@dataclass
class Comparison:
    identical: bool
    source_events: int
    rerun_events: int
    first_difference: str | None = None


def compare(source: Sequence[Any], rerun: Sequence[Any], ignore: frozenset[str] = frozenset()) -> Comparison:
    """Compare two transcripts canonically (timing, run id and parent dropped)."""
    a, b = canonical(source), canonical(rerun)
    if ignore:
        a, b = _drop(a, ignore), _drop(b, ignore)
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return Comparison(False, len(a), len(b), f"event {i + 1}: {_first_change(x, y)}")
    if len(a) != len(b):
        return Comparison(False, len(a), len(b), f"the source has {len(a)} events, the rerun {len(b)}")
    return Comparison(True, len(a), len(b))


def _drop(value: Any, keys: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _drop(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_drop(v, keys) for v in value]
    return value


def _first_change(x: Any, y: Any, path: str = "") -> str:
    if isinstance(x, dict) and isinstance(y, dict):
        for k in [*x, *(k for k in y if k not in x)]:
            if x.get(k) != y.get(k):
                return _first_change(x.get(k), y.get(k), f"{path}.{k}" if path else k)
    if isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        for i, (p, q) in enumerate(zip(x, y, strict=True)):
            if p != q:
                return _first_change(p, q, f"{path}[{i}]")
    show = lambda v: s if len(s := json.dumps(v)) <= 100 else s[:97] + "..."  # noqa: E731
    return f"{path or 'event'}: source {show(x)}, rerun {show(y)}"


@dataclass
class RerunResult:
    run_dir: Path
    summary: dict[str, Any]
    comparison: Comparison
    ignored: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)


async def rerun(
    source: Path, out: Path | None = None, *, listeners: Sequence[Listener] = (), factory: MemberFactory | None = None
) -> RerunResult:
    """Re-execute a run exactly (same resolved scenario and seed) and compare transcripts."""
    src = read_run(source)
    started = src.started
    scenario = _scenario_of(started)
    # A different key means this version resolves the recorded scenario differently
    # (e.g. a new field with a default); the comparison will show it in event 1.
    notes = (
        []
        if run_key(scenario) == started.run_key
        else [
            f"the recorded scenario resolves to run key {run_key(scenario)} under this assembly version, not "
            f"{started.run_key}: the scenario schema changed since the run was recorded"
        ]
    )
    llm = any(s.policy != "sim" for s in _seats(_seated(src)))
    if llm and factory is None:
        factory = cached_factory(src.path.parent)
    out = out or default_out(src.path.parent, scenario, "rerun")
    _fresh_dir(out)
    protocol = protocol_class(scenario.protocol.kind)(scenario)
    header: list[Event] = [
        RunStarted(
            run_id=out.name,
            run_key=run_key(scenario),
            scenario=resolved(scenario),
            seed=scenario.seed,
            protocol=protocol.name,
            versions=versions(),
            parent={"run": started.run_id, "mode": "rerun"},
            timing={"started_at": time.time()},
        ),
        protocol.seat(),
    ]
    summary = await _drive(
        scenario,
        out,
        header,
        [],
        1,
        append=False,
        listeners=listeners,
        factory=factory,
        recorded=Recorded.of(src.events, {s.id for s in _seats(_seated(src)) if s.policy != "sim"}),
    )
    new = _read(out)
    # Every LLM answer of a rerun comes from the cache by design, so whether an
    # attempt was a cache hit says how it was obtained, not what happened.
    ignore = frozenset({"cache_hit"}) if llm else frozenset()
    return RerunResult(out, summary, compare(src.events, new.events, ignore), tuple(sorted(ignore)), notes)


def _seats(seated: Seated) -> list[SeatedMember]:
    return [*seated.members, *([seated.facilitator] if seated.facilitator else [])]


def cached_factory(source_dir: Path) -> MemberFactory:
    """LLM members rebuilt from the source run's recorded profiles, answering from its
    response cache (`assembly.llm.member.replay_factory`), so a rerun calls no model."""
    from assembly.llm.member import replay_factory

    return replay_factory(source_dir)


def continuing_factory(source_dir: Path, setup: LLMSetup | None = None) -> MemberFactory:
    """LLM members for a fork or a resume, which continue live.

    Profiles come from `setup` (the models file, `--model`; None: none) plus those the
    source run recorded; for the same name the recorded one wins, so a seat the fork
    does not change calls the same model with the same settings as before. New
    answers are cached in the fork's own folder (or the setup's `--cache`)."""
    from assembly.llm import setup as llm_setup
    from assembly.llm.member import factory_for

    base = setup or llm_setup.LLMSetup()
    mine = llm_setup.recorded(source_dir, base)
    if mine is None:
        return factory_for(base)
    # The fork caches new answers in its own folder (or the active --cache), never the source's.
    return factory_for(dataclasses.replace(base.with_recorded(mine), cache_dir=base.cache_dir))


# ----------------------------------------------------------------------------- fork


def complete_rounds(events: Sequence[Any]) -> list[int]:
    return sorted(e.round for e in events if isinstance(e, RoundEnded))


async def fork(
    source: Path,
    from_round: int,
    overrides: dict[str, Any],
    out: Path | None = None,
    *,
    listeners: Sequence[Listener] = (),
    factory: MemberFactory | None = None,
    setup: LLMSetup | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Keep rounds < `from_round` of `source`, apply `overrides`, continue live.

    LLM seats are built by `factory`, by default from `setup` and the source run's
    recorded profiles (`continuing_factory`)."""
    src = read_run(source)
    started, recorded_seating = src.started, _seated(src)
    done = complete_rounds(src.events)
    last = done[-1] if done else 0
    if not 1 <= from_round <= last + 1:
        raise RerunError(f"--from-round must be between 1 and {last + 1} (the source completed {last} rounds)")
    scenario = build_scenario(started.scenario, overrides, file="(the source run's scenario)")
    changed = [f for f in WORLD_FIELDS if getattr(scenario, f) != getattr(_scenario_of(started), f)]
    if scenario.protocol.kind != started.protocol:
        changed.append("protocol.kind")
    if changed:
        raise RerunError(
            f"a fork keeps the deliberation's world, but these overrides change {', '.join(changed)}; "
            "fork with protocol or member settings (or a seed), or start a new run"
        )
    seating = _fork_seating(scenario, started.seed, recorded_seating)
    out = out or default_out(src.path.parent, scenario, f"fork-r{from_round}")
    _fresh_dir(out)
    protocol = protocol_class(scenario.protocol.kind)(scenario)
    prefix = [
        e
        for e in src.events
        if not isinstance(e, RunStarted | Seated | RunEnded | RunInterrupted)
        and getattr(e, "round", from_round) < from_round
    ]
    header: list[Event] = [
        RunStarted(
            run_id=out.name,
            run_key=run_key(scenario),
            scenario=resolved(scenario),
            seed=scenario.seed,
            protocol=protocol.name,
            versions=versions(),
            parent={
                "run": started.run_id,
                "run_key": started.run_key,
                "from_round": from_round,
                "mode": "fork",
                "overrides": json.loads(json.dumps(overrides, default=str)),
            },
            timing={"started_at": time.time()},
        ),
        seating,
    ]
    if factory is None and any(seat.policy != "sim" for seat in _seats(seating)):
        factory = continuing_factory(src.path.parent, setup)
    summary = await _drive(
        scenario, out, header, prefix, from_round, append=False, listeners=listeners, factory=factory
    )
    return out, summary


def _fork_seating(scenario: Scenario, source_seed: int, recorded: Seated) -> Seated:
    """The recorded seats, with the (possibly changed) policy and model profile of each.

    Seating is re-dealt under the source seed: if it differs from the recorded one in
    anything but policy and profile, the change reaches into the kept prefix."""
    probe = scenario.model_copy(update={"seed": source_seed})
    dealt = protocol_class(scenario.protocol.kind)(probe).seat()

    def who(s: Seated) -> Any:
        strip = {"policy", "profile"}
        return (
            [m.model_dump(exclude=strip) for m in s.members],
            s.facilitator.model_dump(exclude=strip) if s.facilitator else None,
            s.audiences,
            s.audience_of,
        )

    if who(dealt) != who(recorded):
        raise RerunError(
            "these overrides seat a different assembly (members, roles, values, facts or "
            "hearing graph) than the source run; a fork must keep the seating"
        )
    return dealt


# ----------------------------------------------------------------------------- resume


@dataclass
class ResumeResult:
    run_dir: Path
    summary: dict[str, Any]
    from_round: int
    dropped_events: int
    torn: bool


def _resume_point(events: Sequence[Any]) -> int:
    """How many leading events to keep: up to the last round that truly completed.

    A round is complete when its `round_ended` is present, unless it was the
    stopping round (`stop`) and the run's `run_ended` never followed: that round's
    ending is then re-derived by playing it again."""
    keep = 0
    for i, e in enumerate(events):
        if isinstance(e, Seated):
            keep = max(keep, i + 1)
        elif isinstance(e, RoundEnded) and not e.stop:
            keep = i + 1
    return keep


def resume(run_dir: Path, *, listeners: Sequence[Listener] = (), factory: MemberFactory | None = None) -> ResumeResult:
    """Continue an interrupted or killed run in place (sync wrapper; see `resume_async`)."""
    return asyncio.run(resume_async(run_dir, listeners=listeners, factory=factory))


async def resume_async(
    run_dir: Path, *, listeners: Sequence[Listener] = (), factory: MemberFactory | None = None
) -> ResumeResult:
    """Continue a run in place, holding its folder's writer lock (`core.lock`) from
    before the transcript is read until the summary is written: a second `resume`
    of the same run is refused at once instead of writing the same rounds again."""
    folder = run_dir.parent if run_dir.is_file() else run_dir
    if not folder.is_dir():
        raise RerunError(f"{run_dir}: no such run folder")
    with writer_lock(folder, "resume"):
        return await _resume_locked(run_dir, listeners=listeners, factory=factory)


async def _resume_locked(
    run_dir: Path, *, listeners: Sequence[Listener], factory: MemberFactory | None
) -> ResumeResult:
    src = read_run(run_dir)
    path = src.path
    if any(isinstance(e, RunEnded) for e in src.events):
        # Killed after its last event but before its summary (or summary deleted):
        # the run is finished, so resuming only finishes the bookkeeping.
        return ResumeResult(
            run_dir=path.parent,
            summary=write_summary(path.parent),
            from_round=_next_round(src.events),
            dropped_events=0,
            torn=src.torn is not None,
        )
    lines = _event_lines(path)
    keep = _resume_point(src.events)
    kept, dropped = lines[:keep], lines[keep:]
    started = src.started
    parent: dict[str, Any] = {
        "run": started.run_id,
        "from_round": _next_round(src.events[:keep]),
        "mode": "resume",
        "dropped_events": len(dropped),
    }
    if started.parent:
        parent["previous"] = started.parent
    kept[0] = started.model_copy(update={"parent": parent}).model_dump_json(exclude_none=True)
    if dropped or src.torn is not None:
        with open(path.parent / DROPPED, "a", encoding="utf-8") as fh:
            fh.writelines(line + "\n" for line in [*dropped, *([src.torn] if src.torn is not None else [])])
    _atomic_write(path, kept)
    events = [parse_event(line) for line in kept]
    scenario = _scenario_of(started)
    header = [e for e in events if isinstance(e, RunStarted | Seated)]
    prefix = [e for e in events if not isinstance(e, RunStarted | Seated)]
    start = _next_round(events)
    seated = next(e for e in header if isinstance(e, Seated))
    if factory is None and any(seat.policy != "sim" for seat in _seats(seated)):
        factory = continuing_factory(path.parent)  # the run's own recorded profiles and cache
    summary = await _drive(
        scenario, path.parent, header, prefix, start, append=True, listeners=listeners, factory=factory
    )
    return ResumeResult(path.parent, summary, start, len(dropped), src.torn is not None)


def _next_round(events: Sequence[Any]) -> int:
    return max((e.round for e in events if isinstance(e, RoundEnded)), default=0) + 1


def _event_lines(path: Path) -> list[str]:
    """The transcript's event lines as written (a torn tail excluded), one per event."""
    raw = path.read_bytes().decode("utf-8", errors="replace")
    lines = raw.split("\n")
    out = [line for line in lines[:-1] if line.strip()]
    if lines[-1].strip():
        try:
            parse_event(lines[-1])
            out.append(lines[-1])  # complete, only its newline is missing
        except ValueError:
            pass  # torn: reported by read_transcript
    return out


def _atomic_write(path: Path, lines: Sequence[str]) -> None:
    write_atomic(path, "".join(line + "\n" for line in lines), fsync=True)
