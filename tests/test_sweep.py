"""Sweeps: grid expansion, run keys, interval statistics, resume, failures, CLI."""

from __future__ import annotations

import itertools
import math
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import assembly
import assembly.launch
from assembly.core.errors import ScenarioError, UserError
from assembly.core.spec import run_key
from assembly.core.transcript import SUMMARY, TRANSCRIPT
from assembly.scenario.loading import load_scenario
from assembly.scenario.model import Scenario
from assembly.sweeps import stats
from assembly.sweeps.executors import Executor, Job, JobResult, LocalExecutor, RayExecutor, run_job
from assembly.sweeps.sweep import load_sweep, run_sweep
from tests.conftest import run_cli

SCENARIO = """\
name: tiny
question: A or B?
options:
  - {id: A, text: a, attributes: {x: 1.0}}
  - {id: B, text: b, attributes: {x: -1.0}}
population:
  size: 4
  roles:
    - {name: r, share: 1.0, values: {x: 0.5}, quota: {min: 3}}
protocol: {kind: assembly, max_rounds: 3, turn_timeout_s: 5, first_vote_round: 1}
members:
  sim:
    latency: {median_s: 0.5}
    faults: {timeout_rate: 0.1}
"""

SWEEP = """\
name: tiny_sweep
scenario: scenario.yaml
grid:
  members: [4, 6]
  protocol.quorum: [0.5, 0.9]
set:
  rounds: 2
seeds: 3
concurrency: 2
"""

# Values that differ between two executions of the same run (clock time only).
CLOCK_COLUMNS = ["wall_s"]


def write_sweep(folder: Path, sweep: str = SWEEP, scenario: str = SCENARIO) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenario.yaml").write_text(scenario)
    path = folder / "sweep.yaml"
    path.write_text(sweep)
    return path


def quorum(scenario: Scenario) -> float:
    return float(scenario.model_dump()["protocol"]["quorum"])


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in frame.columns if c in CLOCK_COLUMNS or c.startswith("wall_s")])


class Recording(Executor):
    """Runs jobs one by one in this process, remembering which ran; can stop after k."""

    name = "recording"

    def __init__(self, interrupt_after: int | None = None) -> None:
        super().__init__(1)
        self.ran: list[str] = []
        self.interrupt_after = interrupt_after

    def run(self, jobs: Iterable[Job], on_done: Callable[[JobResult], None], should_stop: Callable[[], bool]) -> None:
        for job in jobs:
            if should_stop():
                return
            if self.interrupt_after is not None and len(self.ran) == self.interrupt_after:
                raise KeyboardInterrupt
            self.ran.append(job.key)
            on_done(run_job(job))


# ----------------------------------------------------------------------------- grid and keys


def test_grid_is_the_cartesian_product_with_fixed_overrides_and_seeds(tmp_path: Path) -> None:
    sweep = load_sweep(write_sweep(tmp_path))
    assert len(sweep.runs) == 2 * 2 * 3
    seen = {(r.scenario.population.size, quorum(r.scenario), r.seed) for r in sweep.runs}
    assert seen == set(itertools.product([4, 6], [0.5, 0.9], [0, 1, 2]))
    assert all(r.scenario.protocol.max_rounds == 2 for r in sweep.runs)  # `set:` reaches every cell
    assert {r.cell for r in sweep.runs} == {
        "members=4,protocol.quorum=0.5",
        "members=4,protocol.quorum=0.9",
        "members=6,protocol.quorum=0.5",
        "members=6,protocol.quorum=0.9",
    }


