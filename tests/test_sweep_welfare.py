"""Welfare in sweeps: flat columns per run, cell means, seed-clustered paired gaps, the frontier.

Oracles: scipy's paired t interval (`ttest_rel`) for one run per seed, and a t interval
over seed means worked out here for several runs per seed (statsmodels is not
installed, so its cluster-robust variant is not used as an oracle).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats as sps

from assembly.sweeps import stats
from assembly.sweeps.executors import LocalExecutor
from assembly.sweeps.sweep import load_sweep, run_sweep
from assembly.sweeps.tables import welfare_columns
from tests.conftest import ROOT, run_cli

SHIPPED = ROOT / "configs" / "sweeps"


def test_paired_gap_with_one_run_per_seed_is_scipys_paired_t_interval() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.uniform(0, 1, 9), rng.uniform(0, 1, 9)
    runs = pd.DataFrame({"seed": range(9), "welfare_assembly_x": a, "welfare_borda_x": b})
    got = stats.paired_difference(runs, "welfare_assembly_x", "welfare_borda_x")
    ci = sps.ttest_rel(a, b).confidence_interval(0.95)
    assert got.value == pytest.approx(float(np.mean(a - b)))
    assert (got.low, got.high) == pytest.approx((ci.low, ci.high))


def test_paired_gap_clusters_runs_of_one_seed_and_skips_undecided_runs() -> None:
    # Seeds 0..3, two runs each (two cells sharing the populations); one run decided nothing.
    diffs = {0: [0.2, 0.4], 1: [0.1, 0.1], 2: [0.5, 0.3], 3: [0.0, None]}
    rows = [
        {"seed": s, "welfare_assembly_x": (None if d is None else 0.5 + d), "welfare_borda_x": 0.5}
        for s, ds in diffs.items()
        for d in ds
    ]
    got = stats.paired_difference(pd.DataFrame(rows), "welfare_assembly_x", "welfare_borda_x")
    seed_means = np.array([0.3, 0.1, 0.4, 0.0])  # the undecided run leaves seed 3 with one difference
    half = sps.t.ppf(0.975, df=3) * seed_means.std(ddof=1) / math.sqrt(4)
    assert got.value == pytest.approx(seed_means.mean())
    assert (got.low, got.high) == pytest.approx((seed_means.mean() - half, seed_means.mean() + half))


SUMMARY = {
    "per_round": [{"round": 1, "fidelity": 0.5}, {"round": 2, "fidelity": None}, {"round": 3, "fidelity": 1.0}],
    "welfare": {
        "outcomes": {
            "assembly": {"option": None, **dict.fromkeys(["utilitarian", "nash", "egalitarian", "worst_role"])},
            "borda": {
                "option": "B",
                "utilitarian": 0.9,
                "nash": 0.8,
                "egalitarian": 0.7,
                "worst_role": 0.75,
                "condorcet_winner": True,
                "in_veto_core": False,
            },
        }
    },
}


def test_welfare_columns_flatten_a_summary() -> None:
    cols = welfare_columns(SUMMARY)
    assert cols["welfare_assembly_option"] is None and cols["welfare_assembly_worst_role"] is None
    assert cols["welfare_assembly_in_veto_core"] is None
    assert (cols["welfare_borda_option"], cols["welfare_borda_worst_role"]) == ("B", 0.75)
    assert (cols["welfare_borda_condorcet_winner"], cols["welfare_borda_in_veto_core"]) == (1.0, 0.0)
    assert cols["welfare_fidelity"] == 0.75  # mean of the rounds that have one
    assert welfare_columns({"per_round": []}) == {}  # a protocol without welfare


def test_cell_means_are_over_deciding_runs() -> None:
    runs = pd.DataFrame(
        {
            "status": ["complete"] * 3,
            "outcome": ["valid_decision", "no_decision", "valid_decision"],
            "seed": [0, 1, 2],
            "rounds": [2, 6, 3],
            "welfare_assembly_worst_role": [0.4, None, 0.6],
            "welfare_assembly_in_veto_core": [1.0, None, 0.0],
            "welfare_borda_worst_role": [0.0, 0.0, 0.0],
        }
    )
    row = stats.cell_row(runs)
    assert (row["decided_k"], row["decided_rate"]) == (2, pytest.approx(2 / 3))
    assert row["welfare_assembly_worst_role_mean"] == pytest.approx(0.5)
    assert row["welfare_borda_worst_role_mean"] == 0.0
    assert (row["welfare_assembly_in_veto_core_k"], row["welfare_assembly_in_veto_core_rate"]) == (1, 0.5)
    assert row["welfare_gap_borda_worst_role_mean"] == pytest.approx(0.5)


def _study(tmp_path: Path, name: str, members: list[int], seeds: int, rules: list[str] | None = None) -> Path:
    """A shipped study, cut down (fewer sizes and seeds), as its own file."""
    spec = yaml.safe_load((SHIPPED / name).read_text())
    spec["scenario"] = str((SHIPPED / spec["scenario"]).resolve())
    spec["grid"]["members"] = members
    if rules:
        spec["grid"]["protocol.decision_rule.kind"] = rules
    spec["seeds"], spec["out"] = seeds, None
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    return path


def test_shipped_studies_plan_every_rule_and_size() -> None:
    for name, runs in (("rules_vs_welfare.yaml", 160), ("rules_vs_welfare_hidden_profile.yaml", 120)):
        sweep = load_sweep(SHIPPED / name)
        assert len(sweep.runs) == runs
        rules = {r.scenario.protocol.decision_rule.kind for r in sweep.runs}
        assert rules == {"majority", "schulze", "borda", "veto_by_consumption", "maximin_score"}


def test_split_study_separates_the_rules_that_protect_the_minority(tmp_path: Path) -> None:
    path = _study(tmp_path, "rules_vs_welfare.yaml", [10], 3, ["majority", "veto_by_consumption"])
    report = run_sweep(load_sweep(path), tmp_path / "out", LocalExecutor(2))
    cells = report.cells.set_index("protocol.decision_rule.kind")
    # Majority leaves the park camp at 0, as the Borda baseline does; veto by consumption
    # picks the compromise, in the veto core every time, and raises the worst role's utility.
    assert cells.loc["majority", "welfare_assembly_worst_role_mean"] == 0.0
    assert cells.loc["majority", "welfare_gap_borda_worst_role_mean"] == 0.0
    assert cells.loc["veto_by_consumption", "welfare_assembly_in_veto_core_rate"] == 1.0
    assert cells.loc["veto_by_consumption", "welfare_gap_borda_worst_role_mean_lo"] > 0.4
    assert {"liveness_fairness.png", "liveness_fairness.svg"} <= {p.name for p in report.figures}
    assert (tmp_path / "out" / "figures" / "liveness_fairness.png").stat().st_size > 20_000


def test_hidden_profile_study_runs_offline_from_the_command_line(tmp_path: Path) -> None:
    path = _study(tmp_path, "rules_vs_welfare_hidden_profile.yaml", [6], 1)
    done = run_cli("sweep", str(path), "--out", str(tmp_path / "out"), "-q")
    assert done.returncode == 0, done.stderr
    cells = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert len(cells) == 5 and cells["n"].tolist() == [1] * 5
    # The full-information choice (A) never comes from a round-1 plurality here.
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert set(results["welfare_utilitarian_option"]) == {"A"}
    assert "A" not in set(results["welfare_plurality_round1_option"])
