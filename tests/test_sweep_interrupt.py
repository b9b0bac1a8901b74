"""Ctrl-C during a sweep: finished runs stay intact, the user is told how to resume,
and `--resume` completes the grid without redoing finished runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import ROOT, SCENARIOS, run_cli

SWEEP = f"""
name: interrupted
scenario: {SCENARIOS / "citizens_assembly.yaml"}
grid:
  members: [6, 10]
set:
  population.roles.0.quota: {{min: 0}}
  population.roles.1.quota: {{min: 0}}
  members.sim.latency: {{mode: real, median_s: 0.03}}
  members.sim.faults: {{}}
seeds: 6
concurrency: 2
"""


@pytest.mark.parametrize("executor", ["local", "process"])
def test_ctrl_c_then_resume(tmp_path: Path, executor: str) -> None:
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(SWEEP)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "assembly.cli",
            "sweep",
            str(sweep_file),
            "--out",
            str(out),
            "--executor",
            executor,
            "--quiet",
        ],
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.glob("runs/*/summary.json"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole process group
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr
    finished = {p.parent.name: p.read_text() for p in out.glob("runs/*/summary.json")}
    assert 2 <= len(finished) < 12, "the sweep must have been cut part-way"

    res = run_cli("sweep", str(sweep_file), "--out", str(out), "--executor", executor, "--resume", "--quiet")
    assert res.returncode == 0, res.stderr
    for name, text in finished.items():  # finished runs were kept, not redone
        assert (out / "runs" / name / "summary.json").read_text() == text
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 12 and results["outcome"].notna().all()
