"""kill -9 at random points, then `assembly resume`: same outcome and figures as an
uninterrupted run with the same seed (sim members), for both protocols."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from assembly.core.transcript import canonical, read_transcript
from tests.conftest import ROOT, SCENARIOS, run_cli

# Real sleeps so a run lasts long enough to be killed mid-way; no hang faults, so a
# run's course does not depend on timing at all.
REAL = [
    "--set",
    "members.sim.latency={mode: real, median_s: 0.02, sigma: 0.6}",
    "--set",
    "members.sim.faults={malformed_rate: 0.05, provider_error_rate: 0.05}",
]
CASES = {
    "assembly": [
        str(SCENARIOS / "citizens_assembly.yaml"),
        "--members",
        "16",
        "--rounds",
        "6",
        "--set",
        "protocol.decision_rule={kind: unanimity}",
        *REAL,
    ],
    "consensus_game": [str(SCENARIOS / "consensus_game.yaml"), "--members", "8", "--rounds", "12", *REAL],
}
KILLS_PER_CASE = 11


def _comparable(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in ("timing", "run_id")}


def _run_and_kill(args: list[str], out: Path, delay: float) -> bool:
    """Start a run, SIGKILL it `delay` s after its transcript appears; True if it was
    still running when killed."""
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "assembly.cli", "run", *args, "--out", str(out), "--quiet"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    transcript = out / "transcript.jsonl"
    deadline = time.monotonic() + 60
    while not transcript.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return alive


@pytest.mark.parametrize("case", sorted(CASES))
def test_kill_minus_nine_then_resume_matches_uninterrupted(tmp_path: Path, case: str) -> None:
    args = CASES[case]
    ref = run_cli("run", *args, "--out", str(tmp_path / "reference"), "--quiet")
    assert ref.returncode == 0, ref.stderr
    reference = json.loads((tmp_path / "reference" / "summary.json").read_text())
    ref_events = canonical(read_transcript(tmp_path / "reference").events)
    duration = sum(r.get("wall_s", 0) for r in [reference["timing"]]) or 1.0
    rng = random.Random(f"kill-{case}")
    killed_mid_run = 0
    for i in range(KILLS_PER_CASE):
        out = tmp_path / f"killed-{i}"
        killed_mid_run += _run_and_kill(args, out, rng.uniform(0.0, duration))
        t = read_transcript(out)  # a valid prefix, with at most a torn last line
        assert t.events, "the first events are written before any member acts"
        res = run_cli("resume", str(out), "--quiet")
        assert res.returncode == 0, (i, res.stderr)
        resumed = json.loads((out / "summary.json").read_text())
        assert _comparable(resumed) == _comparable(reference), f"kill point {i}"
        assert canonical(read_transcript(out).events) == ref_events, f"kill point {i}"
    assert killed_mid_run >= KILLS_PER_CASE // 2, "most kills must land while the run is going"
