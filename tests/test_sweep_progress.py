"""A sweep's live progress (member-turns as they happen, on each executor), the
stages of its post-processing, and figures redrawn only when their inputs change."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from assembly.core.transcript import TRANSCRIPT
from assembly.sweeps.executors import LocalExecutor, ProcessExecutor
from assembly.sweeps.progress import TranscriptTail
from assembly.sweeps.sweep import Tally, load_sweep, load_with_models, run_sweep
from tests.conftest import SCENARIOS, run_cli

SWEEP = """\
name: progress
scenario: {scenario}
grid:
  members: [4]
set:
  rounds: 3
{extra}
seeds: 2
concurrency: {concurrency}
"""


def sweep_file(folder: Path, extra: str = "", concurrency: int = 1) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "sweep.yaml"
    text = SWEEP.format(scenario=SCENARIOS / "hidden_profile.yaml", extra=extra, concurrency=concurrency)
    path.write_text(text)
    return path


def turns_written(out: Path) -> tuple[int, int]:
    """(turns, model calls) in every transcript of a sweep folder, counted independently."""
    turns = calls = 0
    for transcript in out.glob(f"runs/*/{TRANSCRIPT}"):
        for line in transcript.read_text().splitlines():
            event = json.loads(line)
            if event["type"] == "turn":
                turns += 1
                calls += sum(a.get("model", "sim") != "sim" for a in event.get("attempts", []))
    return turns, calls


class Recorder:
    """A progress callback keeping (runs done, live turns, live calls) at every call."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, int]] = []
        self.stages: list[str] = []

    def __call__(self, tally: Tally) -> None:
        self.seen.append((tally.done, tally.live.turns, tally.live.calls))

    def stage(self, text: str) -> None:
        self.stages.append(text)


def test_llm_sweep_reports_member_turns_before_the_first_run_finishes(tmp_path: Path) -> None:
    from tests.fake_openai import FakeOpenAIServer

    rec = Recorder()
    with FakeOpenAIServer(seed=2, latency_s=0.3) as server:
        sweep, llm = load_with_models(
            sweep_file(tmp_path / "spec"), model="openai/fake-model", api_base=server.base_url
        )
        report = run_sweep(sweep, tmp_path / "out", LocalExecutor(1), llm=llm, progress=rec, draw=False)
    assert set(report.results["status"]) == {"complete"}
    before_first = [(turns, calls) for done, turns, calls in rec.seen if done == 0]
    assert any(turns > 0 and calls > 0 for turns, calls in before_first), rec.seen
    turns, calls = turns_written(tmp_path / "out")
    assert rec.seen[-1][1:] == (turns, calls)  # at the end, exactly what the transcripts hold
    assert report.tally.live.calls == int(report.results["calls"].sum())
    assert "turns" in report.tally.line() and "calls" in report.tally.line()


def test_process_executor_reports_member_turns_as_they_happen(tmp_path: Path) -> None:
    # Sim members that really sleep (latency mode `real`), so a run lasts seconds.
    extra = "  members.sim.latency: {mode: real, median_s: 0.2, sigma: 0.0}\n  members.sim.faults.timeout_rate: 0.0"
    rec = Recorder()
    sweep = load_sweep(sweep_file(tmp_path / "spec", extra, concurrency=2))
    report = run_sweep(sweep, tmp_path / "out", ProcessExecutor(2), progress=rec, draw=False)
    assert set(report.results["status"]) == {"complete"}
    assert any(done == 0 and turns > 0 for done, turns, _ in rec.seen), rec.seen
    assert rec.seen[-1][1] == turns_written(tmp_path / "out")[0]
    assert "calls" not in report.tally.line()  # sim members: no calls, no spend shown


