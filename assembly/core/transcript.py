"""The append-only JSONL transcript: durable writing, tolerant reading, checked integrity.

Writing: every event is one line, flushed to the OS as soon as its batch is written,
so after `kill -9` the file is a valid prefix with at most one torn last line; it is
forced to disk round by round (`TranscriptWriter.sync`), for power cuts. Each line
carries its number and a hash chain (`integrity`).

Reading: a torn last line is skipped and reported (`Transcript.torn`), never fatal.
Anything else wrong is damage, not a crash artefact: a corrupt line in the middle, a
broken chain (a line edited, duplicated, dropped or moved), or a shape no run writes
(`integrity.structure_damage`). `read_transcript` refuses a damaged transcript,
naming its first bad line, unless asked to read it anyway (`allow_damage`, for
`assembly replay`, which shows it flagged). Transcripts of schema 1 have no chain:
they read as "unverified", with the structural checks only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO, Any

from pydantic import TypeAdapter, ValidationError

from assembly.core.atomic import write_atomic
from assembly.core.events import (
    CHAINED_SINCE,
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    AnyEvent,
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
from assembly.core.integrity import START, Damage, Link, seal, structure_damage, unseal
from assembly.core.jsontree import without_keys
from assembly.core.redaction import redact

TRANSCRIPT = "transcript.jsonl"
SUMMARY = "summary.json"

# Fields whose value depends on the clock, on when, where and how the run was
# launched (`provenance`: commit, command line, host), or on whether an answer came
# from the response cache; dropped when two transcripts are compared for determinism
# or reproduction.
NONDETERMINISTIC_KEYS = frozenset({"timing", "run_id", "parent", "cache_hit", "provenance"})

_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


class TranscriptError(Exception):
    """The transcript cannot be read (missing, corrupt, or an unreadable schema version)."""


class TranscriptDamaged(TranscriptError):
    """The transcript was changed after it was written; `damage` names the first bad line."""

    def __init__(self, path: Path, damage: Damage) -> None:
        self.damage = damage
        super().__init__(
            f"{path}:{damage.line}: {damage.problem}. The transcript was damaged after it was written, "
            "so it is not used (plain `assembly replay` shows it, flagged)"
        )


class TranscriptWriter:
    """Appends events to `transcript.jsonl`; one instance per run."""

    def __init__(self, path: Path, *, append: bool = False, durable: bool = True, after: Link | None = START) -> None:
        # durable=False skips the per-round fsync (events are still flushed to the OS
        # as written). Sweeps of sim-only runs use it: a run that did not finish is
        # re-run whole on --resume, so per-round durability buys nothing there.
        # after: the chain to continue (appending: the last line's link); None writes
        # lines without seq and chain, to continue a schema 1 transcript in its form.
        if append and after == START:
            raise ValueError("appending to a chained transcript needs its last line's link")
        self.path = path
        self.durable = durable
        self._link = after
        path.parent.mkdir(parents=True, exist_ok=True)
        # A new transcript is created by its first write (see `_create`), never empty.
        self._fh: IO[str] | None = open(path, "a", encoding="utf-8") if append else None  # noqa: SIM115
        self._closed = False
        self._syncer: ThreadPoolExecutor | None = None
        self._syncing: Future[None] | None = None

    @staticmethod
    def dump(event: AnyEvent) -> str:
        """An event's JSON as its line carries it, before sealing. Redacted here, at the
        one place events become text, whatever produced their text, and before
        sealing, so that the chain covers what is on disk. Apart from `write` so that
        the engine can dump a turn when its answer arrives, not all of a phase's turns
        when it closes."""
        return redact(event.model_dump_json(exclude_none=True))

    def write(self, events: Iterable[AnyEvent]) -> None:
        self.write_dumped(self.dump(e) for e in events)

    def write_dumped(self, bodies: Iterable[str]) -> None:
        """Append events already dumped (`dump`), in order."""
        text = "".join(self._line(body) + "\n" for body in bodies)
        if self._fh is None and not self._closed:
            self._create(text)
            return
        fh = self._require_open()
        fh.write(text)
        fh.flush()

    def _create(self, first: str) -> None:
        """Create the transcript holding its first events, atomically.

        The first batch (`run_started` and `seated`) goes to a temporary file, which
        is fsynced and then hard-linked to its name: a kill at any moment leaves
        either no transcript or one that starts with the run's header, never an
        empty file that nothing could resume. Linking, unlike renaming, refuses an
        existing transcript, so a run never overwrites another."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fh = open(tmp, "x", encoding="utf-8")  # noqa: SIM115
        try:
            fh.write(first)
            fh.flush()
            os.fsync(fh.fileno())
            os.link(tmp, self.path)
        except BaseException:
            fh.close()
            tmp.unlink(missing_ok=True)
            raise
        tmp.unlink()
        self._fh = fh

    def _line(self, body: str) -> str:
        if self._link is None:
            return body
        line, self._link = seal(body, self._link)
        return line

    def sync(self) -> None:
        """Force written events to disk (called at every round end).

        The events are flushed to the OS at once, so a killed process loses nothing
        of them; forcing them from the OS to the disk (what survives a power cut)
        runs on a thread, while the next round plays, instead of stalling it for
        the disk (about 5 ms a round here). A sync waits for the one before it, so
        by the time a round ends, every round before it is on disk."""
        fh = self._require_open()
        fh.flush()
        if self.durable:
            self._wait_for_disk()
            if self._syncer is None:
                self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="transcript-sync")
            self._syncing = self._syncer.submit(_datasync, fh.fileno())

    def _wait_for_disk(self) -> None:
        """Wait for the sync in flight, raising its error (a full or failing disk) here."""
        if self._syncing is not None:
            syncing, self._syncing = self._syncing, None
            syncing.result()

    def close(self) -> None:
        self._closed = True
        try:
            self._wait_for_disk()
        finally:
            if self._syncer is not None:
                self._syncer.shutdown(wait=True)
                self._syncer = None
            if self._fh is not None:
                self._fh.flush()
                os.fsync(self._fh.fileno())  # a finished run is always on disk
                self._fh.close()
                self._fh = None

    def _require_open(self) -> IO[str]:
        if self._fh is None:
            raise TranscriptError(f"{self.path}: writer already closed")
        return self._fh


