"""The append-only JSONL transcript: durable writing, tolerant reading.

Writing: every event is one line, flushed to the OS as soon as its batch is written,
and the file is fsynced at the end of every round, so after `kill -9` the file is a
valid prefix with at most one torn last line.

Reading: a torn last line is skipped and reported (`Transcript.torn`), never fatal;
a line that is corrupt in the middle is an error, because that is not a crash
artefact but damage.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pydantic import TypeAdapter, ValidationError

from assembly.core.events import READABLE_VERSIONS, SCHEMA_VERSION, AnyEvent, Event, RunStarted
from assembly.core.redaction import redact

TRANSCRIPT = "transcript.jsonl"
SUMMARY = "summary.json"

# Fields whose value depends on the clock, on when the run was launched, or on
# whether an answer came from the response cache (provenance, not content); dropped
# when two transcripts are compared for determinism or reproduction.
NONDETERMINISTIC_KEYS = frozenset({"timing", "run_id", "parent", "cache_hit"})

_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyEvent)


class TranscriptError(Exception):
    """The transcript cannot be read (missing, corrupt, or an unreadable schema version)."""


class TranscriptWriter:
    """Appends events to `transcript.jsonl`; one instance per run."""

    def __init__(self, path: Path, *, append: bool = False, durable: bool = True) -> None:
        # durable=False skips the per-round fsync (events are still flushed to the OS
        # as written). Sweeps of sim-only runs use it: a run that did not finish is
        # re-run whole on --resume, so per-round durability buys nothing there.
        self.path = path
        self.durable = durable
        path.parent.mkdir(parents=True, exist_ok=True)
        # A new transcript is created by its first write (see `_create`), never empty.
        self._fh: IO[str] | None = open(path, "a", encoding="utf-8") if append else None  # noqa: SIM115
        self._closed = False

    def write(self, events: Iterable[Event]) -> None:
        # Redacted here, at the one place events become bytes, whatever produced their text.
        text = redact("".join(e.model_dump_json(exclude_none=True) + "\n" for e in events))
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

    def sync(self) -> None:
        """Force written events to disk (called at every round end)."""
        fh = self._require_open()
        fh.flush()
        if self.durable:
            getattr(os, "fdatasync", os.fsync)(fh.fileno())

    def close(self) -> None:
        self._closed = True
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())  # a finished run is always on disk
            self._fh.close()
            self._fh = None

    def _require_open(self) -> IO[str]:
        if self._fh is None:
            raise TranscriptError(f"{self.path}: writer already closed")
        return self._fh


@dataclass
class Transcript:
    path: Path
    events: list[Any] = field(default_factory=list)
    torn: str | None = None  # text of a torn last line, when the run was cut mid-write

    @property
    def started(self) -> RunStarted:
        first = self.events[0] if self.events else None
        if not isinstance(first, RunStarted):
            raise TranscriptError(f"{self.path}: does not start with a run_started event")
        return first


def parse_event(line: str) -> Any:
    return _ADAPTER.validate_json(line)


def read_transcript(path: Path | str) -> Transcript:
    """Read a transcript file or run folder, tolerating a torn last line."""
    p = Path(path)
    if p.is_dir():
        p = p / TRANSCRIPT
    if not p.exists():
        raise TranscriptError(f"{p}: no transcript here")
    raw = p.read_bytes().decode("utf-8", errors="replace")
    lines = raw.split("\n")
    complete, tail = lines[:-1], lines[-1]
    out = Transcript(path=p)
    for i, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        if i == 1:
            _check_version(p, line)
        try:
            out.events.append(parse_event(line))
        except ValidationError as exc:
            # A corrupt line that is not the last is damage, not a crash artefact.
            raise TranscriptError(f"{p}:{i}: not a valid event ({exc.errors()[0]['msg']})") from None
    if tail.strip():
        # No trailing newline: the writer was killed mid-line.
        try:
            out.events.append(parse_event(tail))
        except ValidationError:
            out.torn = tail[:200]
    return out


def _check_version(path: Path, line: str) -> None:
    try:
        version = json.loads(line).get("schema_version")
    except json.JSONDecodeError:
        return  # reported as an invalid event by the caller
    if version is not None and version not in READABLE_VERSIONS:
        raise TranscriptError(
            f"{path}: transcript schema version {version}; this assembly reads versions "
            f"{sorted(READABLE_VERSIONS)} (current {SCHEMA_VERSION}). Use a matching assembly release."
        )


def canonical(events: Iterable[Event]) -> list[dict[str, Any]]:
    """Events as plain dicts without clock-dependent fields, for exact comparison."""
    return [_strip(e.model_dump(mode="json", exclude_none=True)) for e in events]


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in NONDETERMINISTIC_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


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
