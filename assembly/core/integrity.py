"""A transcript that proves its integrity: sequence numbers, a hash chain, and its shape.

Every line the writer appends ends in two fields that are not part of the event:
`seq`, the line's number (1 for `run_started`), and `chain`, the SHA-256 of the
previous line's `chain` followed by this line's exact text up to and including
`seq` (the first line starts from the empty string):

    {"type":"turn",...,"seq":57,"chain":"<hex sha256(chain_56 + '{"type":"turn",...,"seq":57}')>"}

So a line that is edited, duplicated, dropped or moved breaks the chain at that very
line, and the reader names it. They are added by the writer and removed by the
reader rather than declared on the event models, because they belong to the file,
not to what happened: a fork copies events into a new file, which numbers and
chains them anew, and events compared for determinism (`transcript.canonical`)
never carry them. `seq` is deterministic; `chain` covers every byte, timing fields
included (an edited `clock_s` changes the budget a resume sees), so it differs
between two identical runs and is left out of golden comparisons, like `timing`.

The chain has no key: it detects damage and casual edits (a copy cut short or
spliced, two writers interleaved, a value changed by hand), not a forger who
rewrites every digest after an edit. It is also blind to a transcript cut at a line
boundary, which looks exactly like a run killed there; `structure_damage` catches
what the shape of a run rules out, with or without a chain (transcripts written
before it, schema 1, are read as "unverified"): rounds out of order, an event after
the run ended, a `run_ended` in the middle, and a transcript that stops before its
`run_ended` although summary.json says the run finished.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from assembly.core.events import (
    AnyEvent,
    Disclosure,
    RoundEnded,
    RoundStarted,
    RunEnded,
    RunInterrupted,
    RunStarted,
    Seated,
    Tally,
    Turn,
)

# A chained line ends in `,"seq":<digits>,"chain":"<64 hex digits>"}`.
_CHAIN_KEY = ',"chain":"'
_CHAIN_TAIL = len(_CHAIN_KEY) + 64 + len('"}')
_SEQ_KEY = ',"seq":'
_MAX_SEQ_DIGITS = 19


class Link(NamedTuple):
    """Where a chain stands after a line: that line's `seq` and `chain` (both empty at the start)."""

    seq: int = 0
    chain: str = ""


# The link before a transcript's first line.
START = Link()


@dataclass(frozen=True)
class Damage:
    """The first line of a transcript that cannot be what its writer wrote, and why."""

    line: int
    problem: str


def seal(body: str, after: Link) -> tuple[str, Link]:
    """The line for an event's JSON `body` (one object) following `after`, and its link."""
    seq = after.seq + 1
    numbered = f"{body[:-1]}{_SEQ_KEY}{seq}}}"
    chain = hashlib.sha256((after.chain + numbered).encode()).hexdigest()
    return f'{numbered[:-1]}{_CHAIN_KEY}{chain}"}}', Link(seq, chain)


class Sealed(NamedTuple):
    """A chained line taken apart: the event's JSON, and the line's seq and chain."""

    body: str  # the event alone, as the writer dumped it
    numbered: str  # the text the chain digest covers
    link: Link

    def problem_after(self, before: Link) -> str | None:
        """Why this line cannot follow `before` (the previous line's link), or None."""
        if self.link.seq <= before.seq:
            return f"event number {self.link.seq} comes again after {before.seq}: a line was duplicated or moved back"
        if self.link.seq != before.seq + 1:
            return (
                f"event number {self.link.seq} where {before.seq + 1} was expected: lines are missing or out of order"
            )
        digest = hashlib.sha256((before.chain + self.numbered).encode()).hexdigest()
        if digest != self.link.chain:
            return "the line was edited after it was written (its hash chain does not match its text)"
        return None


