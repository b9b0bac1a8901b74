"""One glossary defines every reported figure; docs, terminal and report use it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from assembly import glossary
from assembly.sweeps.executors import LocalExecutor
from assembly.sweeps.sweep import load_sweep, run_sweep
from tests.conftest import ROOT, SCENARIOS, run_cli

SWEEP = """\
name: glossary
scenario: {scenario}
grid:
  members: [12, 16]
set:
  rounds: 3
seeds: 3
concurrency: 2
"""


@pytest.fixture(scope="module")
def summaries(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    root = tmp_path_factory.mktemp("glossary")
    out = []
    for name, args in (
        ("citizens", ["scenarios/citizens_assembly.yaml"]),
        ("consensus", ["scenarios/consensus_game.yaml", "--members", "9", "--set", "protocol.byzantine=2"]),
    ):
        done = run_cli("run", *args, "--out", str(root / name), "-q")
        assert done.returncode == 0, done.stderr
        out.append(json.loads((root / name / "summary.json").read_text()))
    return out


def test_docs_figures_md_is_the_glossary() -> None:
    assert (ROOT / glossary.DOC).read_text(encoding="utf-8") == glossary.render(), (
        "docs/figures.md is stale: python -m assembly.glossary > docs/figures.md"
    )


def test_every_figure_of_a_run_is_defined(summaries: list[dict]) -> None:
    for summary in summaries:
        names = {*summary["per_round"][0], *summary["totals"], *summary["figures"]}
        names |= {"outcome", "cause", "decision", "reason", "status", "rounds", "members", "seed"}
        undefined = sorted(n for n in names if glossary.entry(n) is None)
        assert undefined == [], f"{summary['protocol']}: define these in assembly/glossary.py: {undefined}"


def test_every_sweep_column_and_figure_is_defined(tmp_path: Path) -> None:
    spec = tmp_path / "sweep.yaml"
    spec.write_text(SWEEP.format(scenario=SCENARIOS / "citizens_assembly.yaml"))
    report = run_sweep(load_sweep(spec), tmp_path / "out", LocalExecutor(2))
    grid = {"members"}
    for table in ("results.csv", "summary.csv"):
        columns = set(pd.read_csv(tmp_path / "out" / table).columns) - grid
        undefined = sorted(c for c in columns if glossary.entry(c) is None)
        assert undefined == [], f"{table}: define these in assembly/glossary.py: {undefined}"
    stems = {p.stem for p in report.figures}
    assert stems and all(glossary.entry(s) is not None for s in stems)


def test_the_words_agree_where_figures_are_shown(tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = run_cli("run", str(SCENARIOS / "citizens_assembly.yaml"), "--out", str(out), "--rounds", "3")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    # Per-round disclosures are events; the run's facts_disclosed counts distinct facts.
    assert f"{glossary.short('disclosures')} disclosure events" in text and glossary.DOC in text
    assert "facts disclosed" in text and "facts dealt" in text
    assert run_cli("report", str(out)).returncode == 0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'title="Disclosure events this round' in html  # the column's tooltip is the glossary's
    assert glossary.DOC in (ROOT / "docs" / "sweeps.md").read_text(encoding="utf-8")


def test_retries_of_sim_runs_are_explained(summaries: list[dict]) -> None:
    from assembly.inspection.console import liveness_line

    sim = next(s for s in summaries if s["totals"]["retries"] > 0 and s["totals"]["calls"] == 0)
    line = liveness_line(sim["totals"])
    assert f"{sim['totals']['retries']} retries (seeded simulated faults of members.sim.faults)" in line
    assert "retries" not in liveness_line({**sim["totals"], "retries": 0})
