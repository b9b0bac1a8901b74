"""Output paths that never clobber, and no tracebacks (issue 15).

A report (or any file written at a path the user named) is written atomically and
never replaces a folder, a FIFO, a device or a file of the run it reports on. Every
bad path ends in one message and exit 2 (bad input) or exit 1 (the OS refused).

Root ignores permission bits, so under root the unwritable-folder cases run the CLI
without the capabilities that let it (CAP_DAC_OVERRIDE and friends).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from assembly.core.atomic import write_atomic
from assembly.core.errors import OutputPathError
from assembly.sweeps.sweep import load_sweep
from tests.conftest import ROOT, SCENARIOS, run_cli

RUN = [str(SCENARIOS / "consensus_game.yaml"), "--members", "4", "--rounds", "2", "--quiet"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("paths") / "run"
    res = run_cli("run", *RUN, "--out", str(out))
    assert res.returncode == 0, res.stderr
    return out


def _one_error(res: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert res.returncode == code, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr and res.stderr.startswith("error:"), res.stderr
    for word in words:
        assert word in res.stderr, res.stderr


# ----------------------------------------------------------------------------- report -o


def test_report_refuses_a_folder(run_dir: Path, tmp_path: Path) -> None:
    _one_error(run_cli("report", str(run_dir), "-o", str(tmp_path)), 2, "is a folder")
    assert tmp_path.is_dir()


def test_report_never_turns_a_fifo_into_a_file(run_dir: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    _one_error(run_cli("report", str(run_dir), "-o", str(fifo)), 2, "FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.fixture
def null_device(tmp_path: Path) -> Path:
    """A character device like /dev/null (1, 3), made here so that a failing test
    could only ever replace this copy, never the system's."""
    path = tmp_path / "null"
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root (CAP_MKNOD)")
    return path


def test_report_never_replaces_a_device_named_directly_or_through_a_link(
    run_dir: Path, tmp_path: Path, null_device: Path
) -> None:
    link = tmp_path / "link-to-null"
    link.symlink_to(null_device)
    for target in (null_device, link):
        _one_error(run_cli("report", str(run_dir), "-o", str(target)), 2, "character device")
    assert stat.S_ISCHR(os.lstat(null_device).st_mode) and link.is_symlink()


