"""A transcript that proves its integrity (issue 15).

Real runs, real files and the real command line: a finished run's transcript is
damaged in each way a copy, an editor or a second writer can damage it, and every
command that trusts a transcript (`replay --check`, `resume`, `rerun`, `report`)
must refuse it with exit 2 and one message naming the first bad line, never a
traceback, and never rewrite the run's summary. A torn last line after a kill stays
a crash artefact that resume handles; transcripts of schema 1 (no chain, recorded
by the version before it, in tests/data) still read, flagged as unverified.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assembly.core.integrity import START, Link, seal, unseal
from assembly.core.transcript import read_transcript
from tests.conftest import ROOT, SCENARIOS, run_cli

V1_RUN = ROOT / "tests" / "data" / "schema_v1_run"  # `assembly run` of the version before schema 2
RUN_ARGS = [
    str(SCENARIOS / "citizens_assembly.yaml"),
    "--members",
    "8",
    "--rounds",
    "5",
    "--set",
    "protocol.decision_rule={kind: unanimity}",  # no early decision: five full rounds
]
COMMANDS = ("check", "resume", "rerun", "report")

Lines = list[str]
Corruption = Callable[[Lines], tuple[str, int]]  # lines -> (damaged text, first bad line, 1-based)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    res = run_cli("run", *RUN_ARGS, "--out", str(out), "--quiet")
    assert res.returncode == 0, res.stderr
    return out


def _at(lines: Lines, kind: str, n: int) -> int:
    """Index of the n-th line holding an event of `kind`."""
    return [i for i, line in enumerate(lines) if f'"type":"{kind}"' in line][n]


def edit_a_value(lines: Lines) -> tuple[str, int]:
    i = next(i for i, line in enumerate(lines) if '"status":"ok"' in line and '"message":"' in line)
    out = [*lines]
    out[i] = out[i].replace('"message":"', '"message":"Frankly, ', 1)
    return "".join(out), i + 1


def delete_a_line(lines: Lines) -> tuple[str, int]:
    i = _at(lines, "turn", 3)
    return "".join(lines[:i] + lines[i + 1 :]), i + 1


def duplicate_a_line(lines: Lines) -> tuple[str, int]:
    i = _at(lines, "turn", 3)
    return "".join([*lines[: i + 1], lines[i], *lines[i + 1 :]]), i + 2


def swap_two_rounds(lines: Lines) -> tuple[str, int]:
    a, b, c = (_at(lines, "round_started", n) for n in (1, 2, 3))  # rounds 2 and 3
    return "".join(lines[:a] + lines[b:c] + lines[a:b] + lines[c:]), a + 1


def run_ended_in_the_middle(lines: Lines) -> tuple[str, int]:
    e = _at(lines, "round_ended", 1) + 1
    return "".join([*lines[:e], lines[-1], *lines[e:-1]]), e + 1


def truncate_mid_file(lines: Lines) -> tuple[str, int]:
    text = "".join(lines)
    cut = text[: len(text) // 2]
    return cut, cut.count("\n") + 1  # a torn line, although summary.json says the run finished


def append_a_garbage_line(lines: Lines) -> tuple[str, int]:
    return "".join(lines) + "garbage\n", len(lines) + 1


def append_a_torn_line(lines: Lines) -> tuple[str, int]:
    return "".join(lines) + '{"type":"turn","round":9,"pha', len(lines) + 1


def two_writers_interleaved(lines: Lines) -> tuple[str, int]:
    """What two `resume`s of one run killed after round 1 write without a lock: each
    later round twice, one after the other, then two run_ended (issue 15, finding 1)."""
    starts = [_at(lines, "round_started", n) for n in range(1, 5)] + [len(lines) - 1]
    blocks = [lines[a:b] for a, b in itertools.pairwise(starts)]
    out = lines[: starts[0]]
    for block in blocks:
        out += block + block
    out += [lines[-1], lines[-1]]
    return "".join(out), starts[0] + len(blocks[0]) + 1


CORRUPTIONS: dict[str, Corruption] = {
    f.__name__: f
    for f in (
        edit_a_value,
        delete_a_line,
        duplicate_a_line,
        swap_two_rounds,
        run_ended_in_the_middle,
        truncate_mid_file,
        append_a_garbage_line,
        append_a_torn_line,
        two_writers_interleaved,
    )
}


def _damaged(source: Path, dest: Path, corruption: Corruption) -> int:
    shutil.copytree(source, dest)
    lines = (source / "transcript.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    text, bad = corruption(lines)
    (dest / "transcript.jsonl").write_text(text, encoding="utf-8")
    return bad


def _command(name: str, run_dir: Path, tmp_path: Path) -> list[str]:
    return {
        "check": ["replay", str(run_dir), "--check"],
        "resume": ["resume", str(run_dir), "--quiet"],
        "rerun": ["rerun", str(run_dir), "--out", str(tmp_path / "rerun"), "--quiet"],
        "report": ["report", str(run_dir), "-o", str(tmp_path / "report.html")],
    }[name]


def _assert_refused(res: Any, line: int, args: list[str]) -> None:
    assert res.returncode == 2, (args, res.stdout, res.stderr)
    assert f"transcript.jsonl:{line}: " in res.stderr, (args, line, res.stderr)
    assert res.stderr.count("error:") == 1 and "Traceback" not in res.stderr, res.stderr


def _contents(run_dir: Path) -> dict[str, bytes]:
    """The run folder's files, but the writer lock's record of its last holder (`core.lock`):
    a command that takes the lock to read safely, then refuses, has written nothing of the run."""
    return {p.name: p.read_bytes() for p in run_dir.iterdir() if p.name != ".lock"}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_every_command_refuses_a_damaged_transcript_naming_its_first_bad_line(
    finished: Path, tmp_path: Path, corruption: str
) -> None:
    run_dir = tmp_path / "run"
    bad = _damaged(finished, run_dir, CORRUPTIONS[corruption])
    before = _contents(run_dir)
    for name in COMMANDS:
        args = _command(name, run_dir, tmp_path)
        _assert_refused(run_cli(*args), bad, args)
    # Nothing was rewritten or added: not the summary, not the transcript, no dropped file.
    assert _contents(run_dir) == before
    assert not (tmp_path / "rerun").exists() and not (tmp_path / "report.html").exists()


def test_resume_refuses_a_damaged_unfinished_run_and_writes_nothing(finished: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    bad = _damaged(finished, run_dir, delete_a_line)
    (run_dir / "summary.json").unlink()
    lines = (run_dir / "transcript.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "transcript.jsonl").write_text("".join(lines[: _at(lines, "round_ended", 2) + 3]))  # killed
    before = (run_dir / "transcript.jsonl").read_bytes()
    args = _command("resume", run_dir, tmp_path)
    _assert_refused(run_cli(*args), bad, args)
    assert (run_dir / "transcript.jsonl").read_bytes() == before
    assert sorted(_contents(run_dir)) == ["transcript.jsonl"]


def test_replay_shows_a_damaged_transcript_flagged_but_will_not_rebuild_views(finished: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    bad = _damaged(finished, run_dir, edit_a_value)
    res = run_cli("replay", str(run_dir), "--no-page", env={"COLUMNS": "220"})
    assert res.returncode == 0, res.stderr
    assert f"DAMAGED transcript: damaged at line {bad}: the line was edited" in res.stdout
    assert "Frankly" in res.stdout  # shown as read
    res = run_cli("replay", str(run_dir), "--as", "member_1", "--no-page")
    _assert_refused(res, bad, ["replay", "--as"])


def test_an_intact_transcript_is_verified_and_a_resumed_one_too(finished: Path, tmp_path: Path) -> None:
    res = run_cli("replay", str(finished), "--check", env={"COLUMNS": "220"})
    assert res.returncode == 0, res.stderr
    assert "verified: all" in res.stdout and "hash chain intact" in res.stdout
    html = tmp_path / "report.html"
    assert run_cli("report", str(finished), "-o", str(html)).returncode == 0
    assert "verified: all" in html.read_text(encoding="utf-8")

    run_dir = tmp_path / "killed"
    run_dir.mkdir()
    lines = (finished / "transcript.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "transcript.jsonl").write_text("".join(lines[: _at(lines, "round_ended", 2) + 4]) + lines[-1][:30])
    res = run_cli("resume", str(run_dir), "--quiet")
    assert res.returncode == 0, res.stderr
    resumed = read_transcript(run_dir)
    assert resumed.integrity == "verified"
    numbers = [json.loads(line)["seq"] for line in (run_dir / "transcript.jsonl").read_text().splitlines()]
    assert numbers == list(range(1, len(resumed.events) + 1))
    assert len(numbers) == len(lines)  # sim members: the same run as the uninterrupted one
    assert run_cli("replay", str(run_dir), "--check").returncode == 0


# ----------------------------------------------------------------------------- schema 1: no chain


@pytest.fixture
def v1_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "v1"
    shutil.copytree(V1_RUN, run_dir)
    return run_dir


def test_a_schema_1_transcript_reads_flagged_as_unverified(v1_run: Path, tmp_path: Path) -> None:
    res = run_cli("replay", str(v1_run), "--check")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "unverified" in res.stderr
    res = run_cli("replay", str(v1_run), "--no-page", env={"COLUMNS": "220"})
    assert res.returncode == 0 and "unverified: written before transcripts carried a hash chain" in res.stdout
    html = tmp_path / "report.html"
    assert run_cli("report", str(v1_run), "-o", str(html)).returncode == 0
    assert "unverified: written before" in html.read_text(encoding="utf-8")
    # Rerun under this version: the scenario schema has grown since (a new run key), which
    # the rerun says rather than hides; the new run is written chained.
    res = run_cli("rerun", str(v1_run), "--out", str(tmp_path / "again"), "--quiet")
    assert "scenario schema changed since the run was recorded" in res.stdout + res.stderr, res.stdout + res.stderr
    assert read_transcript(tmp_path / "again").integrity == "verified"  # a new run is written chained


def test_resuming_a_schema_1_run_continues_it_in_its_own_form(v1_run: Path) -> None:
    """A schema 1 run resumes to the end in its own form: no line gains a chain, which
    would certify the unverified prefix, and its figures are the transcript's. (The
    rounds played after the cut follow the current sim model, so they need not equal
    the previous version's; the round count is fixed by the scenario.)"""
    published = json.loads((v1_run / "summary.json").read_text())
    (v1_run / "summary.json").unlink()
    lines = (v1_run / "transcript.jsonl").read_text().splitlines(keepends=True)
    (v1_run / "transcript.jsonl").write_text("".join(lines[: _at(lines, "round_ended", 1) + 5]))
    res = run_cli("resume", str(v1_run), "--quiet")
    assert res.returncode == 0, res.stderr
    resumed = json.loads((v1_run / "summary.json").read_text())
    assert resumed["rounds"] == published["rounds"] and resumed["status"] == "complete"
    assert run_cli("replay", str(v1_run), "--check").returncode == 0
    text = (v1_run / "transcript.jsonl").read_text()
    assert '"seq":' not in text and '"chain":' not in text and '"schema_version":1' in text
    assert read_transcript(v1_run).integrity == "unverified"
    assert run_cli("replay", str(v1_run), "--check").returncode == 0


