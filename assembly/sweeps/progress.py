"""Live member-turn counts for a sweep, from the transcripts of the runs in flight.

A run reports to the sweep only when it ends, which for an LLM run can take many
minutes; meanwhile the sweep still wants to show that work is happening. Every
run appends its turns to its own `transcript.jsonl` as each phase ends, whichever
executor runs it, so the sweep reads the turns from there: `LiveTurns` remembers,
for every run in flight, how far it has read that run's transcript, and on each
`poll` reads only what was appended since.

Why tail the transcripts rather than have workers send counts over a
multiprocessing queue: the transcript is written anyway (no extra channel, nothing
to pickle into a process pool or a Ray task), a worker that dies mid-write cannot
corrupt it for the reader (a torn last line is simply not counted until it is
complete), and the same code serves the local, process and Ray executors. With Ray,
live counts need the run folders on storage the driver sees (as sweeps already
require); where it does not, counts arrive as runs finish. When a run finishes,
its exact count (`JobResult.turns`, counted in the worker) replaces the estimate.

Counting is cheap: a turn line is recognised by its prefix, and only lines holding
a model call (never a sim member's) are parsed, for calls and cost.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assembly.core.transcript import TRANSCRIPT

_TURN = b'{"type":"turn"'
_OK = b'"status":"ok"'
_MODEL = b'"model":'
_SIM_MODEL = b'"model":"sim"'
POLL_S = 0.5


@dataclass
class TurnCounts:
    """Member-turns, failed turns, model calls and their cost."""

    turns: int = 0
    failed: int = 0
    calls: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: TurnCounts) -> TurnCounts:
        return TurnCounts(
            self.turns + other.turns,
            self.failed + other.failed,
            self.calls + other.calls,
            self.cost_usd + other.cost_usd,
        )


class TranscriptTail:
    """Counts the turns of one growing transcript, reading each byte once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.counts = TurnCounts()

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return  # not created yet (the run is seating), or cleared for a re-run
        if not chunk:
            return
        self.offset += len(chunk)
        lines = (self.partial + chunk).split(b"\n")
        self.partial = lines.pop()  # incomplete until its newline is written
        for line in lines:
            if line.startswith(_TURN):
                self._count(line)

    def _count(self, line: bytes) -> None:
        c = self.counts
        c.turns += 1
        c.failed += _OK not in line
        if line.count(_MODEL) == line.count(_SIM_MODEL):
            return  # sim attempts: no calls, no cost
        try:
            attempts = json.loads(line).get("attempts") or []
        except ValueError:
            return
        for a in attempts:
            if a.get("model", "sim") != "sim":
                c.calls += 1
                c.cost_usd += float(a.get("cost_usd", 0.0))


class LiveTurns:
    """Turn counts of a sweep's runs: exact for finished runs, tailed for runs in flight.

    `start` and `finish` are called from the thread that runs the executor, `poll`
    and `snapshot` from a ticker thread; a lock keeps the two consistent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, TranscriptTail] = {}
        self._finished = TurnCounts()

    def start(self, run_dir: str) -> None:
        with self._lock:
            self._running[run_dir] = TranscriptTail(Path(run_dir) / TRANSCRIPT)

    def finish(self, run_dir: str, exact: TurnCounts | None) -> None:
        """A run ended: add its exact counts (or, lacking them, what its transcript shows)."""
        with self._lock:
            tail = self._running.pop(run_dir, None)
            if exact is None and tail is not None:
                tail.poll()
                exact = tail.counts
            if exact is not None:
                self._finished = self._finished + exact

    def poll(self) -> None:
        with self._lock:
            for tail in self._running.values():
                tail.poll()

    def snapshot(self) -> TurnCounts:
        with self._lock:
            total = self._finished
            for tail in self._running.values():
                total = total + tail.counts
            return total


class Ticker:
    """Calls `tick` every `interval_s` on a daemon thread until stopped (a context manager)."""

    def __init__(self, tick: Callable[[], None], interval_s: float = POLL_S) -> None:
        self.tick = tick
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="assembly-sweep-progress", daemon=True)

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.tick()
