"""Sweeps: a grid of scenario overrides x seeds, run resumably into one folder.

A sweep file names a scenario, a grid (dotted paths as for `--set`, cartesian
product), fixed overrides, seeds per cell and a concurrency limit. Every cell and
seed is validated as a full scenario before anything runs, so a bad grid value
fails in a second, not after an hour of runs.

The sweep folder:
    sweep.json            manifest: the plan (run folder, cell, grid values, seed, key)
    runs/<cell>-s<seed>-<key>/   one normal run folder per run
    results.csv/.parquet  one row per run;  summary.csv  one row per cell
    figures/              PNG + SVG

A run's identity is `scenario.run_key` of its resolved scenario (seed included),
which is also in its folder name; `--resume` keeps every run whose summary.json is
complete for that key and re-runs the rest from scratch.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assembly.core.atomic import write_atomic
from assembly.core.errors import ScenarioError, UserError
from assembly.core.lock import LOCK_FILE, writer_lock
from assembly.core.redaction import redact
from assembly.core.spec import WholeNumber, resolved, run_key
from assembly.core.transcript import SUMMARY
from assembly.scenario.loading import build_scenario, parse_yaml, read_text_bounded
from assembly.scenario.model import Scenario
from assembly.sweeps import stats
from assembly.sweeps import tables as analysis
from assembly.sweeps.executors import Executor, Job, JobResult
from assembly.sweeps.progress import LiveTurns, Ticker, TurnCounts
from assembly.sweeps.spec_errors import cell_error, check_extra, check_keys, check_reference, explain

if TYPE_CHECKING:
    from assembly.llm.setup import LLMSetup

MAX_RUNS = 100_000
RUNS_DIR = "runs"
RESULTS = "results.csv"
RESULTS_PARQUET = "results.parquet"
CELLS = "summary.csv"
FIGURES = "figures"


class SweepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
    description: str = ""
    scenario: Annotated[str, Field(min_length=1)]  # relative to the sweep file
    grid: dict[str, Annotated[list[Any], Field(min_length=1, max_length=10_000)]] = Field(default_factory=dict)
    set_: dict[str, Any] = Field(default_factory=dict, alias="set")
    seeds: (
        Annotated[WholeNumber, Field(ge=1, le=MAX_RUNS)]
        | Annotated[list[Annotated[WholeNumber, Field(ge=0)]], Field(min_length=1)]
    ) = 1
    concurrency: Annotated[int, Field(ge=1, le=4096)] = 4
    out: str | None = None  # relative to the current directory, like --out
    reference: str | None = None  # e.g. arxiv_2603_01213/fig2

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)


@dataclass(frozen=True)
class PlannedRun:
    cell: str  # label, e.g. "members=6"
    cell_index: int
    grid: dict[str, Any]
    seed: int
    key: str
    dir: str  # relative to the sweep folder
    scenario: Scenario


@dataclass
class Sweep:
    spec: SweepSpec
    file: Path
    scenario_file: Path
    cells: list[tuple[str, dict[str, Any]]]
    runs: list[PlannedRun]  # seed-major: a cut-short sweep has every cell partly done

    @property
    def grid_keys(self) -> list[str]:
        return list(self.spec.grid)

    @property
    def sim_only(self) -> bool:
        return all(_sim_only(r.scenario) for r in self.runs)

    def default_out(self) -> Path:
        return Path(self.spec.out) if self.spec.out else Path("runs") / "sweeps" / self.spec.name


def _sim_only(sc: Scenario) -> bool:
    policies = {sc.members.policy, sc.facilitator.policy, *(r.policy for r in sc.population.roles)}
    return policies <= {"sim", None}


# ----------------------------------------------------------------------------- loading


def load_sweep(
    path: str | Path,
    extra: dict[str, Any] | None = None,
    overrides_for: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Sweep:
    """Read and validate a sweep file and every run it plans.

    `extra` are overrides applied to every run after the sweep's own, and
    `overrides_for(scenario_data)` computes more from the scenario's raw YAML (the
    CLI's `--model`: `LLMSetup.scenario_overrides`); both are part of each run's key.
    """
    file = Path(path)
    data, lines = parse_yaml(read_text_bounded(file), str(file))
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise explain(exc, str(file), lines, [f.alias or name for name, f in SweepSpec.model_fields.items()]) from None
    check_keys(spec, str(file), lines)
    check_reference(spec, str(file), lines)
    scenario_file = Path(os.path.normpath(file.parent / spec.scenario))  # shown in messages: keep it short
    if not scenario_file.exists():
        raise ScenarioError(
            f"no scenario file {scenario_file}", file=str(file), path="scenario", line=lines.get(("scenario",))
        )
    base, base_lines = parse_yaml(read_text_bounded(scenario_file), str(scenario_file))
    check_extra(spec, extra or {})
    extra = {**(extra or {}), **(overrides_for(base) if overrides_for else {})}
    build_scenario(base, extra, file=str(scenario_file), lines=base_lines)  # the file's own errors first
    cells = _cells(spec)
    runs: list[PlannedRun] = []
    by_key: dict[str, PlannedRun] = {}
    total = len(cells) * len(spec.seed_list)
    if total > MAX_RUNS:
        raise ScenarioError(
            f"the grid plans {total} runs; a sweep is limited to {MAX_RUNS}",
            file=str(file),
            path="grid",
            line=lines.get(("grid",)),
        )
    for seed in spec.seed_list:
        for index, (label, grid) in enumerate(cells):
            overrides = {**spec.set_, **grid, **extra, "seed": seed}
            try:
                sc = build_scenario(base, overrides, file=str(scenario_file), lines=base_lines)
            except ScenarioError as exc:
                raise cell_error(exc, spec, grid, label, base, extra, str(file), lines) from None
            key = run_key(sc)
            if key in by_key:
                raise ScenarioError(
                    f"cells {by_key[key].cell} and {label} are the same run (seed {seed}): "
                    "two grid values resolve to the same scenario",
                    file=str(file),
                    path="grid",
                    line=lines.get(("grid",)),
                )
            run = PlannedRun(label, index, grid, seed, key, f"{RUNS_DIR}/{_slug(label)}-s{seed}-{key}", sc)
            by_key[key] = run
            runs.append(run)
    return Sweep(spec, file, scenario_file, cells, runs)


def load_with_models(
    path: str | Path,
    *,
    model: str | None = None,
    api_base: str | None = None,
    models_file: Path | None = None,
    cache: Path | None = None,
    setup: LLMSetup | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[Sweep, LLMSetup | None]:
    """A sweep and the model setup its LLM seats use (None for a sim-only sweep).

    `setup` is the one the CLI builds from its model flags (as for `assembly run`);
    without it, the model keywords build one with `llm_setup.from_flags`. `--model`
    puts every seat of every run on that model, and `extra` (`--set`) applies to every
    run; both are part of the run keys. Every LLM seat's profile is checked here,
    before anything runs.
    """
    from assembly.llm.setup import from_flags

    flagged = any(v is not None for v in (model, api_base, models_file, cache))
    if setup is None and flagged:
        setup = from_flags(model=model, api_base=api_base, models_file=models_file, cache=cache)
    sweep = load_sweep(path, extra, overrides_for=setup.scenario_overrides if setup else None)
    return sweep, checked_setup(sweep, setup)


def checked_setup(sweep: Sweep, setup: LLMSetup | None = None) -> LLMSetup | None:
    """The setup a sweep's LLM seats use (None for a sim-only sweep): `setup`, else the
    default models file, with every cell's profiles checked before anything runs."""
    from assembly.llm.setup import from_flags

    if sweep.sim_only:
        return None
    setup = setup or from_flags()
    for run in {r.cell: r for r in sweep.runs}.values():
        setup.check(run.scenario)
    return setup