def _datasync(fd: int) -> None:
    getattr(os, "fdatasync", os.fsync)(fd)


@dataclass(frozen=True)
class Round:
    """One round's events: those that carry its number, in transcript order."""

    round: int
    events: list[AnyEvent]
    # Index in the transcript of the round's `round_started` (None if it has none):
    # every event before it is the history the round's figures may depend on.
    started_at: int | None = None

    @property
    def started(self) -> RoundStarted | None:
        return next((e for e in self.events if isinstance(e, RoundStarted)), None)

    @property
    def ended(self) -> RoundEnded | None:
        return next((e for e in reversed(self.events) if isinstance(e, RoundEnded)), None)

    @property
    def complete(self) -> bool:
        return self.ended is not None

    @property
    def turns(self) -> list[Turn]:
        return [e for e in self.events if isinstance(e, Turn)]

    @property
    def tallies(self) -> list[Tally]:
        return [e for e in self.events if isinstance(e, Tally)]

    @property
    def disclosures(self) -> list[Disclosure]:
        return [e for e in self.events if isinstance(e, Disclosure)]


@dataclass
class Transcript:
    """A run as its transcript records it: header, seating, rounds, and how it ended.

    The one reading of a transcript's structure: replay, report, rerun/fork/resume,
    the summary and the sweep tables all ask it, so "which rounds are complete" or
    "did the run end" has one answer. The structure is derived from `events` on first
    use; `events` is not to be changed after that (build a new `Transcript` instead).
    """

    path: Path
    events: list[AnyEvent] = field(default_factory=list)
    torn: str | None = None  # text of a torn last line, when the run was cut mid-write
    chained: bool = False  # its lines carry seq and chain (schema 2 on)
    damage: Damage | None = None  # the first bad line, when read with allow_damage

    @property
    def integrity(self) -> str:
        """One of verified (intact chain and shape), unverified (schema 1: no chain
        to check, shape intact) or damaged."""
        if self.damage is not None:
            return "damaged"
        return "verified" if self.chained else "unverified"

    def describe_integrity(self) -> str:
        """The integrity in words, the same in replay, check and report."""
        if self.damage is not None:
            return f"damaged at line {self.damage.line}: {self.damage.problem}"
        if self.chained:
            return f"verified: all {len(self.events)} events numbered in order, hash chain intact"
        return (
            "unverified: written before transcripts carried a hash chain (schema 1), so edits to it cannot be detected"
        )

    @classmethod
    def of(cls, events: Sequence[AnyEvent], path: Path = Path(TRANSCRIPT)) -> Transcript:
        """Events held in memory (a live run's, a test's), as the transcript at `path`."""
        return cls(path=path, events=list(events))

    @property
    def started(self) -> RunStarted:
        first = self.events[0] if self.events else None
        if not isinstance(first, RunStarted):
            raise TranscriptError(f"{self.path}: does not start with a run_started event")
        return first

    @cached_property
    def _seated(self) -> Seated | None:
        return next((e for e in self.events if isinstance(e, Seated)), None)

    @property
    def is_seated(self) -> bool:
        return self._seated is not None

    @property
    def seated(self) -> Seated:
        if self._seated is None:
            raise TranscriptError(f"{self.path}: no seated event; the run died before its members were seated")
        return self._seated

    @property
    def seats(self) -> list[SeatedMember]:
        """Every seat: the members, then the facilitator if there is one."""
        return self.seated.seats

    @cached_property
    def rounds(self) -> dict[int, Round]:
        """Each round by number, in order of first appearance.

        A `run_interrupted` event names the round it cut, but belongs to no round."""
        events: dict[int, list[AnyEvent]] = {}
        started_at: dict[int, int] = {}
        for i, e in enumerate(self.events):
            r = getattr(e, "round", None)
            if r is None or isinstance(e, RunInterrupted):
                continue
            events.setdefault(r, []).append(e)
            if isinstance(e, RoundStarted):
                started_at.setdefault(r, i)
        return {r: Round(r, evs, started_at.get(r)) for r, evs in events.items()}

    @property
    def complete_rounds(self) -> list[int]:
        """The numbers of the rounds that ended (have a `round_ended`), in order."""
        return sorted(r for r, rnd in self.rounds.items() if rnd.complete)

    @property
    def next_round(self) -> int:
        """The round a continuation starts with: the one after the last complete round."""
        return max(self.complete_rounds, default=0) + 1

    @cached_property
    def end(self) -> RunEnded | None:
        return next((e for e in self.events if isinstance(e, RunEnded)), None)

    @cached_property
    def interrupted(self) -> RunInterrupted | None:
        return next((e for e in self.events if isinstance(e, RunInterrupted)), None)

    @property
    def resumable_prefix(self) -> int:
        """How many leading events a resume keeps: up to the last round that truly completed.

        A round is complete when its `round_ended` is present, unless it was the
        stopping round (`stop`) and the run's `run_ended` never followed: that round's
        ending is then re-derived by playing it again."""
        keep = 0
        for i, e in enumerate(self.events):
            if isinstance(e, Seated):
                keep = max(keep, i + 1)
            elif isinstance(e, RoundEnded) and not e.stop:
                keep = i + 1
        return keep


