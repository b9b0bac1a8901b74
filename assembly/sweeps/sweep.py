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

import difflib
import io
import itertools
import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from assembly.core.atomic import write_atomic
from assembly.core.errors import ScenarioError, UserError, quoted
from assembly.core.lock import writer_lock
from assembly.core.redaction import redact
from assembly.core.spec import WholeNumber, resolved, run_key
from assembly.core.transcript import SUMMARY
from assembly.protocols import reference_points
from assembly.scenario.loading import ALIASES, build_scenario, parse_yaml, read_text_bounded
from assembly.scenario.model import Scenario
from assembly.sweeps import stats
from assembly.sweeps import tables as analysis
from assembly.sweeps.executors import Executor, Job, JobResult

if TYPE_CHECKING:
    from assembly.llm.setup import LLMSetup

MAX_RUNS = 100_000
RUNS_DIR = "runs"
RESULTS = "results.csv"
RESULTS_PARQUET = "results.parquet"
CELLS = "summary.csv"
FIGURES = "figures"
_SWEEP_ONLY = ("seed",)  # seeds come from `seeds:`, never from the grid or `set:`


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
        raise _explain(exc, str(file), lines) from None
    _check_keys(spec, str(file), lines)
    _check_reference(spec, str(file), lines)
    scenario_file = Path(os.path.normpath(file.parent / spec.scenario))  # shown in messages: keep it short
    if not scenario_file.exists():
        raise ScenarioError(
            f"no scenario file {scenario_file}", file=str(file), path="scenario", line=lines.get(("scenario",))
        )
    base, base_lines = parse_yaml(read_text_bounded(scenario_file), str(scenario_file))
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
                raise _cell_error(exc, spec, grid, label, base, extra, str(file), lines) from None
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
) -> tuple[Sweep, LLMSetup | None]:
    """A sweep and the model setup its LLM seats use (None for a sim-only sweep).

    The model flags mean what they mean for `assembly run` (`llm_setup.from_flags`);
    `--model` puts every seat of every run on that model, which is part of the run keys.
    Every LLM seat's profile is checked here, before anything runs.
    """
    from assembly.llm.setup import from_flags

    flagged = any(v is not None for v in (model, api_base, models_file, cache))
    setup = from_flags(model=model, api_base=api_base, models_file=models_file, cache=cache) if flagged else None
    sweep = load_sweep(path, overrides_for=setup.scenario_overrides if setup else None)
    if sweep.sim_only:
        return sweep, setup
    setup = setup or from_flags()
    for run in {r.cell: r for r in sweep.runs}.values():
        setup.check(run.scenario)
    return sweep, setup


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


def _check_keys(spec: SweepSpec, file: str, lines: dict[tuple[Any, ...], int]) -> None:
    for section, keys in (("grid", list(spec.grid)), ("set", list(spec.set_))):
        for key in keys:
            problem = (
                f"{key!r} is not a dotted field path"
                if not key or any(not p for p in key.split("."))
                else "seeds are set with `seeds:` (a count or a list), not as an override"
                if key in _SWEEP_ONLY
                else None
            )
            if problem:
                raise ScenarioError(problem, file=file, path=f"{section}.{key}", line=lines.get((section, key)))
    resolved_set = {ALIASES.get(k, k): k for k in spec.set_}
    for key in spec.grid:
        if ALIASES.get(key, key) in resolved_set:
            fixed = resolved_set[ALIASES.get(key, key)]
            raise ScenarioError(
                f"{fixed!r} is fixed here but also a grid factor ({key!r}); keep one",
                file=file,
                path=f"set.{fixed}",
                line=lines.get(("set", fixed)),
            )
        values = [json.dumps(v, sort_keys=True) for v in spec.grid[key]]
        for i, v in enumerate(values):
            if v in values[:i]:
                raise ScenarioError(
                    f"duplicate value {spec.grid[key][i]!r}",
                    file=file,
                    path=f"grid.{key}.{i}",
                    line=lines.get(("grid", key, i)),
                )
    if isinstance(spec.seeds, list) and len(set(spec.seeds)) != len(spec.seeds):
        raise ScenarioError("duplicate seeds", file=file, path="seeds", line=lines.get(("seeds",)))


def _check_reference(spec: SweepSpec, file: str, lines: dict[tuple[Any, ...], int]) -> None:
    if not spec.reference:
        return
    try:
        reference_points(spec.reference)
    except UserError as exc:
        raise ScenarioError(str(exc), file=file, path="reference", line=lines.get(("reference",))) from None


def _touches(key: str, path: str | None) -> bool:
    target = ALIASES.get(key, key)
    return path is not None and (path == target or path.startswith(target + ".") or target.startswith(path + "."))


