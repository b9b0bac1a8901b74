"""Continuing runs from a transcript: re-execute, fork, resume.

One mechanism serves all three. A run's state lives only in its events, so a fresh
engine, view builder and protocol that fold a transcript prefix with
`Engine.observe` are in exactly the state the live run had after that prefix, and
`Engine.run(start_round=R)` continues the round loop from there:

- `rerun`: no prefix. The same resolved scenario and seed are executed again into a
  new run folder, and the two transcripts are compared with `transcript.canonical`
  (timing aside). LLM members answer from the source run's response cache; what no
  cache can hold (a call cancelled at the deadline, a provider error) is taken from
  the source transcript (see `recorded_world`), so a rerun calls no model.
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
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assembly.core.engine import Listener
from assembly.core.errors import UserError
from assembly.core.events import (
    SCHEMA_VERSION,
    AnyEvent,
    RunEnded,
    RunInterrupted,
    RunStarted,
    Seated,
)
from assembly.core.integrity import START, Link
from assembly.core.jsontree import MISSING, Change, first_change, without_keys
from assembly.core.lock import writer_lock
from assembly.core.protocol import MemberFactory
from assembly.core.provenance import provenance
from assembly.core.run import models_of, unused_dir, versions
from assembly.core.spec import resolved, run_key
from assembly.core.transcript import (
    TRANSCRIPT,
    Transcript,
    TranscriptError,
    TranscriptWriter,
    canonical,
    event_bodies,
    rewrite,
)
from assembly.core.transcript import read_transcript as _read
from assembly.core.view import ViewBuilder
from assembly.inspection.recorded_world import Recorded, ReplayWorld, RerunEngine
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
    if not t.is_seated:
        # `run --out` refuses a folder with a transcript, so this says how to get past it.
        raise RerunError(
            f"{t.path}: the run died before its members were seated, so there is nothing to resume; "
            f"remove {t.path} and start the run again"
        )
    return t


def _scenario_of(started: RunStarted) -> Scenario:
    try:
        return Scenario.model_validate(started.scenario)
    except Exception as exc:
        raise RerunError(f"the run's recorded scenario no longer validates with this assembly version: {exc}") from None


# ----------------------------------------------------------------------------- the one mechanism


async def _drive(
    scenario: Scenario,
    run_dir: Path,
    header: Sequence[AnyEvent],
    prefix: Sequence[AnyEvent],
    start_round: int,
    *,
    append: bool,
    listeners: Sequence[Listener],
    factory: MemberFactory | None,
    recorded: dict[str, Recorded] | None = None,
    after: Link | None = START,
) -> dict[str, Any]:
    """Fold `header + prefix`, then run live from `start_round`; return the summary.

    A new run folder (rerun, fork) is written under its writer lock (`core.lock`),
    checked again to be fresh once the lock is held; a resume holds its lock already.
    `append`: `header + prefix` are the transcript already on disk, whose last line
    has the link `after` (None: a schema 1 transcript, continued without chain)."""
    drive = partial(
        _drive_locked,
        scenario,
        run_dir,
        header,
        prefix,
        start_round,
        append=append,
        listeners=listeners,
        factory=factory,
        recorded=recorded,
        after=after,
    )
    if append:
        return await drive()
    parent = header[0].parent if isinstance(header[0], RunStarted) else None
    with writer_lock(run_dir, str((parent or {}).get("mode", "rerun"))):
        _fresh_dir(run_dir)
        return await drive()


async def _drive_locked(
    scenario: Scenario,
    run_dir: Path,
    header: Sequence[AnyEvent],
    prefix: Sequence[AnyEvent],
    start_round: int,
    *,
    append: bool,
    listeners: Sequence[Listener],
    factory: MemberFactory | None,
    recorded: dict[str, Recorded] | None,
    after: Link | None,
) -> dict[str, Any]:
    seated = Transcript.of(header).seated
    protocol = protocol_class(scenario.protocol.kind)(scenario)
    views = ViewBuilder(scenario, protocol.actions)
    members = build_members(seated, protocol, scenario, run_dir, factory)
    started = header[0]
    if not append and isinstance(started, RunStarted) and started.models is None:
        # Record the profiles the members were actually built with (see runner.execute).
        header = [started.model_copy(update={"models": models_of(members)}), *header[1:]]
    for member_id, world in (recorded or {}).items():
        if member_id in members:
            members[member_id] = ReplayWorld(members[member_id], world)
    writer = TranscriptWriter(run_dir / TRANSCRIPT, append=append, after=after)
    engine = RerunEngine(scenario, protocol, members, writer, views, listeners)
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


def compare(source: Sequence[AnyEvent], rerun: Sequence[AnyEvent], ignore: frozenset[str] = frozenset()) -> Comparison:
    """Compare two transcripts canonically (timing, run id and parent dropped)."""
    a, b = canonical(source), canonical(rerun)
    if ignore:
        a, b = without_keys(a, ignore), without_keys(b, ignore)
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return Comparison(False, len(a), len(b), f"event {i + 1}: {_describe_change(first_change(x, y))}")
    if len(a) != len(b):
        return Comparison(False, len(a), len(b), f"the source has {len(a)} events, the rerun {len(b)}")
    return Comparison(True, len(a), len(b))


def _describe_change(change: Change | None) -> str:
    """Where two unequal canonical events first differ, as rerun prints it."""
    if change is None:  # unreachable for unequal events; kept total for safety
        return "event: the events differ"

    def show(v: Any) -> str:
        s = json.dumps(None if v is MISSING else v)  # a missing field reads as null
        return s if len(s) <= 100 else s[:97] + "..."

    return f"{change.path or 'event'}: source {show(change.old)}, rerun {show(change.new)}"


@dataclass
class RerunResult:
    run_dir: Path
    summary: dict[str, Any]
    comparison: Comparison
    ignored: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)


async def rerun(
    source: Path,
    out: Path | None = None,
    *,
    listeners: Sequence[Listener] = (),
    factory: MemberFactory | None = None,
    max_concurrent: int | None = None,
) -> RerunResult:
    """Re-execute a run exactly (same resolved scenario and seed) and compare transcripts.

    `max_concurrent` (--max-concurrent) caps the recorded profiles' requests in flight."""
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
    llm = any(s.policy != "sim" for s in src.seats)
    if llm and factory is None:
        factory = cached_factory(src.path.parent, max_concurrent)
    out = out or default_out(src.path.parent, scenario, "rerun")
    _fresh_dir(out)
    protocol = protocol_class(scenario.protocol.kind)(scenario)
    header: list[AnyEvent] = [
        RunStarted(
            run_id=out.name,
            run_key=run_key(scenario),
            scenario=resolved(scenario),
            seed=scenario.seed,
            protocol=protocol.name,
            versions=versions(),
            provenance=provenance(),
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
        recorded=Recorded.of(src.events, {s.id for s in src.seats if s.policy != "sim"}),
    )
    new = _read(out)
    # Every LLM answer of a rerun comes from the cache by design, so whether an
    # attempt was a cache hit says how it was obtained, not what happened; and a
    # profile's rate limits (`--max-concurrent` may lower them) say how fast, not what.
    ignore = frozenset({"cache_hit", "max_concurrent", "rpm"}) if llm else frozenset()
    if started.schema_version != SCHEMA_VERSION:
        # A run recorded by an older version is rerun into the current transcript schema.
        ignore |= {"schema_version"}
    return RerunResult(out, summary, compare(src.events, new.events, ignore), tuple(sorted(ignore)), notes)


def cached_factory(source_dir: Path, max_concurrent: int | None = None) -> MemberFactory:
    """LLM members rebuilt from the source run's recorded profiles, answering from its
    response cache (`assembly.llm.member.replay_factory`), so a rerun calls no model."""
    from assembly.llm.member import replay_factory

    return replay_factory(source_dir, max_concurrent)


def continuing_factory(source_dir: Path, setup: LLMSetup | None = None) -> MemberFactory:
    """LLM members for a fork or a resume, which continue live (on `continuing_setup`)."""
    from assembly.llm.member import factory_for

    return factory_for(continuing_setup(source_dir, setup))


def continuing_setup(source_dir: Path, setup: LLMSetup | None = None) -> LLMSetup:
    """The model setup a fork continues on.

    Profiles come from `setup` (the models file, `--model`; None: none) plus those the
    source run recorded; for the same name the recorded one wins, so a seat the fork
    does not change calls the same model with the same settings as before. New
    answers are cached in the fork's own folder (or the setup's `--cache`)."""
    from assembly.llm import setup as llm_setup

    base = setup or llm_setup.LLMSetup()
    mine = llm_setup.recorded(source_dir, base)
    if mine is None:
        return base
    # The fork caches new answers in its own folder (or the active --cache), never the source's.
    return dataclasses.replace(base.with_recorded(mine), cache_dir=base.cache_dir)


# ----------------------------------------------------------------------------- fork


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
    started, recorded_seating = src.started, src.seated
    done = src.complete_rounds
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
    header: list[AnyEvent] = [
        RunStarted(
            run_id=out.name,
            run_key=run_key(scenario),
            scenario=resolved(scenario),
            seed=scenario.seed,
            protocol=protocol.name,
            versions=versions(),
            provenance=provenance(),
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
    if factory is None and any(seat.policy != "sim" for seat in seating.seats):
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
    if src.end is not None:
        # Killed after its last event but before its summary (or summary deleted):
        # the run is finished, so resuming only finishes the bookkeeping.
        return ResumeResult(
            run_dir=path.parent,
            summary=write_summary(path.parent),
            from_round=src.next_round,
            dropped_events=0,
            torn=src.torn is not None,
        )
    bodies = event_bodies(path)
    if len(bodies) != len(src.events):
        raise RerunError(f"{path} changed while it was being read; is another process writing this run?")
    keep = src.resumable_prefix
    kept, dropped = bodies[:keep], bodies[keep:]
    started = src.started
    parent: dict[str, Any] = {
        "run": started.run_id,
        "from_round": Transcript.of(src.events[:keep]).next_round,
        "mode": "resume",
        "dropped_events": len(dropped),
    }
    if started.parent:
        parent["previous"] = started.parent
    resumed = started.model_copy(update={"parent": parent})
    kept[0] = resumed.model_dump_json(exclude_none=True)
    if dropped or src.torn is not None:
        # Set aside as plain events: their numbers and chain meant nothing outside the file.
        with open(path.parent / DROPPED, "a", encoding="utf-8") as fh:
            fh.writelines(line + "\n" for line in [*dropped, *([src.torn] if src.torn is not None else [])])
    # The header changed, so the chain is computed anew over the kept prefix, which
    # was verified when it was read (a damaged transcript is never resumed).
    link = rewrite(path, kept, chained=src.chained)
    events = [resumed, *src.events[1:keep]]
    scenario = _scenario_of(started)
    header = [e for e in events if isinstance(e, RunStarted | Seated)]
    prefix = [e for e in events if not isinstance(e, RunStarted | Seated)]
    start = Transcript.of(events).next_round
    seated = Transcript.of(header).seated
    if factory is None and any(seat.policy != "sim" for seat in seated.seats):
        factory = continuing_factory(path.parent)  # the run's own recorded profiles and cache
    summary = await _drive(
        scenario, path.parent, header, prefix, start, append=True, listeners=listeners, factory=factory, after=link
    )
    return ResumeResult(path.parent, summary, start, len(dropped), src.torn is not None)
