"""Ctrl-C (SIGINT) during a run: the current event is finished, the run is marked
interrupted, the user is told how to resume, and resuming completes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from assembly.core.events import RunInterrupted
from assembly.core.transcript import read_transcript
from tests.conftest import ROOT, SCENARIOS, run_cli


def test_sigint_marks_the_run_interrupted_and_resume_finishes_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "assembly.cli",
            "run",
            str(SCENARIOS / "citizens_assembly.yaml"),
            "--out",
            str(out),
            "--quiet",
            "--set",
            "members.sim.latency={mode: real, median_s: 0.05}",
            "--set",
            "members.sim.faults={}",
            "--set",
            "protocol.decision_rule={kind: unanimity}",
        ],
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    transcript = out / "transcript.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not transcript.exists() or transcript.read_text().count("round_ended") < 2):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert f"assembly resume {out}" in stderr.replace("\n", "")
    events = read_transcript(out).events
    assert isinstance(events[-1], RunInterrupted)
    assert read_transcript(out).torn is None, "the event being written when Ctrl-C came is whole"
    res = run_cli("resume", str(out), "--quiet")
    assert res.returncode == 0, res.stderr
    assert json.loads((out / "summary.json").read_text())["status"] == "complete"
