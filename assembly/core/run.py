"""One run on the engine: drive seated members through a protocol, write the run folder.

The run folder holds `transcript.jsonl` (written as the run goes) and
`summary.json`, which is computed by re-reading the transcript from disk, so the
summary can only report what the transcript supports.
"""

from __future__ import annotations

import functools
import json
import platform
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from assembly.core import metrics
from assembly.core.atomic import write_atomic
from assembly.core.collector import collector_tuned_for_a_run
from assembly.core.engine import Engine, Listener
from assembly.core.errors import OutputPathError
from assembly.core.events import AnyEvent, RunStarted, Seated
from assembly.core.lock import writer_lock
from assembly.core.member import Member
from assembly.core.protocol import Protocol
from assembly.core.provenance import provenance
from assembly.core.redaction import redact
from assembly.core.spec import ScenarioBase, resolved, run_key
from assembly.core.transcript import SUMMARY, TRANSCRIPT, Transcript, TranscriptWriter, read_transcript
from assembly.core.view import ViewBuilder

_VERSIONED = ("assembly", "pydantic", "numpy", "networkx", "autogen-agentchat", "autogen-ext", "openai", "litellm")


@functools.cache
def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def unused_dir(base: Path, stem: str) -> Path:
    """`base/stem`, or `base/stem-2`, `-3`, ... if taken: a run never overwrites another."""
    path, n = base / stem, 1
    while path.exists():
        n += 1
        path = base / f"{stem}-{n}"
    return path


def refuse_if_taken(run_dir: Path) -> None:
    """Refuse a folder that already holds a run.

    An empty transcript is not a run: only an assembly older than the atomic
    creation of transcripts (`TranscriptWriter._create`) could leave one, killed
    before its first event, and `resume` cannot continue it; a new run replaces it."""
    path = run_dir / TRANSCRIPT
    try:
        empty = path.is_file() and path.stat().st_size == 0
    except OSError:
        empty = False
    if path.exists() and not empty:
        raise OutputPathError(
            f"{run_dir} already holds a run; pick another folder (or `assembly resume {run_dir}` to continue it)"
        )


def new_run_dir(base: Path, scenario: ScenarioBase) -> Path:
    return unused_dir(base, f"{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}-s{scenario.seed}")


def models_of(members: dict[str, Member]) -> dict[str, Any] | None:
    """The model profiles the members use, as they record them (`model_record`), by name."""
    records: dict[str, Any] = {}
    for m in members.values():
        record = getattr(m, "model_record", None)
        if isinstance(record, dict):
            records[str(record.get("name"))] = record
    return dict(sorted(records.items())) or None


async def execute(
    scenario: ScenarioBase,
    run_dir: Path,
    protocol: Protocol,
    seated: Seated,
    members: dict[str, Member],
    *,
    listeners: Sequence[Listener] = (),
    durable: bool = True,
) -> dict[str, Any]:
    """Run seated members through `protocol` into `run_dir`; return the summary.

    The run holds `run_dir`'s writer lock throughout (`core.lock`), and refuses a
    folder that already holds a run, so two runs can never write one transcript."""
    with writer_lock(run_dir, "run"):
        refuse_if_taken(run_dir)
        (run_dir / TRANSCRIPT).unlink(missing_ok=True)  # empty: see `refuse_if_taken`
        return await _execute(scenario, run_dir, protocol, seated, members, listeners=listeners, durable=durable)


async def _execute(
    scenario: ScenarioBase,
    run_dir: Path,
    protocol: Protocol,
    seated: Seated,
    members: dict[str, Member],
    *,
    listeners: Sequence[Listener],
    durable: bool,
) -> dict[str, Any]:
    views = ViewBuilder(scenario, protocol.actions)
    writer = TranscriptWriter(run_dir / TRANSCRIPT, durable=durable)
    written: list[AnyEvent] = []  # exactly the events written to the transcript, in order
    engine = Engine(scenario, protocol, members, writer, views, [written.append, *listeners])
    with collector_tuned_for_a_run():
        try:
            engine.emit(
                RunStarted(
                    run_id=run_dir.name,
                    run_key=run_key(scenario),
                    scenario=resolved(scenario),
                    seed=scenario.seed,
                    protocol=protocol.name,
                    versions=dict(versions()),
                    models=models_of(members),
                    provenance=provenance(),
                    timing={"started_at": time.time()},
                ),
                seated,
            )
            await engine.run()
        finally:
            try:
                writer.close()  # raises a disk error that a round's sync met on its thread
            finally:
                await _close(members)  # their HTTP sessions and servers, whatever the disk did
        return write_summary(run_dir, type(protocol), Transcript.of(written, run_dir / TRANSCRIPT))


def write_summary(
    run_dir: Path, protocol: type[Protocol], events: Sequence[AnyEvent] | Transcript | None = None
) -> dict[str, Any]:
    """Compute summary.json from the run's transcript.

    A live run passes the very events it wrote, which saves re-parsing the file
    (a tenth of a sim run); `assembly replay --check`, tested on every shipped
    scenario, certifies that figures from the file and from these events agree.
    """
    run = read_transcript(run_dir / TRANSCRIPT) if events is None else events
    summary = metrics.summarize(run, protocol)
    # Atomic: a summary is whole or absent. Redacted like every byte written.
    write_atomic(run_dir / SUMMARY, redact(json.dumps(summary, indent=2, sort_keys=False) + "\n"))
    return summary


async def _close(members: dict[str, Member]) -> None:
    for m in members.values():
        close = getattr(m, "close", None)
        if close is not None:
            await close()