def parse_event(line: str) -> AnyEvent:
    event: AnyEvent = _ADAPTER.validate_json(line)
    return event


def read_transcript(path: Path | str, *, allow_damage: bool = False) -> Transcript:
    """Read a transcript file or run folder, tolerating a torn last line.

    Damage raises `TranscriptDamaged` naming the first bad line; with `allow_damage`
    the transcript is returned with `damage` set instead (lines that are not events
    at all are then left out)."""
    p = Path(path)
    if p.is_dir():
        p = p / TRANSCRIPT
    if not p.exists():
        raise TranscriptError(f"{p}: no transcript here")
    out, numbers, end_line, found = _parse(p)
    shape = structure_damage(
        out.events, numbers, end_line, torn=out.torn is not None, finished=_summary_says_finished(p)
    )
    out.damage = min([*found, *([shape] if shape else [])], key=lambda d: d.line, default=None)
    if out.damage is not None and not allow_damage:
        raise TranscriptDamaged(p, out.damage)
    return out


def _parse(path: Path) -> tuple[Transcript, list[int], int, list[Damage]]:
    """The file's events as a Transcript (torn tail and chained set), the line of each
    event, the line after the last whole one, and every damaged line found."""
    complete, tail = _split(path)
    reader = LineReader(path)
    out = Transcript(path=path)
    numbers: list[int] = []
    found: list[Damage] = []

    def take(number: int, line: str) -> None:
        event, problem = reader.read(line)
        if problem is not None:
            found.append(Damage(number, problem))
        out.events.append(event)
        numbers.append(number)

    for i, line in enumerate(complete, start=1):
        try:
            if line.strip():
                take(i, line)
        except ValueError as exc:
            found.append(Damage(i, f"not a valid event ({_reason(exc)})"))
    end_line = len(complete) + 1
    try:
        if tail.strip():  # no trailing newline: the writer was killed mid-line, unless the line is whole
            take(end_line, tail)
    except ValueError:
        out.torn = tail[:200]
    out.chained = reader.chained
    return out, numbers, end_line, found