def _cell_error(
    exc: ScenarioError,
    spec: SweepSpec,
    grid: dict[str, Any],
    label: str,
    base: dict[str, Any],
    extra: dict[str, Any],
    file: str,
    lines: dict[tuple[Any, ...], int],
) -> ScenarioError:
    """Point a cell's scenario error at the grid value (or `set:` entry) that caused it."""
    blame: tuple[Any, ...] | None = None
    for key in grid:
        if _touches(key, exc.path):
            blame = ("grid", key, spec.grid[key].index(grid[key]))
            break
    else:
        for key in spec.set_:
            if _touches(key, exc.path):
                blame = ("set", key)
                break
    if blame is None:
        # A cross-field error (e.g. quotas that cannot seat 6): find the grid value
        # without which the cell is valid.
        for key in grid:
            try:
                build_scenario(base, {**spec.set_, **{k: v for k, v in grid.items() if k != key}, **extra})
            except ScenarioError:
                continue
            blame = ("grid", key, spec.grid[key].index(grid[key]))
            break
    if blame is None:
        blame = ("set",) if spec.set_ else ("grid",)
    reason = exc.reason.replace(" (from a command-line override)", "")
    where = f"{exc.file}" + (f":{exc.line}" if exc.line else "") + (f" at {exc.path}" if exc.path else "")
    return ScenarioError(
        f"cell {label} does not validate: {where}: {reason}",
        file=file,
        path=".".join(str(p) for p in blame),
        line=_line(blame, lines),
    )


def _line(path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    for n in range(len(path), 0, -1):
        if path[:n] in lines:
            return lines[path[:n]]
    return None


def _explain(exc: ValidationError, file: str, lines: dict[tuple[Any, ...], int]) -> ScenarioError:
    err = exc.errors(include_url=False)[0]
    loc = tuple(err["loc"])
    if loc and loc[0] == "seeds":  # drop pydantic's union branch names (`int`, `list[...]`)
        loc = ("seeds", *(p for p in loc[1:] if isinstance(p, int)))
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        fields = [f.alias or name for name, f in SweepSpec.model_fields.items()]
        hint = difflib.get_close_matches(str(loc[-1]), fields, n=1)
        msg = f"unknown key {loc[-1]!r}" + (
            f" (did you mean {hint[0]!r}?)" if hint else f" (known: {', '.join(fields)})"
        )
    elif err["type"] == "missing":
        msg = "required field is missing"
    elif "input" in err and not isinstance(err["input"], dict | list):
        msg = f"{msg} (got {quoted(err['input'])})"
    if loc and loc[0] == "seeds" and len(exc.errors()) > 1:
        msg = f"seeds must be a count (≥ 1) or a list of seeds ≥ 0: {msg}"
    return ScenarioError(msg, file=file, path=".".join(str(p) for p in loc) or None, line=_line(loc, lines))


# ----------------------------------------------------------------------------- running


@dataclass
class Tally:
    """What the sweep has produced so far (previously complete runs included)."""

    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    cost_usd: float = 0.0
    tokens: int = 0

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
        return text + f" · ${self.cost_usd:.4f} · {self.tokens:,} tok"


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
) -> SweepReport:
    """Run (or finish) a sweep and write its tables and figures.

    If the executor is interrupted (Ctrl-C) or fails, the tables are written for
    what finished and the exception is re-raised with the `SweepReport` attached as
    `exc.report`. Worker processes re-import the caller's main module: call this
    from a script only under `if __name__ == "__main__":`.
    """
    with writer_lock(out, "sweep --resume" if resume else "sweep"):
        return _run_locked(sweep, out.resolve(), executor, resume, max_cost, progress, draw, llm)


def _run_locked(
    sweep: Sweep,
    out: Path,
    executor: Executor,
    resume: bool,
    max_cost: float | None,
    progress: Callable[[Tally], None] | None,
    draw: bool,
    llm: LLMSetup | None,
) -> SweepReport:
    """`run_sweep` with the sweep folder's writer lock held (`core.lock`)."""
    t0 = time.perf_counter()
    done = prepare(sweep, out, resume)
    tally = Tally(total=len(sweep.runs))
    results: dict[str, JobResult] = {}
    for r in sweep.runs:
        if r.key in done:
            results[r.key] = JobResult(r.key, str(out / r.dir), done[r.key])
            tally.add(done[r.key])
            tally.skipped += 1
    if progress:
        progress(tally)
    todo = [Job(r.key, str(out / r.dir), resolved(r.scenario), llm) for r in sweep.runs if r.key not in done]

    def on_done(result: JobResult) -> None:
        results[result.key] = result
        tally.add(result.summary if result.ok else None)
        if progress:
            progress(tally)

    def over_budget() -> bool:
        return max_cost is not None and tally.cost_usd >= max_cost

    try:
        executor.run(iter(todo), on_done, over_budget)
    except BaseException as exc:
        # Ctrl-C, or an executor that cannot go on: keep the tables true to what
        # finished, so the folder is useful before it is resumed.
        exc.report = _finish(  # type: ignore[attr-defined]
            sweep,
            out,
            results,
            tally,
            t0,
            max_cost,  # type: ignore[attr-defined]
            draw=False,
            interrupted=isinstance(exc, KeyboardInterrupt),
        )
        raise
    return _finish(sweep, out, results, tally, t0, max_cost, draw=draw, interrupted=False)


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
) -> SweepReport:
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
        from assembly.sweeps.plots import draw_sweep

        drawn = draw_sweep(
            frame,
            cells,
            out / FIGURES,
            grid_keys=sweep.grid_keys,
            reference=sweep.spec.reference,
            title=sweep.spec.name,
        )
        report.figures, report.notes = drawn.paths, drawn.notes
    return report


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