def test_run_keys_are_the_scenario_keys_stable_and_distinct(tmp_path: Path) -> None:
    path = write_sweep(tmp_path)
    first, again = load_sweep(path), load_sweep(path)
    keys = [r.key for r in first.runs]
    assert len(set(keys)) == len(keys)
    assert keys == [r.key for r in again.runs]
    for r in first.runs:
        # The same run spelled as a plain scenario with --set overrides has the same key.
        direct = load_scenario(
            tmp_path / "scenario.yaml",
            {"members": r.scenario.population.size, "protocol.quorum": quorum(r.scenario), "rounds": 2, "seed": r.seed},
        )
        assert run_key(direct) == r.key
        assert r.key in r.dir and f"-s{r.seed}-" in r.dir


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(3, 40), min_size=1, max_size=4, unique=True),
    rounds=st.lists(st.integers(1, 6), min_size=1, max_size=3, unique=True),
    seeds=st.lists(st.integers(0, 10**6), min_size=1, max_size=3, unique=True),
)
def test_every_combination_is_planned_exactly_once(
    tmp_path: Path, sizes: list[int], rounds: list[int], seeds: list[int]
) -> None:
    text = f"name: prop\nscenario: scenario.yaml\ngrid:\n  members: {sizes}\n  rounds: {rounds}\nseeds: {seeds}\n"
    sweep = load_sweep(write_sweep(tmp_path, text))
    planned = [(r.scenario.population.size, r.scenario.protocol.max_rounds, r.seed) for r in sweep.runs]
    assert sorted(planned) == sorted(itertools.product(sizes, rounds, seeds))
    assert len({r.key for r in sweep.runs}) == len(planned)


# ----------------------------------------------------------------------------- validation


def test_bad_grid_value_points_at_its_line_in_the_sweep_file(tmp_path: Path) -> None:
    text = SWEEP.replace("members: [4, 6]", "members:\n    - 4\n    - many")
    path = write_sweep(tmp_path, text)
    with pytest.raises(ScenarioError) as err:
        load_sweep(path)
    assert err.value.file == str(path)
    assert err.value.path == "grid.members.1"
    assert err.value.line == line_of(text, "- many")
    assert "integer" in err.value.reason


def test_cross_field_error_is_blamed_on_the_grid_value_that_causes_it(tmp_path: Path) -> None:
    # quota min 3 cannot seat 2 members; the scenario itself (4 members) is fine.
    text = SWEEP.replace("members: [4, 6]", "members: [4, 2]")
    path = write_sweep(tmp_path, text)
    with pytest.raises(ScenarioError) as err:
        load_sweep(path)
    assert err.value.path == "grid.members.1"
    assert err.value.line == line_of(text, "members: [4, 2]")
    assert "members=2" in err.value.reason and "quota" in err.value.reason


@pytest.mark.parametrize(
    ("edit", "path", "message"),
    [
        (("seeds: 3", "seed: 3"), "seed", "did you mean 'seeds'"),
        (("seeds: 3", "seeds: 0"), "seeds", "greater than or equal to 1"),
        (("  rounds: 2", "  seed: 2"), "set.seed", "seeds:"),
        (("  rounds: 2", "  population.size: 5"), "set.population.size", "also a grid factor ('members')"),
        (("members: [4, 6]", "members: [4, 4]"), "grid.members.1", "duplicate"),
        (("  rounds: 2", "  protocol.quorom: 0.5"), "set.protocol.quorom", "unknown key 'quorom'"),
        (("concurrency: 2", "reference: arxiv_2603_01213/fig9"), "reference", "no figure 'fig9'"),
    ],
)
def test_sweep_file_errors_name_file_field_and_line(
    tmp_path: Path, edit: tuple[str, str], path: str, message: str
) -> None:
    text = SWEEP.replace(*edit)
    assert text != SWEEP
    sweep_file = write_sweep(tmp_path, text)
    with pytest.raises(ScenarioError) as err:
        load_sweep(sweep_file)
    assert err.value.file == str(sweep_file)
    assert err.value.path == path
    assert err.value.line == line_of(text, edit[1].strip())
    assert message in err.value.reason


# ----------------------------------------------------------------------------- statistics

Z95 = 1.959963984540054