def _split(path: Path) -> tuple[list[str], str]:
    """The file's complete lines, and what follows the last newline (a torn tail, or "")."""
    lines = path.read_bytes().decode("utf-8", errors="replace").split("\n")
    return lines[:-1], lines[-1]


def _reason(exc: ValueError) -> str:
    return str(exc.errors()[0]["msg"]) if isinstance(exc, ValidationError) else str(exc)


def _summary_says_finished(transcript: Path) -> bool:
    """Whether the run folder's summary.json records a finished run (it is written
    only once `run_ended` is on disk, so then the transcript must hold it)."""
    summary = transcript.parent / SUMMARY
    if transcript.name != TRANSCRIPT or not summary.is_file():
        return False
    try:
        data = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # an unreadable summary is reported by whoever reads it
    return isinstance(data, dict) and data.get("status") == "complete"


class LineReader:
    """Turns a transcript's lines, one by one in order, into events, checking each
    line's `seq` and `chain` against the line before (from schema 2 on)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.chained = True  # until the first line says which schema it has
        self._first = True
        self._link = START

    def read(self, line: str) -> tuple[AnyEvent, str | None]:
        """The event on a line (without its newline), and why the line breaks the
        chain, or None. ValueError if it is not an event at all; TranscriptError
        when the first line has a schema version this assembly cannot read."""
        if self._first:
            self._first = False
            version = _check_version(self.path, line)
            self.chained = version is None or version >= CHAINED_SINCE
        if not self.chained:
            return parse_event(line), None
        sealed = unseal(line)
        if sealed is None:
            return parse_event(line), "the line has no event number and hash chain (seq, chain)"
        event = parse_event(sealed.body)
        problem = sealed.problem_after(self._link)
        self._link = sealed.link
        return event, problem


def _check_version(path: Path, line: str) -> int | None:
    try:
        version = json.loads(line).get("schema_version")
    except (json.JSONDecodeError, AttributeError):
        return None  # reported as an invalid event by the caller
    if version is not None and version not in READABLE_VERSIONS:
        raise TranscriptError(
            f"{path}: transcript schema version {version}; this assembly reads versions "
            f"{sorted(READABLE_VERSIONS)} (current {SCHEMA_VERSION}). Use a matching assembly release."
        )
    return version if isinstance(version, int) else None


def event_bodies(path: Path) -> list[str]:
    """Each whole event line's JSON as its writer dumped it, without `seq` and `chain`,
    in order (a torn tail left out). For rewriting a transcript, e.g. on resume."""
    complete, tail = _split(path)

    def body(line: str) -> str:
        sealed = unseal(line)
        return sealed.body if sealed is not None else line

    out = [body(line) for line in complete if line.strip()]
    if tail.strip():
        try:
            parse_event(body(tail))
            out.append(body(tail))  # whole, only its newline is missing
        except ValueError:
            pass  # torn
    return out


def rewrite(path: Path, bodies: Sequence[str], *, chained: bool) -> Link | None:
    """Replace the transcript at `path` atomically by these event bodies, numbered and
    chained anew when `chained`; the last line's link (None when not chained)."""
    link: Link | None = START if chained else None
    lines = []
    for body in bodies:
        if link is None:
            lines.append(body)
        else:
            line, link = seal(body, link)
            lines.append(line)
    write_atomic(path, "".join(line + "\n" for line in lines), fsync=True)
    return link


def canonical(events: Iterable[AnyEvent]) -> list[dict[str, Any]]:
    """Events as plain dicts without clock-dependent fields, for exact comparison."""
    return [without_keys(e.model_dump(mode="json", exclude_none=True), NONDETERMINISTIC_KEYS) for e in events]


def iter_lines_following(path: Path, poll_s: float = 0.5) -> Iterator[str]:
    """Yield complete lines as a live run appends them (for `replay --follow`)."""
    import time

    with open(path, encoding="utf-8") as fh:
        buf = ""
        while True:
            chunk = fh.readline()
            if not chunk:
                time.sleep(poll_s)
                continue
            buf += chunk
            if buf.endswith("\n"):
                yield buf
                buf = ""
