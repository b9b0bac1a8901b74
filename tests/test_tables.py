"""Analysis tables: runs and rounds carry path and sweep and follow the manifest;
per-turn, per-vote and per-member tables agree with the transcripts they come from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

import assembly
from assembly.core.transcript import TRANSCRIPT
from assembly.sweeps.executors import LocalExecutor
from assembly.sweeps.sweep import load_sweep, run_sweep
from tests.conftest import SCENARIOS, run_cli

SWEEP = """\
name: {name}
scenario: {scenario}
grid:
  members: {members}
set:
  rounds: 3
  members.sim.faults: {{timeout_rate: 0.1, malformed_rate: 0.1}}
seeds: 2
concurrency: 2
"""


def make_sweep(folder: Path, name: str, members: str = "[6, 8]", scenario: str = "hidden_profile") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(SWEEP.format(name=name, scenario=SCENARIOS / f"{scenario}.yaml", members=members))
    return path


def events_of(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (Path(run_dir) / TRANSCRIPT).read_text().splitlines()]


@pytest.fixture(scope="module")
def two_sweeps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding two sweeps of the same grid (same run folder names)."""
    root = tmp_path_factory.mktemp("tables")
    for name in ("first", "second"):
        sweep = load_sweep(make_sweep(root / "spec", name))
        run_sweep(sweep, root / "all" / name, LocalExecutor(2), draw=False)
    return root / "all"


def test_runs_of_two_sweeps_keep_their_path_and_sweep(two_sweeps: Path) -> None:
    runs = assembly.load_runs(two_sweeps)
    assert len(runs) == 8
    assert runs["path"].is_unique and runs["run"].duplicated().any()  # same names, told apart by path
    assert runs.groupby("sweep").size().to_dict() == {"first": 4, "second": 4}
    for _, row in runs.iterrows():
        assert Path(row["path"]).parent.parent.name == row["sweep"]  # <sweep folder>/runs/<run>
    rounds = assembly.load_rounds(two_sweeps)
    assert set(rounds["path"]) == set(runs["path"]) and set(rounds["sweep"]) == {"first", "second"}
    assert len(rounds) == int(runs["rounds"].sum())


def test_only_runs_the_manifest_lists_unless_all(tmp_path: Path) -> None:
    spec = make_sweep(tmp_path / "spec", "grid")
    out = tmp_path / "out"
    run_sweep(load_sweep(spec), out, LocalExecutor(2), draw=False)
    # The grid changes, and the sweep is resumed into the same folder: 6 and 8 are gone.
    spec.write_text(spec.read_text().replace("members: [6, 8]", "members: [10]"))
    run_sweep(load_sweep(spec), out, LocalExecutor(2), resume=True, draw=False)
    results = pd.read_csv(out / "results.csv")
    runs = assembly.load_runs(out)
    assert len(runs) == len(results) == 2 and runs["cell"].notna().all()
    assert sorted(runs["run"]) == sorted(results["run"])
    everything = assembly.load_runs(out, all=True)
    assert len(everything) == 6
    stale = everything[everything["cell"].isna()]
    assert len(stale) == 4 and set(stale["sweep"]) == {"grid"} and set(stale["members"]) == {6, 8}


def test_a_plain_folder_of_runs_is_read_whole(tmp_path: Path) -> None:
    for seed in (1, 2):
        done = run_cli(
            "run",
            str(SCENARIOS / "hidden_profile.yaml"),
            "--seed",
            str(seed),
            "--out",
            str(tmp_path / f"r{seed}"),
            "-q",
        )
        assert done.returncode == 0, done.stderr
    runs = assembly.load_runs(tmp_path)
    assert sorted(runs["run"]) == ["r1", "r2"] and runs["sweep"].isna().all()


def test_turns_table_is_one_row_per_turn_event(two_sweeps: Path) -> None:
    turns = assembly.load_turns(two_sweeps / "first")
    runs = assembly.load_runs(two_sweeps / "first")
    expected = []
    for path in runs["path"]:
        for e in events_of(path):
            if e["type"] == "turn":
                expected.append((path, e["round"], e["phase"], e["member"], e["status"], len(e.get("attempts", []))))
    got = list(turns[["path", "round", "phase", "member", "status", "attempts"]].itertuples(index=False, name=None))
    assert sorted(got) == sorted(expected)
    # Liveness counts per run agree with the summaries.
    by_run = turns.groupby("path")["status"].value_counts().unstack(fill_value=0)
    for _, run in runs.iterrows():
        assert by_run.loc[run["path"]].get("timeout", 0) == run["turn_timeouts"]
        assert by_run.loc[run["path"]].get("malformed", 0) == run["malformed"]
    speak = turns[(turns["phase"] == "speak") & (turns["status"] == "ok")]
    assert speak["action_position"].notna().all() and {"members", "cell", "role"} <= set(turns.columns)


def test_votes_table_agrees_with_every_tally(two_sweeps: Path) -> None:
    votes = assembly.load_votes(two_sweeps / "first")
    assert len(votes)
    for path, group in votes.groupby("path"):
        tallies = {e["round"]: e for e in events_of(Path(path)) if e["type"] == "tally"}
        assert set(group["round"]) == set(tallies)
        for r, ballots in group.groupby("round"):
            tally = tallies[r]
            assert (~ballots["abstained"]).sum() == tally["counted"]  # ballots the rule counted
            assert len(ballots) == tally["seated"]  # every seated member was asked
            assert set(ballots["phase"]) == {"vote"}


def test_members_table_is_the_seating(tmp_path: Path) -> None:
    done = run_cli(
        "run", str(SCENARIOS / "consensus_game.yaml"), "--members", "12", "--set", "protocol.byzantine=4",
        "--rounds", "4", "--out", str(tmp_path / "cg"), "-q",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    members = assembly.load_members(tmp_path / "cg")
    seated = next(e for e in events_of(tmp_path / "cg") if e["type"] == "seated")
    assert list(members["member"]) == [m["id"] for m in seated["members"]]
    assert members["private_byzantine"].sum() == 4
    assert members.loc[~members["private_byzantine"], "private_initial"].notna().all()
    turns = assembly.load_turns(tmp_path / "cg")
    assert members.set_index("member")["turns"].to_dict() == turns.groupby("member").size().to_dict()


def test_members_table_has_values_and_facts(tmp_path: Path) -> None:
    shutil.rmtree(tmp_path / "hp", ignore_errors=True)
    assert run_cli("run", str(SCENARIOS / "hidden_profile.yaml"), "--out", str(tmp_path / "hp"), "-q").returncode == 0
    members = assembly.load_members(tmp_path / "hp")
    seated = next(e for e in events_of(tmp_path / "hp") if e["type"] == "seated")
    row = members.set_index("member").loc[seated["members"][0]["id"]]
    for dim, weight in seated["members"][0]["values"].items():
        assert row[f"value_{dim}"] == pytest.approx(weight)
    assert row["facts"] == len(seated["members"][0]["facts"])
    disclosed = {}
    for e in events_of(tmp_path / "hp"):
        if e["type"] == "disclosure":
            disclosed.setdefault(e["member"], set()).add(e["fact"])
    assert members.set_index("member")["facts_disclosed"].to_dict() == {
        m: len(disclosed.get(m, ())) for m in members["member"]
    }