def test_a_tail_counts_only_complete_lines_and_reads_each_byte_once(tmp_path: Path) -> None:
    path = tmp_path / TRANSCRIPT
    sim = {"type": "turn", "status": "ok", "attempts": [{"attempt": 1, "outcome": "ok", "model": "sim"}]}
    llm = {
        "type": "turn",
        "status": "malformed",
        "attempts": [
            {"attempt": 1, "outcome": "malformed", "model": "m", "cost_usd": 0.25},
            {"attempt": 2, "outcome": "malformed", "model": "m", "cost_usd": 0.5},
        ],
    }
    lines = [json.dumps(e, separators=(",", ":")) for e in (sim, {"type": "round_started", "round": 1}, llm)]
    tail = TranscriptTail(path)
    tail.poll()  # no file yet
    path.write_text(lines[0] + "\n" + lines[1] + "\n" + lines[2][:20])  # the last one torn mid-write
    tail.poll()
    assert (tail.counts.turns, tail.counts.calls) == (1, 0)
    with open(path, "a") as fh:
        fh.write(lines[2][20:] + "\n")
    tail.poll()
    tail.poll()
    assert (tail.counts.turns, tail.counts.failed, tail.counts.calls) == (2, 1, 2)
    assert tail.counts.cost_usd == pytest.approx(0.75)


def test_post_processing_says_what_it_is_doing(tmp_path: Path) -> None:
    rec = Recorder()
    sweep = load_sweep(sweep_file(tmp_path / "spec"))
    report = run_sweep(sweep, tmp_path / "out", LocalExecutor(2), progress=rec, stage=rec.stage)
    assert rec.stages[0].startswith("writing results.csv")
    drawing = [s for s in rec.stages if s.startswith("drawing figure")]
    assert drawing and drawing[0].startswith("drawing figure 1/") and "outcome_rates" in drawing[0]
    assert rec.stages[-1] == ""  # back to the tally once done
    assert report.figures and not report.figures_kept


def test_figures_are_redrawn_only_when_their_inputs_change(tmp_path: Path) -> None:
    from assembly.sweeps.figures import draw_if_changed

    spec = sweep_file(tmp_path / "spec")
    out = tmp_path / "out"
    done = run_cli("sweep", str(spec), "--out", str(out), "-q")
    assert done.returncode == 0, done.stderr
    figures = out / "figures"
    stamps = {p.name: p.stat().st_mtime_ns for p in figures.iterdir()}

    again = run_cli("sweep", str(spec), "--out", str(out), "--resume")
    assert again.returncode == 0, again.stderr
    text = " ".join(again.stdout.split())
    assert "nothing to run: all 2 runs were already complete" in text and "runs/s" not in text
    assert "kept, not redrawn" in text
    assert {p.name: p.stat().st_mtime_ns for p in figures.iterdir()} == stamps

    # Other inputs redraw: here one run's outcome is different.
    sweep = load_sweep(spec)
    results = pd.read_csv(out / "results.csv")
    cells = pd.read_csv(out / "summary.csv")
    changed = results.assign(rounds=results["rounds"] + 1)
    drawn = draw_if_changed(sweep, figures, changed, cells, [], lambda _text: None)
    assert not drawn.kept
    assert any(p.stat().st_mtime_ns != stamps[p.name] for p in drawn.paths if p.name in stamps)
    kept = draw_if_changed(sweep, figures, changed, cells, [], lambda _text: None)
    assert kept.kept and kept.paths == drawn.paths


def test_quiet_sweep_prints_one_line_whatever_the_width(tmp_path: Path) -> None:
    spec = sweep_file(tmp_path / "spec")
    long_out = tmp_path / ("a-very-long-folder-name-" * 4) / "out"
    done = run_cli("sweep", str(spec), "--out", str(long_out), "-q", env={"COLUMNS": "40"})
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1 and str(long_out) in done.stdout
    run = run_cli(
        "run",
        str(SCENARIOS / "hidden_profile.yaml"),
        "--out",
        str(long_out.parent / "run"),
        "-q",
        env={"COLUMNS": "30"},
    )
    assert (
        run.returncode == 0 and len(run.stdout.splitlines()) == 1 and os.fspath(long_out.parent / "run") in run.stdout
    )