def test_report_never_overwrites_a_file_of_the_run(run_dir: Path) -> None:
    for name in ("transcript.jsonl", "summary.json", ".lock"):
        before = (run_dir / name).read_bytes()
        _one_error(run_cli("report", str(run_dir), "-o", str(run_dir / name)), 2, "refusing to overwrite")
        assert (run_dir / name).read_bytes() == before
    # An earlier report is the one file of the run a report may replace.
    assert run_cli("report", str(run_dir)).returncode == 0
    res = run_cli("report", str(run_dir), "-o", str(run_dir / "report.html"))
    assert res.returncode == 0, res.stderr
    assert (run_dir / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_a_link_to_a_regular_file_is_followed_and_stays_a_link(run_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "real.html"
    target.write_text("old")
    link = tmp_path / "link.html"
    link.symlink_to(target)
    assert run_cli("report", str(run_dir), "-o", str(link)).returncode == 0
    assert link.is_symlink() and target.read_text().startswith("<!DOCTYPE html>")


def test_atomic_write_leaves_the_old_file_or_the_new_one_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    os.chmod(target, 0o640)
    write_atomic(target, "new")
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    below = tmp_path / "out.txt" / "x.html"
    with pytest.raises(OutputPathError, match="is a file"):
        write_atomic(below, "x")


# ----------------------------------------------------------------------------- run --out


def test_run_out_at_a_file_or_below_one(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    _one_error(run_cli("run", *RUN, "--out", str(afile)), 2, "is a file")
    _one_error(run_cli("run", *RUN, "--out", str(afile / "below")), 2, "is a file")
    assert afile.read_text() == "keep me"


def test_bad_scenario_values_end_in_one_message(tmp_path: Path) -> None:
    rule = "protocol.decision_rule={kind: supermajority, threshold: '1/0'}"
    res = run_cli("run", str(SCENARIOS / "citizens_assembly.yaml"), "--set", rule, "--out", str(tmp_path / "r"))
    _one_error(res, 2, "decision_rule.threshold", "zero denominator")
    res = run_cli("validate", str(SCENARIOS / "citizens_assembly.yaml"), "--set", "seed=true")
    _one_error(res, 2, "seed", "not true or false")
    res = run_cli("validate", str(SCENARIOS / "citizens_assembly.yaml"), "--set", "protocol.quorum=" + "9" * 100_000)
    _one_error(res, 2, "protocol.quorum", "100,000 characters")
    assert len(res.stderr) < 1000
    res = run_cli("validate", str(SCENARIOS / "citizens_assembly.yaml"), "--set", "protocol.quorum='2/3'")
    assert res.returncode == 0, res.stderr


def test_quorum_as_an_exact_fraction_decides_like_the_rules() -> None:
    from fractions import Fraction

    from assembly.protocols.facilitated.rules import quorum_met
    from assembly.scenario.loading import load_scenario

    sc = load_scenario(SCENARIOS / "citizens_assembly.yaml", {"protocol.quorum": "2/3"})
    assert sc.protocol.quorum == Fraction(2, 3)  # type: ignore[attr-defined]
    assert quorum_met(2, 3, sc.protocol.quorum) and not quorum_met(5, 8, sc.protocol.quorum)  # type: ignore[attr-defined]
    # Decimal quorums keep their meaning and their run keys: 0.6 is still written 0.6.
    written = yaml.safe_load((SCENARIOS / "citizens_assembly.yaml").read_text())["protocol"]["quorum"]
    plain = load_scenario(SCENARIOS / "citizens_assembly.yaml")
    dumped = json.loads(plain.model_dump_json())["protocol"]["quorum"]
    assert isinstance(written, float) and dumped == written and isinstance(dumped, float)


# ----------------------------------------------------------------------------- folders nobody may write


# Capabilities that let root ignore permission bits (linux/capability.h).
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3
PR_CAPBSET_DROP = 24


def _without_root_overrides() -> None:
    """Run in the child before exec: drop from the capability bounding set what lets
    root bypass permission bits, so the CLI meets them like any user (still uid 0,
    so it can read the interpreter and the repository as before)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _run_unprivileged(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-B", "-m", "assembly.cli", *args],
            cwd=ROOT,
            env={**os.environ, "COLUMNS": "120", "NO_COLOR": "1"},
            preexec_fn=_without_root_overrides if os.geteuid() == 0 else None,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot run without root's permission overrides here: {exc}")


def test_run_into_a_folder_it_may_not_write(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    _one_error(_run_unprivileged("run", *RUN, "--out", str(locked / "run")), 1, "Permission denied")
    assert not (locked / "run").exists()


def test_resume_in_a_folder_it_may_not_write(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "summary.json").unlink()  # unfinished bookkeeping: resume has something to write
    for path in [copy, *copy.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    _one_error(_run_unprivileged("resume", str(copy), "--quiet"), 1, "Permission denied")
    assert not (copy / "summary.json").exists()


# ----------------------------------------------------------------------------- sweeps


def test_a_sweep_records_a_run_it_cannot_write_and_finishes_the_rest(tmp_path: Path) -> None:
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(
        f"name: blocked\nscenario: {SCENARIOS / 'consensus_game.yaml'}\ngrid:\n  members: [4, 5]\nseeds: 1\n"
    )
    out = tmp_path / "sweep"
    plan = load_sweep(sweep_file)
    blocked = out / plan.runs[0].dir
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the run folder goes")
    res = run_cli("sweep", str(sweep_file), "--out", str(out), "--quiet", "--executor", "local")
    assert res.returncode == 0, res.stderr
    assert "2 runs, 1 failed" in res.stdout.replace("2/2 runs", "2 runs")
    import csv

    rows = list(csv.DictReader((out / "results.csv").open()))
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1 and "Traceback" not in failed[0]["error"]
    assert "a folder" in failed[0]["error"] or "is a file" in failed[0]["error"]
    assert blocked.read_text() == "a file where the run folder goes"
