"""The Python API: runs and sweeps from a script or a notebook, as the CLI does them.

    import assembly
    result = assembly.run("scenarios/hidden_profile.yaml", seed=3)
    result.summary["outcome"], result.rounds, result.turns      # dict, DataFrames
    grid = assembly.sweep("configs/sweeps/group_size.yaml")
    grid.summary                                                # one row per cell

`run` and `sweep` block until done, in a plain script and inside a running event
loop alike (a Jupyter kernel runs one): there the work gets an event loop of its
own on a worker thread (`core.loops.run_sync`), because the kernel's loop can be
neither re-entered nor waited on from its own thread. `await assembly.arun(...)`
and `await assembly.asweep(...)` keep the caller's loop free while they work.

A scenario or sweep is a path or an object already loaded (`Scenario`, `Sweep`).
The model options build the LLM setup with the very function the CLI uses
(`cli_models.model_setup`), so `model=` and `api_base=` mean what `--model` and
`--api-base` mean. A run or sweep that fails before it starts leaves no folder
behind, so the same call can simply be retried.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assembly.core.errors import UserError
from assembly.core.loops import run_sync

if TYPE_CHECKING:
    import pandas as pd

    from assembly.llm.setup import LLMSetup
    from assembly.scenario.model import Scenario
    from assembly.sweeps.executors import Executor
    from assembly.sweeps.sweep import Sweep, SweepReport

__all__ = ["RunResult", "SweepResult", "arun", "asweep", "run", "sweep"]


@dataclass(frozen=True)
class RunResult:
    """A finished run: its folder, its summary, and its rounds and turns as tables."""

    path: Path
    summary: dict[str, Any] = field(repr=False)

    @property
    def outcome(self) -> str | None:
        return self.summary.get("outcome")

    @cached_property
    def rounds(self) -> pd.DataFrame:
        """One row per round (`assembly.load_rounds`)."""
        from assembly.sweeps.tables import load_rounds

        return load_rounds(self.path)

    @cached_property
    def turns(self) -> pd.DataFrame:
        """One row per member-turn (`assembly.load_turns`)."""
        from assembly.sweeps.tidy import load_turns

        return load_turns(self.path)

    def __repr__(self) -> str:
        s = self.summary
        return f"RunResult(path={str(self.path)!r}, outcome={s.get('outcome')!r}, rounds={s.get('rounds')})"


@dataclass(frozen=True)
class SweepResult:
    """A finished (or resumed) sweep: its folder, one row per run, one row per cell."""

    path: Path
    results: pd.DataFrame = field(repr=False)
    summary: pd.DataFrame = field(repr=False)
    report: SweepReport = field(repr=False)

    @property
    def figures(self) -> list[Path]:
        return list(self.report.figures)

    def __repr__(self) -> str:
        return f"SweepResult(path={str(self.path)!r}, runs={len(self.results)}, cells={len(self.summary)})"


# ----------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class _PreparedRun:
    scenario: Scenario
    run_dir: Path
    setup: LLMSetup


def _prepare_run(
    scenario: str | Path | Scenario,
    seed: int | None,
    members: int | None,
    rounds: int | None,
    overrides: Mapping[str, Any] | None,
    model: str | None,
    api_base: str | None,
    out: str | Path | None,
) -> _PreparedRun:
    """Load and check everything before anything is written (errors raise here)."""
    from assembly.cli import collect_overrides
    from assembly.cli_models import model_setup
    from assembly.core.run import new_run_dir
    from assembly.core.spec import resolved
    from assembly.scenario.loading import build_scenario, load_scenario
    from assembly.scenario.model import Scenario

    setup = model_setup(model, api_base, None, None, None, None)
    flags = collect_overrides(seed, members, rounds, None, None)
    if isinstance(scenario, Scenario):
        data = resolved(scenario)
        sc = build_scenario(data, {**setup.scenario_overrides(data), **dict(overrides or {}), **flags})
    else:
        path = Path(scenario)
        sc = load_scenario(path, {**setup.scenario_overrides_for(path), **dict(overrides or {}), **flags})
    setup.check(sc)
    run_dir = Path(out) if out is not None else new_run_dir(Path("runs"), sc)
    if (run_dir / "transcript.jsonl").exists():
        raise UserError(
            f"{run_dir} already holds a run; pick another `out` (or resume it: `assembly resume {run_dir}`)"
        )
    return _PreparedRun(sc, run_dir, setup)


async def _execute(prepared: _PreparedRun) -> RunResult:
    from assembly.core.transcript import TRANSCRIPT
    from assembly.launch import execute
    from assembly.llm.member import factory_for
    from assembly.llm.setup import profiles_named

    run_dir, created = prepared.run_dir, not prepared.run_dir.exists()
    factory = factory_for(prepared.setup) if profiles_named(prepared.scenario) else None
    try:
        summary = await execute(prepared.scenario, run_dir, factory=factory)
    except BaseException:
        # A run that wrote its first events can be resumed; anything less is a
        # half-made folder, removed so the same call can be retried.
        if created and not (run_dir / TRANSCRIPT).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return RunResult(run_dir, summary)


def run(
    scenario: str | Path | Scenario,
    *,
    seed: int | None = None,
    members: int | None = None,
    rounds: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    model: str | None = None,
    api_base: str | None = None,
    out: str | Path | None = None,
) -> RunResult:
    """Run a scenario (a YAML path or a `Scenario`) and return its result.

    `seed`, `members` and `rounds` are `--seed`, `--members` and `--rounds`;
    `overrides` maps dotted paths to values like `--set` (`{"protocol.quorum": 0.6}`);
    `model` and `api_base` are `--model` and `--api-base`; `out` is the run folder
    (default `runs/<scenario>-<time>-s<seed>`). Raises `UserError` (with the same
    message the CLI prints) for a bad scenario, override or model.
    """
    prepared = _prepare_run(scenario, seed, members, rounds, overrides, model, api_base, out)
    return run_sync(_execute(prepared))


async def arun(
    scenario: str | Path | Scenario,
    *,
    seed: int | None = None,
    members: int | None = None,
    rounds: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    model: str | None = None,
    api_base: str | None = None,
    out: str | Path | None = None,
) -> RunResult:
    """`run` for async code: the run's members act on the caller's event loop."""
    prepared = _prepare_run(scenario, seed, members, rounds, overrides, model, api_base, out)
    return await _execute(prepared)


# ----------------------------------------------------------------------------- sweeps


def _sweep(
    config: str | Path | Sweep,
    out: str | Path | None,
    executor: str | Executor | None,
    resume: bool,
    progress: bool | Callable[[Any], None],
    stop: Callable[[], bool] | None,
) -> SweepResult:
    from assembly.sweeps.executors import Executor, make_executor
    from assembly.sweeps.sweep import Sweep, checked_setup, load_with_models, run_sweep

    if isinstance(config, Sweep):
        plan, llm = config, checked_setup(config)
    else:
        plan, llm = load_with_models(config)
    folder = Path(out) if out is not None else plan.default_out()
    if isinstance(executor, Executor):
        runner = executor
    else:
        runner = make_executor(executor or ("process" if plan.sim_only else "local"), plan.spec.concurrency)
    if progress is True:
        from rich.console import Console

        from assembly.sweeps.display import SweepProgress

        with SweepProgress(Console(), plan.spec.name) as bar:
            report = run_sweep(plan, folder, runner, resume=resume, llm=llm, progress=bar, stage=bar.stage, stop=stop)
    else:
        shown = progress if callable(progress) else None
        report = run_sweep(plan, folder, runner, resume=resume, llm=llm, progress=shown, stop=stop)
    return SweepResult(report.out, report.results, report.cells, report)


def sweep(
    config: str | Path | Sweep,
    *,
    out: str | Path | None = None,
    executor: str | Executor | None = None,
    resume: bool = False,
    progress: bool | Callable[[Any], None] = False,
) -> SweepResult:
    """Run a sweep (a sweep YAML path or a loaded `Sweep`) and return its tables.

    `executor` is "local", "process" or "ray" (or an `Executor`); by default
    "process" for sim-only sweeps and "local" for sweeps with LLM members, as on the
    command line. `resume=True` keeps finished runs. `progress=True` shows the
    command line's progress bar; a callable receives the sweep's `Tally` instead.
    With the process executor, a script must call this under
    `if __name__ == "__main__":` (worker processes import the main module).
    """
    return _sweep(config, out, executor, resume, progress, None)


async def asweep(
    config: str | Path | Sweep,
    *,
    out: str | Path | None = None,
    executor: str | Executor | None = None,
    resume: bool = False,
    progress: bool | Callable[[Any], None] = False,
) -> SweepResult:
    """`sweep` for async code: it runs on a worker thread, leaving the caller's loop free.

    Cancelling the awaiting task stops the sweep from starting new runs; runs in
    flight finish in the background (their folders stay complete), and the sweep
    can be completed later with `resume=True`."""
    stop = threading.Event()
    try:
        return await asyncio.to_thread(_sweep, config, out, executor, resume, progress, stop.is_set)
    except asyncio.CancelledError:
        stop.set()
        raise