def textbook_wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson (1927) score interval, as printed in Newcombe (1998), eq. for method 3."""
    p = k / n
    centre = p + Z95**2 / (2 * n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n))
    return (centre - half) / (1 + Z95**2 / n), (centre + half) / (1 + Z95**2 / n)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (5, 10), (10, 10), (81, 263), (1, 29), (3, 7)])
def test_wilson_matches_the_textbook_formula(k: int, n: int) -> None:
    est = stats.wilson(k, n)
    lo, hi = textbook_wilson(k, n)
    assert est.value == pytest.approx(k / n)
    assert est.low == pytest.approx(lo, abs=1e-9)
    assert est.high == pytest.approx(hi, abs=1e-9)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # Newcombe, R. G. (1998), Statistics in Medicine 17:857-872, Table I, method 3 (Wilson score).
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_matches_newcombe_1998_table(k: int, n: int, low: float, high: float) -> None:
    est = stats.wilson(k, n)
    assert (round(est.low, 4), round(est.high, 4)) == (low, high)


def test_wilson_of_no_runs_is_undefined() -> None:
    assert all(math.isnan(v) for v in (stats.wilson(0, 0).value, stats.wilson(0, 0).low))


def test_mean_interval_is_student_t() -> None:
    # 1..5: mean 3, s = sqrt(2.5), t(0.975, 4) = 2.776445 (printed t tables).
    est = stats.mean_ci([1, 2, 3, 4, 5])
    half = 2.776445 * math.sqrt(2.5) / math.sqrt(5)
    assert (est.value, est.low, est.high) == pytest.approx((3.0, 3 - half, 3 + half), abs=1e-5)
    constant = stats.mean_ci([4, 4, 4])
    assert (constant.low, constant.high) == (4.0, 4.0)


def test_median_interval_uses_order_statistics() -> None:
    # For n = 20 the distribution-free 95% interval for the median is [x(6), x(15)]
    # (binomial tables; coverage 95.9%), whatever the values are.
    values = np.array([1, 4, 9, 16, 25, 36, 49, 64, 81, 100, 121, 144, 169, 196, 225, 256, 289, 324, 361, 400])
    est = stats.median_ci(np.random.default_rng(3).permutation(values))
    assert (est.value, est.low, est.high) == (110.5, 36.0, 225.0)
    small = stats.median_ci([1, 2, 3, 4, 5])  # no 95% order-statistic interval exists for n = 5
    assert small.value == 3 and math.isnan(small.low) and math.isnan(small.high)


def test_cell_rates_count_causes_and_exclude_failed_runs() -> None:
    results = pd.DataFrame(
        {
            "cell": ["a"] * 6,
            "status": ["complete"] * 5 + ["failed"],
            "outcome": ["valid_decision", "valid_decision", "no_decision", "no_decision", "invalid_decision", None],
            "cause": [None, None, "round_limit", "quorum_not_met", None, None],
            "rounds": [2, 4, 8, 8, 3, None],
        }
    )
    row = stats.cell_table(results, ["cell"]).iloc[0]
    assert (row["n"], row["failed"], row["decided"]) == (5, 1, 3)
    assert row["valid_decision_k"] == 2 and row["valid_decision_rate"] == pytest.approx(0.4)
    assert row["valid_decision_lo"] == pytest.approx(textbook_wilson(2, 5)[0])
    assert row["cause_round_limit_k"] == 1 and row["cause_quorum_not_met_k"] == 1
    assert row["rounds_mean"] == pytest.approx(3.0)  # decided runs only: 2, 4, 3
    assert row["rounds_median"] == 3


# ----------------------------------------------------------------------------- running and resuming


@pytest.fixture(scope="module")
def reference_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """One uninterrupted sweep, the baseline the other runs are compared with."""
    root = tmp_path_factory.mktemp("baseline")
    sweep = load_sweep(write_sweep(root / "spec"))
    report = run_sweep(sweep, root / "out", LocalExecutor(2), draw=False)
    return root / "out", report.results


def test_sweep_writes_one_run_folder_and_row_per_run(reference_sweep: tuple[Path, pd.DataFrame]) -> None:
    out, results = reference_sweep
    assert len(results) == 12 and set(results["status"]) == {"complete"}
    for run in results["run"]:
        assert (out / "runs" / run / TRANSCRIPT).exists() and (out / "runs" / run / SUMMARY).exists()
    assert pd.read_csv(out / "results.csv")["run"].tolist() == results["run"].tolist()
    assert len(pd.read_parquet(out / "results.parquet")) == 12
    cells = pd.read_csv(out / "summary.csv")
    assert len(cells) == 4 and cells["n"].tolist() == [3, 3, 3, 3]
    for outcome in stats.OUTCOMES:  # rates of the outcomes add up to one per cell
        assert cells[f"{outcome}_k"].sum() == (results["outcome"] == outcome).sum()
    assert cells[[f"{o}_rate" for o in stats.OUTCOMES]].sum(axis=1).tolist() == pytest.approx([1.0] * 4)


def test_resume_after_a_crash_reruns_only_damaged_runs(
    tmp_path: Path, reference_sweep: tuple[Path, pd.DataFrame]
) -> None:
    baseline, _ = reference_sweep
    out = tmp_path / "out"
    shutil.copytree(baseline, out)
    for name in ("results.csv", "results.parquet", "summary.csv"):
        (out / name).unlink()
    runs = sorted((out / "runs").iterdir())
    shutil.rmtree(runs[0])  # never started
    (runs[1] / SUMMARY).unlink()  # killed mid-run: a transcript prefix and no summary
    text = (runs[1] / TRANSCRIPT).read_text()
    (runs[1] / TRANSCRIPT).write_text(text[: len(text) // 2])
    summary = (runs[2] / SUMMARY).read_text()  # killed after writing an interrupted summary
    (runs[2] / SUMMARY).write_text(summary.replace('"status": "complete"', '"status": "interrupted"'))
    untouched = {p.name: (p / TRANSCRIPT).read_bytes() for p in runs[3:]}

    sweep = load_sweep(write_sweep(tmp_path / "spec"))
    executor = Recording()
    report = run_sweep(sweep, out, executor, resume=True, draw=False)

    assert sorted(executor.ran) == sorted(p.name.rsplit("-", 1)[1] for p in runs[:3])
    assert report.tally.skipped == 9
    assert {p.name: (p / TRANSCRIPT).read_bytes() for p in runs[3:]} == untouched
    pd.testing.assert_frame_equal(
        comparable(pd.read_csv(out / "results.csv")), comparable(pd.read_csv(baseline / "results.csv"))
    )


def test_interrupted_sweep_keeps_finished_runs_and_resumes_to_the_same_result(
    tmp_path: Path, reference_sweep: tuple[Path, pd.DataFrame]
) -> None:
    baseline, _ = reference_sweep
    sweep = load_sweep(write_sweep(tmp_path / "spec"))
    with pytest.raises(KeyboardInterrupt) as info:
        run_sweep(sweep, tmp_path / "out", Recording(interrupt_after=5), draw=False)
    assert len(pd.read_csv(tmp_path / "out" / "results.csv")) == 5  # tables cover what finished
    assert info.value.report.tally.done == 5  # type: ignore[attr-defined]

    with pytest.raises(UserError, match="--resume"):  # a second start must not clobber it
        run_sweep(sweep, tmp_path / "out", Recording(), draw=False)
    executor = Recording()
    run_sweep(sweep, tmp_path / "out", executor, resume=True, draw=False)
    assert len(executor.ran) == 12 - 5
    pd.testing.assert_frame_equal(
        comparable(pd.read_csv(tmp_path / "out" / "results.csv")), comparable(pd.read_csv(baseline / "results.csv"))
    )


def test_a_run_that_raises_is_recorded_as_failed_and_the_sweep_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = assembly.launch.execute

    async def flaky(scenario: Any, run_dir: Path, **kw: Any) -> dict[str, Any]:
        if scenario.seed == 1:
            raise RuntimeError("model server on fire")
        return await real(scenario, run_dir, **kw)

    monkeypatch.setattr(assembly.launch, "execute", flaky)
    sweep = load_sweep(write_sweep(tmp_path / "spec"))
    report = run_sweep(sweep, tmp_path / "out", LocalExecutor(2), draw=False)
    failed = report.results[report.results["status"] == "failed"]
    assert len(failed) == 4 and set(failed["seed"]) == {1}
    assert failed["error"].str.contains("model server on fire").all()
    assert (report.results["status"] == "complete").sum() == 8
    assert all(
        "model server on fire" in (tmp_path / "out" / "runs" / r / "error.txt").read_text() for r in failed["run"]
    )
    assert report.cells["failed"].tolist() == [1, 1, 1, 1] and report.cells["n"].tolist() == [2, 2, 2, 2]

    monkeypatch.setattr(assembly.launch, "execute", real)  # fixed: resume retries exactly the failures
    executor = Recording()
    again = run_sweep(sweep, tmp_path / "out", executor, resume=True, draw=False)
    assert sorted(executor.ran) == sorted(failed["run_key"])
    assert set(again.results["status"]) == {"complete"}
    assert not list((tmp_path / "out" / "runs").glob("*/error.txt"))


def test_max_cost_stops_starting_runs_for_the_whole_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = assembly.launch.execute

    async def priced(scenario: Any, run_dir: Path, **kw: Any) -> dict[str, Any]:
        summary = await real(scenario, run_dir, **kw)
        summary["totals"]["cost_usd"] = 1.0  # as if every run spent a dollar
        return summary

    monkeypatch.setattr(assembly.launch, "execute", priced)
    sweep = load_sweep(write_sweep(tmp_path / "spec"))
    report = run_sweep(sweep, tmp_path / "out", LocalExecutor(1), max_cost=2.5, draw=False)
    assert report.tally.done == 3 and report.not_started == 9 and report.stopped_for_cost
    assert report.tally.cost_usd == pytest.approx(3.0)


def test_llm_sweep_on_a_model_server_and_resume_replays_the_cache(tmp_path: Path) -> None:
    from assembly.sweeps.sweep import load_with_models
    from tests.fake_openai import FakeOpenAIServer

    text = SWEEP.replace("members: [4, 6]", "members: [4]").replace(
        "protocol.quorum: [0.5, 0.9]", "protocol.quorum: [0.5]"
    )
    path = write_sweep(tmp_path / "spec", text.replace("seeds: 3", "seeds: 2"))
    with FakeOpenAIServer(seed=1) as server:
        sweep, llm = load_with_models(path, model="openai/fake-model", api_base=server.base_url)
        assert llm is not None and not sweep.sim_only
        assert all(r.scenario.members.policy == "llm" for r in sweep.runs)  # --model reached every run
        report = run_sweep(sweep, tmp_path / "out", LocalExecutor(2), llm=llm, draw=False)
        assert set(report.results["status"]) == {"complete"}, report.results.get("error")
        assert (report.results["calls"] > 0).all() and (report.results["tokens"] > 0).all()

        victim = tmp_path / "out" / sweep.runs[0].dir
        (victim / SUMMARY).unlink()  # as if killed before the end: re-run, keeping its response cache
        again = run_sweep(sweep, tmp_path / "out", LocalExecutor(2), llm=llm, resume=True, draw=False)
    row = again.results.set_index("run_key").loc[sweep.runs[0].key]
    assert row["calls"] > 0 and row["cache_hits"] == row["calls"]
    assert (
        comparable(again.results)
        .drop(columns=["clock_s", "cache_hits"])
        .equals(comparable(report.results).drop(columns=["clock_s", "cache_hits"]))
    )


def test_ray_missing_gives_install_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(UserError, match=r"pip install -e '\.\[ray\]'"):
        RayExecutor(2).run([], lambda r: None, lambda: False)


# ----------------------------------------------------------------------------- analysis and figures


def test_load_runs_and_rounds_read_a_sweep_folder(reference_sweep: tuple[Path, pd.DataFrame]) -> None:
    out, results = reference_sweep
    runs = assembly.load_runs(str(out))
    assert len(runs) == 12
    assert set(runs["members"]) == {4, 6} and set(runs["protocol.quorum"]) == {0.5, 0.9}
    assert set(runs["cell"]) == set(results["cell"])
    rounds = assembly.load_rounds(str(out))
    assert len(rounds) == int(runs["rounds"].sum())
    assert set(rounds["run"]) == set(runs["run"])
    one = assembly.load_runs(str(out / "runs" / runs["run"].iloc[0]))
    assert len(one) == 1 and one["cell"].iloc[0] == runs["cell"].iloc[0]


def test_load_runs_summarizes_an_unfinished_run_from_its_transcript(
    tmp_path: Path, reference_sweep: tuple[Path, pd.DataFrame]
) -> None:
    out, results = reference_sweep
    run = tmp_path / "run"
    shutil.copytree(out / "runs" / results["run"].iloc[0], run)
    (run / SUMMARY).unlink()
    lines = (run / TRANSCRIPT).read_text().splitlines(keepends=True)
    (run / TRANSCRIPT).write_text("".join(lines[:-1]))  # the run_ended event never made it
    row = assembly.load_runs(str(run)).iloc[0]
    assert row["status"] == "incomplete" and pd.isna(row["outcome"])


def test_figures_are_written_as_png_and_svg(tmp_path: Path, reference_sweep: tuple[Path, pd.DataFrame]) -> None:
    from assembly.sweeps.plots import draw_sweep

    out, results = reference_sweep
    cells = pd.read_csv(out / "summary.csv")
    drawn = draw_sweep(
        results,
        cells,
        tmp_path / "figures",
        grid_keys=["members", "protocol.quorum"],
        reference="no_such_paper/fig1",
        title="tiny",
    )
    names = {p.name for p in drawn.paths}
    for stem in ("outcome_rates", "liveness", "rounds_to_decision"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
        assert (tmp_path / "figures" / f"{stem}.png").stat().st_size > 10_000
    assert not any(n.startswith("tokens_cost") for n in names)  # sim members: no model calls, no cost figure
    assert any("no_such_paper" in n for n in drawn.notes)  # a bad reference is a note, not a crash


def test_reference_points_are_drawn_beside_ours(tmp_path: Path) -> None:
    from assembly.sweeps.plots import Drawn, choose_axis, reference_comparison

    pytest.importorskip("assembly.protocols.consensus_game.reference")
    rows = []
    for members, awareness in itertools.product([4, 8, 16], ["may_exist", "none_exist"]):
        row = {
            "cell": f"members={members},protocol.awareness={awareness}",
            "members": members,
            "protocol.awareness": awareness,
        }
        row.update(
            stats.cell_row(
                pd.DataFrame(
                    {
                        "status": ["complete"] * 4,
                        "rounds": [3, 4, 5, 50],
                        "outcome": ["valid_decision"] * 3 + ["no_decision"],
                        "cause": [None] * 3 + ["round_limit"],
                    }
                )
            )
        )
        rows.append(row)
    cells = pd.DataFrame(rows)
    drawn = Drawn()
    axis = choose_axis(cells, ["members", "protocol.awareness"])
    assert axis.column == "members" and axis.series_keys == ["protocol.awareness"]
    reference_comparison(cells, axis, "arxiv_2603_01213/fig2", tmp_path, "fig2", drawn)
    assert drawn.notes == []
    assert {p.name for p in drawn.paths} == {"reference_comparison.png", "reference_comparison.svg"}


# ----------------------------------------------------------------------------- command line


def test_cli_sweep_end_to_end(tmp_path: Path) -> None:
    text = SWEEP.replace("protocol.quorum: [0.5, 0.9]", "protocol.quorum: [0.5]").replace("seeds: 3", "seeds: 2")
    path = write_sweep(tmp_path / "spec", text)
    out = tmp_path / "out"
    done = run_cli("sweep", str(path), "--out", str(out), "-q")  # sim-only: the process executor
    assert done.returncode == 0, done.stderr
    assert "4/4 runs, 0 failed" in done.stdout
    assert len(pd.read_csv(out / "results.csv")) == 4
    assert (out / "figures" / "outcome_rates.png").exists() and (out / "figures" / "outcome_rates.svg").exists()
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/transcript.jsonl")}

    again = run_cli("sweep", str(path), "--out", str(out), "-q")
    assert again.returncode == 2 and "--resume" in again.stderr and "Traceback" not in again.stderr

    resumed = run_cli("sweep", str(path), "--out", str(out), "--resume", "--executor", "local")
    assert resumed.returncode == 0, resumed.stderr
    assert "4 kept from before" in resumed.stdout
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/transcript.jsonl")} == stamps


def test_cli_reports_a_bad_sweep_file_in_one_line(tmp_path: Path) -> None:
    text = SWEEP.replace("members: [4, 6]", "members: [4, 2]")
    path = write_sweep(tmp_path, text)
    done = run_cli("sweep", str(path), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert f"{path}:{line_of(text, 'members: [4, 2]')} at grid.members.1" in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()  # nothing ran
