"""Every shipped scenario runs offline to an outcome, and the run folder is complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assembly import launch
from assembly.core.transcript import read_transcript
from tests.conftest import SCENARIOS, run_cli
from tests.helpers import run, scenario

ASSEMBLY_SCENARIOS = ["citizens_assembly", "hidden_profile", "split_51_49"]
PER_ROUND_KEYS = {
    "dispersion",
    "modal_share",
    "turn_timeouts",
    "malformed",
    "provider_errors",
    "abstentions",
    "quorum_met",
    "support",
}


def test_demo_command_as_a_user_runs_it(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    res = run_cli("run", str(SCENARIOS / "citizens_assembly.yaml"), "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "outcome" in res.stdout and "dispersion" in res.stdout
    first = json.loads((out / "transcript.jsonl").read_text().splitlines()[0])
    assert first["type"] == "run_started"
    assert first["seed"] == 7 and first["run_id"] == "demo"
    assert first["scenario"]["population"]["size"] == 24
    assert {"python", "assembly", "pydantic"} <= set(first["versions"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary == launch.summarize(read_transcript(out).events)


@pytest.mark.parametrize("name", ASSEMBLY_SCENARIOS)
def test_scenario_runs_to_an_outcome(tmp_path: Path, name: str) -> None:
    summary, _ = run(scenario(name), tmp_path / name)
    assert summary["status"] == "complete"
    assert summary["outcome"] in {"valid_decision", "invalid_decision", "no_decision"}
    assert (summary["cause"] is None) == (summary["outcome"] != "no_decision")
    assert summary["members"] == scenario(name).population.size
    assert summary["rounds"] == len(summary["per_round"]) >= 1
    for row in summary["per_round"]:
        assert set(row) >= PER_ROUND_KEYS


def test_demo_deliberation_is_sensible(tmp_path: Path) -> None:
    summary, _ = run(scenario("citizens_assembly"), tmp_path / "demo")
    rounds = summary["per_round"]
    assert rounds[-1]["dispersion"] < rounds[0]["dispersion"], "positions should move together"
    assert sum(r["disclosures"] for r in rounds) > 0, "private facts should get disclosed"
    assert any(r["voted"] for r in rounds), "votes should happen"


def test_hidden_profile_needs_time_to_pool(tmp_path: Path) -> None:
    """Validity means choosing A, which needs pooled unshared facts: voting early
    should mostly fail, deliberating longer before the first vote should mostly not."""

    def valid_rate(first_vote: int) -> tuple[float, float]:
        valid, pooled = 0, 0
        for seed in range(6):
            summary, _ = run(
                scenario("hidden_profile", seed=seed, **{"protocol.first_vote_round": first_vote}),
                tmp_path / f"hp{first_vote}-{seed}",
            )
            valid += summary["outcome"] == "valid_decision"
            pooled += summary["figures"]["unshared_facts_disclosed"]
        return valid / 6, pooled / 6

    early, late = valid_rate(3), valid_rate(8)
    assert early[0] <= 0.5 < late[0]
    assert late[1] > early[1]


def test_split_records_dissent(tmp_path: Path) -> None:
    summary, _ = run(scenario("split_51_49"), tmp_path / "split")
    assert summary["outcome"] == "valid_decision"
    assert 0.3 < summary["figures"]["dissent_share"] < 0.6


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_replay_check_certifies_every_figure_of_every_shipped_scenario(tmp_path: Path, path: Path) -> None:
    """`replay --check` recomputes summary.json, the welfare section included, from the transcript."""
    out = tmp_path / path.stem
    assert run_cli("run", str(path), "--out", str(out), "--quiet").returncode == 0
    res = run_cli("replay", str(out), "--check")
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads((out / "summary.json").read_text())
    if path.stem in ASSEMBLY_SCENARIOS:
        outcomes = summary["welfare"]["outcomes"]
        assert list(outcomes) == ["assembly", "utilitarian", "borda", "maximin", "plurality_round1"]
        assert outcomes["assembly"]["option"] == summary["decision"]
        assert all("fidelity" in r for r in summary["per_round"])
    else:  # the consensus game chooses a number, not an option: no welfare section
        assert "welfare" not in summary