@pytest.mark.parametrize(
    ("corruption", "problem"),
    [
        (swap_two_rounds, "round 3 starts after round 1"),
        (run_ended_in_the_middle, "run_ended in the middle of the transcript"),
        (two_writers_interleaved, "round 2 starts after round 2"),
        (truncate_mid_file, "summary.json records a finished run"),
        (append_a_torn_line, "text after the run's run_ended"),
    ],
)
def test_without_a_chain_the_shape_of_a_run_still_catches_damage(
    tmp_path: Path, corruption: Corruption, problem: str
) -> None:
    run_dir = tmp_path / "v1"
    bad = _damaged(V1_RUN, run_dir, corruption)
    summary = (run_dir / "summary.json").read_bytes()
    for name in ("check", "resume"):
        args = _command(name, run_dir, tmp_path)
        res = run_cli(*args)
        _assert_refused(res, bad, args)
        assert problem in res.stderr
    assert (run_dir / "summary.json").read_bytes() == summary


# ----------------------------------------------------------------------------- the chain itself

BODIES = st.dictionaries(
    st.text(min_size=1, max_size=5), st.text(max_size=20) | st.integers() | st.booleans(), max_size=4
).map(lambda d: json.dumps({"type": "turn", **d}, separators=(",", ":"), ensure_ascii=False))


@given(st.lists(BODIES, min_size=1, max_size=5))
def test_sealed_lines_unseal_to_their_bodies_and_verify_in_order(bodies: list[str]) -> None:
    link = START
    for body in bodies:
        line, after = seal(body, link)
        sealed = unseal(line)
        assert sealed is not None and sealed.body == body and sealed.link == after
        assert json.loads(line)["seq"] == after.seq == link.seq + 1
        assert sealed.problem_after(link) is None
        link = after


@given(BODIES, st.integers(min_value=0), st.characters(codec="utf-8"))
def test_changing_any_character_of_a_sealed_line_is_detected(body: str, at: int, char: str) -> None:
    before = Link(4, "ab" * 32)
    line, _ = seal(body, before)
    i = at % len(line)
    changed = line[:i] + char + line[i + 1 :]
    if changed == line:
        return
    sealed = unseal(changed)
    assert sealed is None or sealed.problem_after(before) is not None
