"""One writer per run folder and per sweep folder, with real processes (issue 15).

A second writer is refused at once (exit 1) with the holder's pid; a holder killed
with -9 leaves a lock file that blocks nobody; a kill at any point of a run's
start-up leaves a folder that `resume` or `run --out` takes, and their advice never
sends the user round in a circle.

The first writer is frozen right after it takes its lock (`tests.cli_under_fault
stop-after-lock`), so "the second starts while the first holds the lock" is a fact,
not a matter of timing.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from assembly.core.errors import UserError
from assembly.core.events import RoundEnded, RoundStarted, RunEnded, RunStarted, Seated
from assembly.core.lock import LOCK_FILE
from assembly.core.transcript import canonical, read_transcript
from assembly.inspection.reexecute import resume_async
from assembly.launch import execute
from assembly.scenario.loading import load_scenario
from tests.conftest import ROOT, SCENARIOS, run_cli

RUN = [str(SCENARIOS / "citizens_assembly.yaml"), "--members", "8", "--rounds", "4", "--quiet"]
OVERRIDES = {"members": 8, "rounds": 4}  # RUN's, for the in-process runs
SWEEP = """
name: locked
scenario: {scenario}
grid:
  members: [8, 10]
seeds: 2
concurrency: 2
"""


def _under_fault(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.cli_under_fault", *args],
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _frozen(*cli_args: str) -> subprocess.Popen[str]:
    """A CLI process stopped right after it took its writer lock."""
    proc = _under_fault("stop-after-lock", "--", *cli_args)
    while _state(proc.pid) != "T":
        assert proc.poll() is None, f"exited before taking the lock: {proc.communicate()}"
        time.sleep(0.01)
    return proc


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Let the process go on until it exits.

    Keep letting it go: a writer that was still starting when first told to go on
    stops itself once it takes the lock (after the other writer released it), and
    one SIGCONT sent before that stop would leave it frozen for good.
    """
    deadline = time.monotonic() + 300
    while True:
        proc.send_signal(signal.SIGCONT)
        try:
            out, err = proc.communicate(timeout=0.2)
        except subprocess.TimeoutExpired:
            if time.monotonic() > deadline:
                raise
            continue
        return proc.returncode, out, err


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lock") / "reference"
    res = run_cli("run", *RUN, "--out", str(out))
    assert res.returncode == 0, res.stderr
    return out


@pytest.fixture
def killed(reference: Path, tmp_path: Path) -> Path:
    """The reference run as a kill -9 in round 3 leaves it: a prefix of its lines."""
    lines = (reference / "transcript.jsonl").read_text().splitlines(keepends=True)
    ends = [i for i, line in enumerate(lines) if '"type":"round_ended"' in line]
    out = tmp_path / "killed"
    out.mkdir()
    (out / "transcript.jsonl").write_text("".join(lines[: ends[1] + 4]))
    return out


def _assert_whole(run_dir: Path, reference: Path) -> None:
    """Each round once, one run_ended, and the same run as the uninterrupted one."""
    events = read_transcript(run_dir).events
    assert [e.round for e in events if isinstance(e, RoundStarted)] == sorted(
        {e.round for e in events if isinstance(e, RoundStarted)}
    )
    assert Counter(type(e) for e in events)[RunEnded] == 1 and isinstance(events[-1], RunEnded)
    assert sum(isinstance(e, RunStarted) for e in events) == 1

    def comparable(evs: list[object]) -> list[dict[str, object]]:
        return [e for e in canonical(evs) if e["type"] != "run_started"]  # type: ignore[arg-type]

    assert comparable(events) == comparable(read_transcript(reference).events)
    ours = json.loads((run_dir / "summary.json").read_text())
    theirs = json.loads((reference / "summary.json").read_text())
    assert ours["per_round"] == theirs["per_round"] and ours["outcome"] == theirs["outcome"]


def test_a_second_resume_is_refused_while_the_first_holds_the_run(killed: Path, reference: Path) -> None:
    first = _frozen("resume", str(killed), "--quiet")
    second = run_cli("resume", str(killed), "--quiet")
    assert second.returncode == 1
    assert f"pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
    code, _, err = _finish(first)
    assert code == 0, err
    _assert_whole(killed, reference)
    # Once the first is done, another resume only finds a finished run.
    again = run_cli("resume", str(killed), "--quiet")
    assert again.returncode == 0, again.stderr
    _assert_whole(killed, reference)