def _cells(spec: SweepSpec) -> list[tuple[str, dict[str, Any]]]:
    keys = list(spec.grid)
    out = []
    for values in itertools.product(*(spec.grid[k] for k in keys)):
        grid = dict(zip(keys, values, strict=True))
        label = ",".join(f"{k}={_compact(v)}" for k, v in grid.items()) or "all"
        out.append((label, grid))
    return out


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _slug(label: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", label.replace("=", "-").replace(",", "_")).strip("_")
    return slug[:80] or "cell"


# ----------------------------------------------------------------------------- running


@dataclass
class Tally:
    """What the sweep has produced so far (previously complete runs included), and the
    member-turns, model calls and spend of this session's runs as they happen."""

    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    cost_usd: float = 0.0  # finished runs only: what a spend limit is checked against
    tokens: int = 0
    live: TurnCounts = field(default_factory=TurnCounts)  # runs executed now, in flight included

    def add(self, summary: dict[str, Any] | None) -> None:
        self.done += 1
        if summary is None:
            self.failed += 1
            return
        self.outcomes[summary.get("outcome") or "incomplete"] += 1
        totals = summary.get("totals", {})
        self.cost_usd += float(totals.get("cost_usd", 0.0))
        self.tokens += int(totals.get("prompt_tokens", 0)) + int(totals.get("completion_tokens", 0))

    def line(self) -> str:
        o = self.outcomes
        text = (
            f"valid {o['valid_decision']} · invalid {o['invalid_decision']} · none {o['no_decision']}"
            f" · failed {self.failed}"
        )
        live = self.live
        if live.turns:
            text += f" · {live.turns:,} turns" + (f" ({live.failed:,} failed)" if live.failed else "")
        if live.calls or self.tokens or self.cost_usd:
            # In-flight spend shown when larger: it includes runs not yet finished.
            text += f" · {live.calls:,} calls · ${max(self.cost_usd, live.cost_usd):.4f} · {self.tokens:,} tok"
        return text


@dataclass
class SweepReport:
    out: Path
    tally: Tally
    results: pd.DataFrame
    cells: pd.DataFrame
    wall_s: float
    not_started: int
    stopped_for_cost: bool
    interrupted: bool = False
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures_kept: bool = False  # inputs unchanged since they were drawn: not redrawn


def complete_summary(run_dir: Path, key: str) -> dict[str, Any] | None:
    """The run's summary if it finished under this key; None means (re-)run it."""
    try:
        data = json.loads((run_dir / SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("status") == "complete" and data.get("run_key") == key:
        return data
    return None


def prepare(sweep: Sweep, out: Path, resume: bool) -> dict[str, dict[str, Any]]:
    """Check the folder, write the manifest, and return summaries of runs already done."""
    manifest = out / analysis.MANIFEST
    if manifest.exists() and not resume:
        raise UserError(
            f"{out} already holds a sweep; add --resume to continue it (finished runs are "
            "kept), or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    plan = {
        "name": sweep.spec.name,
        "sweep_file": str(sweep.file),
        "scenario_file": str(sweep.scenario_file),
        "grid": sweep.spec.grid,
        "set": sweep.spec.set_,
        "seeds": sweep.spec.seed_list,
        "reference": sweep.spec.reference,
        "runs": [{"dir": r.dir, "cell": r.cell, "grid": r.grid, "seed": r.seed, "key": r.key} for r in sweep.runs],
    }
    write_atomic(manifest, redact(json.dumps(plan, indent=1, default=str) + "\n"))
    done = {}
    if resume:
        for r in sweep.runs:
            summary = complete_summary(out / r.dir, r.key)
            if summary is not None:
                done[r.key] = summary
    return done


def run_sweep(
    sweep: Sweep,
    out: Path,
    executor: Executor,
    *,
    resume: bool = False,
    max_cost: float | None = None,
    progress: Callable[[Tally], None] | None = None,
    draw: bool = True,
    llm: LLMSetup | None = None,
    stage: Callable[[str], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> SweepReport:
    """Run (or finish) a sweep and write its tables and figures.

    `progress` is called with the tally as runs finish and, every half second while
    runs go, with their member-turns so far (from a ticker thread; see
    `sweeps.progress`); `stage` with what post-processing is doing; `stop` is asked
    before each new run (runs in flight finish).

    If the executor is interrupted (Ctrl-C) or fails, the tables are written for
    what finished and the exception is re-raised with the `SweepReport` attached as
    `exc.report`; an executor that fails before starting any run leaves no manifest
    behind in a folder that held none, so the same command can simply be retried.
    Worker processes re-import the caller's main module: call this from a script
    only under `if __name__ == "__main__":`.
    """
    existed = out.exists()  # before the lock file makes it exist
    with writer_lock(out, "sweep --resume" if resume else "sweep"):
        return _run_locked(sweep, out.resolve(), executor, resume, max_cost, progress, draw, llm, stage, stop, existed)


def _run_locked(
    sweep: Sweep,
    out: Path,
    executor: Executor,
    resume: bool,
    max_cost: float | None,
    progress: Callable[[Tally], None] | None,
    draw: bool,
    llm: LLMSetup | None,
    stage: Callable[[str], None] | None,
    stop: Callable[[], bool] | None,
    existed: bool,
) -> SweepReport:
    """`run_sweep` with the sweep folder's writer lock held (`core.lock`)."""
    t0 = time.perf_counter()
    out = out.resolve()
    fresh = not (out / analysis.MANIFEST).exists()
    done = prepare(sweep, out, resume)
    tally = Tally(total=len(sweep.runs))
    results = _kept(sweep, out, done, tally)
    live = LiveTurns()
    lock = threading.Lock()  # the ticker thread and the executor's callbacks share the tally

    def show() -> None:
        if progress:
            with lock:
                tally.live = live.snapshot()
                progress(tally)

    show()
    todo = [Job(r.key, str(out / r.dir), resolved(r.scenario), llm) for r in sweep.runs if r.key not in done]
    started: list[str] = []

    def pulled(jobs: Iterable[Job]) -> Iterator[Job]:
        # Executors pull each job just before starting it: that is when to tail it.
        for job in jobs:
            live.start(job.run_dir)
            started.append(job.key)
            yield job

    def on_done(result: JobResult) -> None:
        results[result.key] = result
        live.finish(result.run_dir, _exact_counts(result))
        with lock:
            tally.add(result.summary if result.ok else None)
        show()

    def should_stop() -> bool:
        return (max_cost is not None and tally.cost_usd >= max_cost) or (stop is not None and stop())

    def tick() -> None:
        live.poll()
        show()

    ticker = Ticker(tick) if progress else contextlib.nullcontext()
    try:
        with ticker:
            executor.run(pulled(todo), on_done, should_stop)
    except BaseException as exc:
        if fresh and not started and not isinstance(exc, KeyboardInterrupt):
            unprepare(out, created=not existed)
            raise
        # Ctrl-C, or an executor that cannot go on: keep the tables true to what
        # finished, so the folder is useful before it is resumed.
        exc.report = _finish(  # type: ignore[attr-defined]
            sweep, out, results, tally, t0, max_cost, draw=False, interrupted=isinstance(exc, KeyboardInterrupt)
        )
        raise
    return _finish(sweep, out, results, tally, t0, max_cost, draw=draw, interrupted=False, stage=stage)


def _kept(sweep: Sweep, out: Path, done: dict[str, dict[str, Any]], tally: Tally) -> dict[str, JobResult]:
    """The results of runs a resume keeps (finished before), counted in `tally` as skipped."""
    results: dict[str, JobResult] = {}
    for r in sweep.runs:
        if r.key in done:
            results[r.key] = JobResult(r.key, str(out / r.dir), done[r.key])
            tally.add(done[r.key])
            tally.skipped += 1
    return results


def _exact_counts(result: JobResult) -> TurnCounts | None:
    """A finished run's turns (counted in its worker) and calls and cost (from its summary)."""
    if result.summary is None or not result.turns:
        return None  # no summary (the run failed): what its transcript shows is all there is
    t = result.summary.get("totals", {})
    failed = sum(int(t.get(k, 0)) for k in ("turn_timeouts", "malformed", "provider_errors"))
    return TurnCounts(result.turns, failed, int(t.get("calls", 0)), float(t.get("cost_usd", 0.0)))


def unprepare(out: Path, *, created: bool) -> None:
    """Undo `prepare` for a sweep that never started a run: drop the manifest (and the
    folder, if this sweep created it and nothing else is in it)."""
    (out / analysis.MANIFEST).unlink(missing_ok=True)
    if created:
        with contextlib.suppress(OSError):
            (out / LOCK_FILE).unlink(missing_ok=True)  # our own, in a folder we made
            out.rmdir()  # only if empty


def _finish(
    sweep: Sweep,
    out: Path,
    results: dict[str, JobResult],
    tally: Tally,
    t0: float,
    max_cost: float | None,
    *,
    draw: bool,
    interrupted: bool,
    stage: Callable[[str], None] | None = None,
) -> SweepReport:
    say = stage or (lambda _text: None)
    say(f"writing {RESULTS} and {CELLS}")
    frame = results_frame(sweep, out, results)
    cells = cells_frame(sweep, frame)
    write_tables(out, frame, cells)
    report = SweepReport(
        out=out,
        tally=tally,
        results=frame,
        cells=cells,
        wall_s=time.perf_counter() - t0,
        not_started=len(sweep.runs) - len(results),
        stopped_for_cost=max_cost is not None and tally.cost_usd >= max_cost and len(results) < len(sweep.runs),
        interrupted=interrupted,
    )
    if draw and len(frame):
        from assembly.sweeps.figures import draw_if_changed

        drawn = draw_if_changed(sweep, out / FIGURES, frame, cells, _summaries(sweep, results), say)
        report.figures, report.notes, report.figures_kept = drawn.paths, drawn.notes, drawn.kept
    say("")
    return report


def _summaries(sweep: Sweep, results: dict[str, JobResult]) -> list[tuple[PlannedRun, dict[str, Any]]]:
    """Each planned run with its summary, for figures that need per-round data."""
    return [
        (r, res.summary)
        for r in sweep.runs
        if (res := results.get(r.key)) is not None and res.ok and res.summary is not None
    ]


def results_frame(sweep: Sweep, out: Path, results: dict[str, JobResult]) -> pd.DataFrame:
    """One row per planned run that has a result, ordered by cell then seed."""
    rows = []
    seed_order = {seed: i for i, seed in enumerate(sweep.spec.seed_list)}
    for r in sorted(sweep.runs, key=lambda r: (r.cell_index, seed_order[r.seed])):
        res = results.get(r.key)
        if res is None:
            continue
        cells = {"cell": r.cell, **{k: analysis.grid_value(v) for k, v in r.grid.items()}}
        name = Path(r.dir).name
        if res.ok and res.summary is not None:
            row = analysis.run_row(res.summary, name)
            row["error"] = None
        else:
            row = {
                "run": name,
                "run_key": r.key,
                "scenario": r.scenario.name,
                "protocol": r.scenario.protocol.kind,
                "seed": r.seed,
                "members": r.scenario.population.size,
                "status": "failed",
                "error": res.error or "no summary",
                "wall_s": round(res.wall_s, 6),
            }
        rows.append({**cells, **{k: v for k, v in row.items() if k not in cells}})
    return pd.DataFrame(rows)


def cells_frame(sweep: Sweep, results: pd.DataFrame) -> pd.DataFrame:
    if results.empty:
        return pd.DataFrame()
    by = ["cell", *[k for k in sweep.grid_keys if k != "cell"]]
    return stats.cell_table(results, by)


def write_tables(out: Path, results: pd.DataFrame, cells: pd.DataFrame) -> None:
    """results.csv, summary.csv and results.parquet, each written whole (`write_atomic`)."""
    write_atomic(out / RESULTS, redact(results.to_csv(index=False)))
    write_atomic(out / CELLS, redact(cells.to_csv(index=False)))
    if not results.empty:
        buffer = io.BytesIO()
        _parquet_safe(results).to_parquet(buffer, index=False)
        write_atomic(out / RESULTS_PARQUET, buffer.getvalue())


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Arrow needs one type per column; mixed object columns (e.g. a decision that is an
    option id in one protocol and a number in another) are stored as text."""
    out = frame.copy()
    for col in [c for c in out.columns if pd.api.types.is_object_dtype(out[c])]:
        kinds = {type(v) for v in out[col] if v is not None and not (isinstance(v, float) and pd.isna(v))}
        if len(kinds) > 1:
            out[col] = out[col].map(lambda v: None if v is None or (isinstance(v, float) and pd.isna(v)) else str(v))
    return out