def unseal(line: str) -> Sealed | None:
    """A chained line taken apart, or None if it does not end in `seq` and `chain`.

    Read by position rather than parsed: this runs once per line of every transcript
    read. A chain that is not hex is not refused here; it cannot match its digest."""
    chain_at = len(line) - _CHAIN_TAIL
    if chain_at < 1 or not line.endswith('"}') or not line.startswith(_CHAIN_KEY, chain_at):
        return None
    seq_at = line.rfind(_SEQ_KEY, max(0, chain_at - len(_SEQ_KEY) - _MAX_SEQ_DIGITS), chain_at)
    digits = line[seq_at + len(_SEQ_KEY) : chain_at]
    if seq_at < 0 or not (digits.isascii() and digits.isdigit()):
        return None
    return Sealed(line[:seq_at] + "}", line[:chain_at] + "}", Link(int(digits), line[chain_at + len(_CHAIN_KEY) : -2]))


def structure_damage(
    events: Sequence[AnyEvent], lines: Sequence[int], end_line: int, *, torn: bool, finished: bool
) -> Damage | None:
    """The first event that a run could not have written where it stands, or None.

    `lines[i]` is the line of `events[i]`; `end_line` the line after the last
    complete one (where a torn tail sits); `torn`: there is one; `finished`:
    summary.json says the run completed. A transcript that simply stops (the run was
    killed, or is still going) is a valid prefix, not damage.
    """
    walk = _RoundWalk()
    ended_on = 0  # the line of the run's end, once it has ended
    for i, (event, line) in enumerate(zip(events, lines, strict=True)):
        if walk.ended is not None:
            return Damage(
                ended_on, f"{walk.ended.type} in the middle of the transcript: a {event.type} event follows it"
            )
        problem = walk.step(i, event)
        if problem is not None:
            return Damage(line, problem)
        if walk.ended is not None:
            ended_on = line
    if walk.ended is not None and torn:
        return Damage(end_line, f"text after the run's {walk.ended.type} (a writer never adds any)")
    if finished and not isinstance(walk.ended, RunEnded):
        return Damage(
            end_line,
            "the transcript stops before the run's run_ended, but summary.json records a finished run: it was cut",
        )
    return None


class _RoundWalk:
    """Follows a run's shape event by event: header, then rounds 1, 2, ... each from
    `round_started` to `round_ended`, then at most one end (`run_ended` or
    `run_interrupted`), which is the last event."""

    def __init__(self) -> None:
        self.open: int | None = None  # the round that started and has not ended
        self.last = 0  # the last round that ended
        self.stopped = False  # the last round ended with `stop`: only the run's end may follow
        self.ended: RunEnded | RunInterrupted | None = None

    def step(self, index: int, event: AnyEvent) -> str | None:
        """Why `event`, the `index`-th, cannot stand here; None if it can (never called
        once the run has ended: whatever follows is damage)."""
        if index < 2:
            # The writer creates a transcript holding both, atomically.
            want, name = (RunStarted, "run_started") if index == 0 else (Seated, "seated")
            return None if isinstance(event, want) else f"a {event.type} event where the run's header has {name}"
        if isinstance(event, RunStarted | Seated):
            return f"a second {event.type} event"
        if isinstance(event, RunEnded | RunInterrupted):
            if isinstance(event, RunEnded) and self.open is not None:
                return f"run_ended inside round {self.open}, which never ended"
            self.ended = event
            return None
        if self.stopped:
            return f"a {event.type} event after round {self.last} stopped the run"
        return self._round_event(event)

    def _round_event(self, event: Turn | Disclosure | Tally | RoundStarted | RoundEnded) -> str | None:
        r = event.round
        if isinstance(event, RoundStarted):
            if self.open is not None:
                return f"round {r} starts before round {self.open} ended"
            if r != self.last + 1:
                return f"round {r} starts after round {self.last}: rounds are out of order or missing"
            self.open = r
            return None
        if self.open != r:
            where = f"round {self.open}" if self.open is not None else f"between rounds (after round {self.last})"
            return f"a {event.type} event of round {r} in {where}"
        if isinstance(event, RoundEnded):
            self.open, self.last, self.stopped = None, r, event.stop
        return None