def test_two_resumes_started_together_write_each_round_once(killed: Path, reference: Path) -> None:
    procs = [_under_fault("stop-after-lock", "--", "resume", str(killed), "--quiet") for _ in range(2)]
    # Whichever is frozen holds the lock; let both go once one of them has it or is done.
    while all(_state(p.pid) != "T" and p.poll() is None for p in procs):
        time.sleep(0.01)
    results = [_finish(p) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes in ([0, 0], [0, 1]), results  # refused at once, or resumed a finished run
    for code, _, err in results:
        assert "Traceback" not in err
        if code == 1:
            assert "being written by another assembly process (pid" in err
    _assert_whole(killed, reference)


def test_a_holder_killed_with_minus_nine_leaves_no_lock_behind(killed: Path, reference: Path) -> None:
    holder = _frozen("resume", str(killed), "--quiet")
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert (killed / LOCK_FILE).read_text().split()[0] == str(holder.pid)  # the stale file stays
    res = run_cli("resume", str(killed), "--quiet")
    assert res.returncode == 0, res.stderr
    _assert_whole(killed, reference)


def test_two_runs_into_one_folder(tmp_path: Path) -> None:
    out = tmp_path / "shared"
    first = _frozen("run", *RUN, "--out", str(out))
    second = run_cli("run", *RUN, "--out", str(out))
    assert second.returncode == 1 and f"pid {first.pid}" in second.stderr, second.stderr
    code, _, err = _finish(first)
    assert code == 0, err
    third = run_cli("run", *RUN, "--out", str(out))
    assert third.returncode == 2 and "already holds a run" in third.stderr
    assert "Traceback" not in second.stderr + third.stderr
    events = read_transcript(out).events
    assert sum(isinstance(e, RunStarted) for e in events) == 1 and isinstance(events[-1], RunEnded)


def test_two_sweep_resumes_on_one_folder(tmp_path: Path) -> None:
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(SWEEP.format(scenario=SCENARIOS / "citizens_assembly.yaml"))
    out = tmp_path / "sweep"
    args = ["sweep", str(sweep_file), "--out", str(out), "--quiet", "--executor", "local"]
    first = _frozen(*args, "--resume")
    second = run_cli(*args, "--resume")
    assert second.returncode == 1 and f"pid {first.pid}" in second.stderr, second.stderr
    code, out_text, err = _finish(first)
    assert code == 0, err
    assert "4/4 runs, 0 failed" in out_text
    results = (out / "results.csv").read_text()
    assert "failed" not in results.split("\n", 1)[1]
    assert not list(out.rglob("error.txt"))


# ----------------------------------------------------------------------------- kill at every point of start-up


def _follow_advice(out: Path, run_args: list[str]) -> None:
    """Do what the tool says until the run is finished: at most two commands."""
    res = run_cli("resume", str(out), "--quiet")
    if res.returncode == 0:
        return
    assert "Traceback" not in res.stderr
    assert "assembly resume" not in res.stderr, f"resume advises resume: {res.stderr}"
    again = run_cli("run", *run_args, "--out", str(out))
    assert again.returncode == 0, f"resume said {res.stderr!r}; run --out said {again.stderr!r}"


def _follow_advice_in_process(out: Path) -> None:
    """`_follow_advice` through the functions the commands call (each CLI start costs
    seconds, and the messages are the exceptions' own)."""
    try:
        asyncio.run(resume_async(out))
        return
    except UserError as exc:
        assert "assembly resume" not in str(exc), f"resume advises resume: {exc}"
        first = str(exc)
    try:
        asyncio.run(execute(load_scenario(RUN[0], OVERRIDES), out))
    except UserError as exc:
        raise AssertionError(f"resume said {first!r}; run --out said {exc}") from None


def _ended(proc: subprocess.Popen[str]) -> dict[str, str]:
    out = proc.communicate(timeout=600)[0]
    return {n: code for _, n, code in (line.split() for line in out.splitlines() if line.startswith("ended "))}


def test_a_kill_at_any_point_of_start_up_is_recoverable(tmp_path: Path, reference: Path) -> None:
    count = tmp_path / "count"
    args = ["--", "run", *RUN, "--out", str(tmp_path / "killed-at-{n}")]
    probe = _under_fault("kill-at-lines", str(count), "0", *args)
    assert _ended(probe) == {"0": "0"}
    lines = int(count.read_text())
    assert lines > 20  # the lock, the folder check, the writer and the transcript's creation
    points = sorted({*range(1, lines + 1, max(1, lines // 12)), lines})
    killer = _under_fault("kill-at-lines", str(count), ",".join(map(str, points)), *args)
    assert _ended(killer) == {str(n): str(-signal.SIGKILL) for n in points}
    rounds = [e.round for e in read_transcript(reference).events if isinstance(e, RoundEnded)]
    for n in points:
        out = tmp_path / f"killed-at-{n}"
        transcript = out / "transcript.jsonl"
        if transcript.exists():  # created with its first events, or not at all
            head = read_transcript(transcript).events[:2]
            assert [type(e) for e in head] == [RunStarted, Seated], n
        _follow_advice_in_process(out)
        events = read_transcript(out).events
        assert isinstance(events[-1], RunEnded), n
        assert [e.round for e in events if isinstance(e, RoundEnded)] == rounds, n


def test_an_empty_transcript_from_an_older_version_is_started_again(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    (out / "transcript.jsonl").write_text("")
    res = run_cli("resume", str(out), "--quiet")
    assert res.returncode == 2 and "nothing to resume" in res.stderr and "--out" in res.stderr
    _follow_advice(out, RUN)
    assert isinstance(read_transcript(out).events[-1], RunEnded)
