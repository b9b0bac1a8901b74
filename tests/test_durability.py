"""The transcript writer's durability and the run's collector setting.

A round's events reach the OS when written and the disk on a thread while the next
round plays (`TranscriptWriter.sync`); the collector is tuned for the length of a
run and left as it was found (`core.collector`)."""

from __future__ import annotations

import gc
import os
import weakref
from pathlib import Path

import pytest

from assembly.core.collector import RUN_GEN0_THRESHOLD, collection_deferred, collector_tuned_for_a_run
from assembly.core.events import RoundEnded, RoundStarted
from assembly.core.transcript import TranscriptWriter, read_transcript


def _write_rounds(writer: TranscriptWriter, rounds: range) -> None:
    for r in rounds:
        writer.write([RoundStarted(round=r), RoundEnded(round=r, stop=False)])
        writer.sync()


def test_every_synced_round_is_forced_to_disk_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        synced.append(os.fstat(fd).st_size)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    path = tmp_path / "transcript.jsonl"
    writer = TranscriptWriter(path)
    _write_rounds(writer, range(1, 6))
    writer.close()
    # One datasync per round, each covering at least the bytes written by then.
    assert len(synced) == 5
    assert synced == sorted(synced) and synced[-1] == path.stat().st_size
    # (No run header: read as damaged on purpose, for its events.)
    events = read_transcript(path, allow_damage=True).events
    assert [e.round for e in events if isinstance(e, RoundEnded)] == [1, 2, 3, 4, 5]


def test_a_failing_disk_is_reported_by_the_next_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fdatasync", failing)
    writer = TranscriptWriter(tmp_path / "transcript.jsonl")
    _write_rounds(writer, range(1, 2))  # the failure happens on the sync thread
    with pytest.raises(OSError, match="No space left"):
        _write_rounds(writer, range(2, 3))
    monkeypatch.undo()
    writer.close()


def test_close_reports_a_sync_that_failed_in_the_last_round(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing)
    writer = TranscriptWriter(tmp_path / "transcript.jsonl")
    _write_rounds(writer, range(1, 2))
    with pytest.raises(OSError, match="Input/output error"):
        writer.close()


def test_the_collector_is_tuned_for_a_run_and_restored_after() -> None:
    before = gc.get_threshold()
    assert before[0] != RUN_GEN0_THRESHOLD
    with collector_tuned_for_a_run():
        assert gc.get_threshold() == (RUN_GEN0_THRESHOLD, before[1], before[2])
        assert gc.get_freeze_count() > 0
        # A run overlapping this one leaves the setting to the first.
        with collector_tuned_for_a_run():
            assert gc.get_threshold()[0] == RUN_GEN0_THRESHOLD
        assert gc.get_threshold()[0] == RUN_GEN0_THRESHOLD
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_collector_is_restored_when_a_run_fails() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), collector_tuned_for_a_run():
        raise RuntimeError("the run failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_collection_is_deferred_inside_the_block_and_due_at_once_after() -> None:
    assert gc.isenabled()
    with collection_deferred():
        assert not gc.isenabled()
        # Overlapping blocks leave the collector to the one that disabled it.
        with collection_deferred():
            assert not gc.isenabled()
        assert not gc.isenabled()
        # Cyclic garbage made inside outlives any number of allocations there...
        cycle = _Cycle()
        alive = weakref.ref(cycle)
        del cycle
        junk = [[i] for i in range(3 * gc.get_threshold()[0])]
        del junk
        assert alive() is not None
    assert gc.isenabled()
    # ...and is collected as soon as a collection runs after it.
    gc.collect()
    assert alive() is None


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_collector_disabled_before_stays_disabled_and_errors_restore_it() -> None:
    gc.disable()
    try:
        with collection_deferred():
            assert not gc.isenabled()
        assert not gc.isenabled(), "a collector someone else disabled must stay disabled"
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), collection_deferred():
        raise RuntimeError("a phase failed")
    assert gc.isenabled()