# ----------------------------------------------------------------------------- display


class SweepProgress:
    """A rich progress bar: done/total, elapsed, ETA, outcomes and spend so far."""

    def __init__(self, console: Console, name: str) -> None:
        self.progress = Progress(
            TextColumn(f"[bold]{_escape(name)}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[tally]}"),
            console=console,
            refresh_per_second=4,
        )
        self.task: Any = None

    def __enter__(self) -> SweepProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def __call__(self, tally: Tally) -> None:
        if self.task is None:
            # Runs kept from an earlier attempt start the bar without feeding the
            # speed estimate, so the ETA reflects only runs executed now.
            self.task = self.progress.add_task("", total=tally.total, completed=tally.done, tally=tally.line())
        else:
            self.progress.update(self.task, completed=tally.done, tally=tally.line())


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def iter_failed(report: SweepReport) -> Iterator[tuple[str, str]]:
    if report.results.empty or "status" not in report.results:
        return
    failed = report.results[report.results["status"] == "failed"]
    for _, row in failed.iterrows():
        yield str(row["run"]), str(row.get("error"))


def _pct(rate: float, lo: float, hi: float) -> str:
    if pd.isna(rate):
        return "–"
    return f"{rate:.0%} ({lo * 100:.0f}–{hi * 100:.0f})"


def _short_label(cell: str) -> str:
    """`members=8,protocol.awareness=none_exist` -> `members=8, awareness=none_exist` (for the terminal)."""
    return re.sub(r"(^|,)[A-Za-z0-9_.]*\.([A-Za-z0-9_]+)=", r"\1\2=", cell).replace(",", ", ")


def print_report(console: Console, report: SweepReport) -> None:
    """The per-cell table and where everything was written."""
    from rich.table import Table

    from assembly.inspection.console import safe

    cells = report.cells
    if not cells.empty:
        table = Table(title="outcome rates, % (95% Wilson interval)", title_justify="left", box=None)
        # Figures never wrap or shrink; long cell labels wrap instead.
        table.add_column("cell", overflow="fold")
        for col in ("n", "valid", "invalid", "no decision", "rounds mean/median"):
            table.add_column(col, justify="right", no_wrap=True, min_width=len(col) if col != "n" else 3)
        for _, c in cells.iterrows():
            failed = f" (+{int(c['failed'])} failed)" if c["failed"] else ""
            table.add_row(
                safe(_short_label(str(c["cell"]))),
                f"{int(c['n'])}{failed}",
                _pct(c["valid_decision_rate"], c["valid_decision_lo"], c["valid_decision_hi"]),
                _pct(c["invalid_decision_rate"], c["invalid_decision_lo"], c["invalid_decision_hi"]),
                _pct(c["no_decision_rate"], c["no_decision_lo"], c["no_decision_hi"]),
                "–" if pd.isna(c["rounds_mean"]) else f"{c['rounds_mean']:.1f} / {c['rounds_median']:g}",
            )
        console.print(table)
        causes = {k: int(cells[f"cause_{k}_k"].sum()) for k in stats.CAUSES}
        if any(causes.values()):
            console.print(
                "no decision, by cause: " + ", ".join(f"{k} {v}" for k, v in causes.items() if v),
                highlight=False,
                markup=False,
            )
    t = report.tally
    rate = (t.done - t.skipped) / report.wall_s if report.wall_s > 0 else 0.0
    console.print(
        f"{t.done}/{t.total} runs ({t.skipped} kept from before, {t.failed} failed) in "
        f"{report.wall_s:.1f} s ({rate:.1f} runs/s); {t.line()}",
        highlight=False,
        markup=False,
    )
    for run, error in list(iter_failed(report))[:10]:
        console.print(f"[red]failed[/] {safe(run)}: {safe(error)}")
    if report.stopped_for_cost:
        console.print(
            f"[yellow]stopped at the spend limit:[/] {report.not_started} runs not started; raise "
            "--max-cost and add --resume to finish"
        )
    for note in report.notes:
        console.print(f"[yellow]note:[/] {safe(note)}")
    console.print(
        f"tables: {safe(report.out / RESULTS)}, {safe(report.out / CELLS)}"
        + (f"\nfigures: {safe(report.out / FIGURES)}/" if report.figures else "")
    )
