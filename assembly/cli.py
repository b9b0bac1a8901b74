"""The `assembly` command line.

Commands stay thin: each parses options, calls the module that owns the concept
(scenario, runner, ...), and turns `UserError`s into one clear message and exit 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from assembly.cli_models import (
    ApiBaseOpt,
    ApiKeyEnvOpt,
    CacheOpt,
    ClientOpt,
    MaxConcurrentOpt,
    ModelOpt,
    ModelsFileOpt,
    capped,
    capped_factory,
    llm_factory,
    model_setup,
)
from assembly.cli_replay import replay
from assembly.cli_support import EXIT_INTERRUPTED, QuietOpt, RunArg, console, err_console, fail, one_line
from assembly.cli_support import plain as _plain
from assembly.core.errors import UserError, storage_error


class _App(typer.Typer):
    """The command group; an OSError no command anticipated (permissions, a full
    disk) ends in one line and exit 1, never a traceback, whichever entry point ran."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except OSError as exc:
            sys.exit(fail(storage_error(exc, "read or write")).exit_code)


app = _App(
    # `assembly --install-completion` / `--show-completion` for bash, zsh, fish, PowerShell.
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain click help: flags are listed without a `<bool>` type after them, and the
    # text reads the same in a terminal, a pipe or a CI log.
    rich_markup_mode=None,
    help="Simulate citizen assemblies of LLM agents (offline `sim` members by default).",
)


def _show_version(value: bool) -> None:
    if value:
        from assembly import __version__

        print(f"assembly {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_show_version, help="Print the version and exit."),
    ] = False,
) -> None:
    """Simulate citizen assemblies of LLM agents (offline `sim` members by default)."""
    # Build the protocol registry before any command, so that a bad third-party
    # protocol (ASSEMBLY_PROTOCOLS, entry points) is one clear error, not a traceback.
    try:
        import assembly.protocols  # noqa: F401 - imported for its check
    except UserError as exc:
        raise fail(exc) from None


SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="PATH=VALUE",
        help="Override any field: dotted.path=value (repeatable), validated like the file.",
    ),
]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed (overrides the scenario's).")]
MembersOpt = Annotated[int | None, typer.Option(help="Group size; seating scales the population.")]
RoundsOpt = Annotated[int | None, typer.Option(help="Maximum rounds (protocol.max_rounds).")]
TimeoutOpt = Annotated[float | None, typer.Option("--turn-timeout", help="Per-turn deadline in seconds.")]


def collect_overrides(
    seed: int | None, members: int | None, rounds: int | None, turn_timeout: float | None, sets: list[str] | None
) -> dict[str, Any]:
    from assembly.scenario.loading import parse_override

    out: dict[str, Any] = {}
    for text in sets or []:
        key, value = parse_override(text)
        out[key] = value
    for key, value in (("seed", seed), ("members", members), ("rounds", rounds), ("turn_timeout", turn_timeout)):
        if value is not None:
            out[key] = value
    return out


@app.command()
def validate(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    set_: SetOpt = None,
    seed: SeedOpt = None,
    members: MembersOpt = None,
    rounds: RoundsOpt = None,
    turn_timeout: TimeoutOpt = None,
) -> None:
    """Check a scenario (and overrides) without running it."""
    from assembly.core.spec import run_key
    from assembly.scenario.loading import load_scenario

    try:
        sc = load_scenario(scenario, collect_overrides(seed, members, rounds, turn_timeout, set_))
    except UserError as exc:
        raise fail(exc) from None
    console.print(
        f"[green]ok[/] {_plain(str(scenario))}: {sc.name}, protocol {sc.protocol.kind}, "
        f"{sc.population.size} members, {len(sc.options)} options, {len(sc.facts)} facts, "
        f"seed {sc.seed}, run key {run_key(sc)}"
    )


# Model flags (run, models; `llm_setup.from_flags` turns them into profiles + overrides).
@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    seed: SeedOpt = None,
    members: MembersOpt = None,
    rounds: RoundsOpt = None,
    turn_timeout: TimeoutOpt = None,
    set_: SetOpt = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default runs/<run-id>).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live display; one line at the end.")] = False,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    client: ClientOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    models_file: ModelsFileOpt = None,
    cache: CacheOpt = None,
    max_concurrent: MaxConcurrentOpt = None,
    max_cost: Annotated[
        float | None,
        typer.Option(
            "--max-cost", min=0.0, help="Stop the run cleanly (cause budget) once model calls cost this many USD."
        ),
    ] = None,
) -> None:
    """Run a scenario: seat an assembly, deliberate, decide (or record why not)."""
    from assembly.core.run import new_run_dir, refuse_if_taken
    from assembly.inspection.console import LiveProgress, print_summary
    from assembly.launch import execute
    from assembly.llm.serving import served
    from assembly.llm.setup import profiles_named
    from assembly.scenario.loading import load_scenario

    try:
        setup = model_setup(model, api_base, client, api_key_env, models_file, cache, max_concurrent)
        overrides = {
            **setup.scenario_overrides_for(scenario),
            **({"protocol.max_cost": max_cost} if max_cost is not None else {}),
            **collect_overrides(seed, members, rounds, turn_timeout, set_),
        }
        sc = load_scenario(scenario, overrides)
        setup.check(sc)
        run_dir = out or new_run_dir(Path("runs"), sc)
        refuse_if_taken(run_dir)  # checked again under the folder's lock when the run starts
    except UserError as exc:
        raise fail(exc) from None
    try:
        # Local profiles (`--model local/...`) get an embedded server for the run's duration.
        with served(setup, profiles_named(sc)) as setup:
            factory = llm_factory(setup, sc)
            if quiet:
                summary = asyncio.run(execute(sc, run_dir, factory=factory))
            else:
                console.print(f"[bold]{_plain(sc.name)}[/]: {_plain(sc.question)}")
                if factory is not None:
                    console.print(f"LLM members: {_plain(setup.describe())}", highlight=False)
                with LiveProgress(console, sc.protocol.max_rounds) as live:
                    summary = asyncio.run(execute(sc, run_dir, listeners=[live], factory=factory))
    except KeyboardInterrupt:
        err_console.print(
            f"[yellow]interrupted.[/] Everything up to the last event is saved in {run_dir}. "
            f"Continue with: assembly resume {run_dir}"
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except UserError as exc:
        raise fail(exc) from None
    if quiet:
        one_line(
            f"{summary['outcome']} cause={summary['cause']} decision={summary['decision']} "
            f"rounds={summary['rounds']} -> {run_dir}"
        )
    else:
        print_summary(console, summary, str(run_dir))


@app.command()
def sweep(
    sweep_file: Annotated[Path, typer.Argument(help="Sweep YAML file (configs/sweeps/*.yaml).")],
    resume: Annotated[bool, typer.Option(help="Keep runs already complete; re-run the rest.")] = False,
    executor: Annotated[
        str | None, typer.Option(help="local | process | ray (default: process for sim-only sweeps, local otherwise).")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address ('auto' joins a running cluster); implies --executor ray.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Sweep folder (default: the file's `out`).")] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Runs in flight (default: the file's `concurrency`).")
    ] = None,
    max_cost: Annotated[
        float | None, typer.Option(min=0.0, help="Stop starting runs once the sweep has spent this many USD.")
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar or table; one line at the end.")
    ] = False,
    set_: SetOpt = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    client: ClientOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    models_file: ModelsFileOpt = None,
    cache: Annotated[
        Path | None, typer.Option(help="One response cache for all runs (default: each run's own folder).")
    ] = None,
    max_concurrent: MaxConcurrentOpt = None,
) -> None:
    """Run a grid of scenario variants x seeds: results.csv, summary.csv with 95% intervals, figures.

    --set applies to every run (it may not change a grid factor or the seeds); the
    model flags mean what they mean for `assembly run`."""
    import shlex

    from assembly.llm.serving import served
    from assembly.llm.setup import profiles_named
    from assembly.sweeps.display import SweepProgress, print_report, quiet_line
    from assembly.sweeps.executors import make_executor
    from assembly.sweeps.sweep import load_with_models, run_sweep

    try:
        flags = (model, api_base, client, api_key_env, models_file, cache)
        setup = model_setup(*flags, max_concurrent) if any(f is not None for f in flags) or max_concurrent else None
        extra = collect_overrides(None, None, None, None, set_)
        plan, llm = load_with_models(sweep_file, setup=setup, extra=extra)
        llm = None if plan.sim_only else capped(llm, max_concurrent)
        folder = out or plan.default_out()
        kind = executor or ("ray" if address else "process" if plan.sim_only else "local")
        runner = make_executor(kind, concurrency or plan.spec.concurrency, address)
    except UserError as exc:
        raise fail(exc) from None
    if not quiet:
        console.print(
            f"[bold]{_plain(plan.spec.name)}[/]: {len(plan.cells)} cells x {len(plan.spec.seed_list)} "
            f"seeds = {len(plan.runs)} runs, executor {kind} ({runner.concurrency} at a time) "
            f"-> {_plain(str(folder))}"
        )
    try:
        with served(llm, {n for r in plan.runs for n in profiles_named(r.scenario)}) as llm:
            if quiet:
                report = run_sweep(plan, folder, runner, resume=resume, max_cost=max_cost, llm=llm)
            else:
                with SweepProgress(console, plan.spec.name) as bar:
                    report = run_sweep(
                        plan, folder, runner, resume=resume, max_cost=max_cost, progress=bar, llm=llm, stage=bar.stage
                    )
    except KeyboardInterrupt as exc:
        args = [*sys.argv[1:], *([] if "--resume" in sys.argv else ["--resume"])]
        done = getattr(exc, "report", None)
        kept = f"{done.tally.done} of {done.tally.total} runs" if done else "Finished runs"
        err_console.print(
            f"[yellow]interrupted.[/] {kept} are complete and kept in {_plain(str(folder))}. "
            f"Resume with: {_plain(shlex.join(['assembly', *args]))}",
            highlight=False,
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except UserError as exc:
        raise fail(exc) from None
    if quiet:
        one_line(quiet_line(report))
    else:
        print_report(console, report)


app.command()(replay)


# Complexity 14: one command for rerun and fork, whose model flags apply only with --from-round.
@app.command()
def rerun(
    run_dir: RunArg,
    from_round: Annotated[
        int | None,
        typer.Option("--from-round", min=1, help="Fork: keep the rounds before this one, then continue live."),
    ] = None,
    set_: SetOpt = None,
    seed: SeedOpt = None,
    rounds: RoundsOpt = None,
    turn_timeout: TimeoutOpt = None,
    out: Annotated[Path | None, typer.Option(help="New run folder (default: next to the source).")] = None,
    quiet: QuietOpt = False,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    client: ClientOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    models_file: ModelsFileOpt = None,
    cache: CacheOpt = None,
    max_concurrent: MaxConcurrentOpt = None,
) -> None:
    """Re-execute a run exactly and compare transcripts, or fork it with --from-round and --set.

    A rerun answers LLM members from the source run's response cache and calls no
    model. A fork continues live; the model flags (e.g. --model) apply to it.
    --max-concurrent applies to both (it changes no answer, only how many requests
    are in flight)."""
    from assembly.core.transcript import TranscriptError, read_transcript
    from assembly.inspection.console import print_summary
    from assembly.inspection.reexecute import continuing_setup, fork
    from assembly.inspection.reexecute import rerun as rerun_run
    from assembly.llm import setup as llm_setup
    from assembly.llm.serving import served

    try:
        overrides = collect_overrides(seed, None, rounds, turn_timeout, set_)
        flags = (model, api_base, client, api_key_env, models_file, cache)
        if (overrides or any(f is not None for f in flags)) and from_round is None:
            raise UserError(
                "a rerun re-executes the run exactly; to change something (a setting or the "
                "model), fork it with --from-round R (R = 1 keeps nothing but the seating)"
            )
        factory = None
        setup = None
        serve: Any = contextlib.nullcontext()  # an exact rerun calls no model, so it starts no server
        if from_round is not None:
            setup = model_setup(model, api_base, client, api_key_env, models_file, cache, max_concurrent)
            try:
                recorded = read_transcript(run_dir).started.scenario
            except TranscriptError:
                recorded = {}  # fork() reports what is wrong with the run
            overrides = {**setup.scenario_overrides(recorded), **overrides}
            serve = served(setup, [setup.model] if setup.model else [], run_dir)
            if max_concurrent is not None:
                factory = capped_factory(continuing_setup(run_dir, setup), max_concurrent)
        elif max_concurrent is not None:
            factory = capped_factory(llm_setup.recorded(run_dir), max_concurrent)
        with serve as live_setup, _progress(quiet, run_dir, overrides) as live:
            listeners = [live] if live is not None else []
            if from_round is None:
                result = asyncio.run(rerun_run(run_dir, out, listeners=listeners, factory=factory))
            else:
                new_dir, summary = asyncio.run(
                    fork(run_dir, from_round, overrides, out, listeners=listeners, factory=factory, setup=live_setup)
                )
    except KeyboardInterrupt:
        err_console.print(
            "[yellow]interrupted.[/] The new run folder keeps what was written; `assembly resume` continues it."
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except UserError as exc:
        raise fail(exc) from None
    if from_round is not None:
        if not quiet:
            print_summary(console, summary, str(new_dir))
        console.print(
            f"forked {_plain(str(run_dir))} at round {from_round} -> {_plain(str(new_dir))}: "
            f"{summary['outcome']} ({summary['rounds']} rounds)",
            highlight=False,
            soft_wrap=True,  # one line, whatever the width (as -q promises)
        )
        return
    for note in result.notes:
        err_console.print(f"[yellow]note:[/] {_plain(note)}")
    cmp = result.comparison
    if not quiet:
        print_summary(console, result.summary, str(result.run_dir))
    if cmp.identical:
        aside = "timing" + "".join(f", {k}" for k in result.ignored)
        console.print(
            f"[green]identical[/]: the rerun reproduces all {cmp.source_events} events ({aside} "
            f"aside) -> {_plain(str(result.run_dir))}",
            soft_wrap=True,
        )
        return
    console.print(
        f"[bold red]differs[/]: {_plain(cmp.first_difference or '')} -> {_plain(str(result.run_dir))}", soft_wrap=True
    )
    raise typer.Exit(1)


@app.command()
def resume(run_dir: RunArg, quiet: QuietOpt = False) -> None:
    """Continue an interrupted or killed run in place from its last complete round."""
    from assembly.inspection.console import print_summary
    from assembly.inspection.reexecute import continuing_factory, resume_async
    from assembly.llm.serving import served

    try:
        # The run goes on with the profiles it recorded; local ones get a new embedded server.
        with served(None, [], run_dir) as setup, _progress(quiet, run_dir) as live:
            factory = continuing_factory(run_dir, setup) if setup is not None and setup.served else None
            listeners = [live] if live is not None else []
            result = asyncio.run(resume_async(run_dir, listeners=listeners, factory=factory))
    except KeyboardInterrupt:
        err_console.print(f"[yellow]interrupted again.[/] Continue with: assembly resume {run_dir}")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except UserError as exc:
        raise fail(exc) from None
    if not quiet:
        print_summary(console, result.summary, str(result.run_dir))
    dropped = f", set aside {result.dropped_events} events of the unfinished round" if result.dropped_events else ""
    torn = " and a torn last line" if result.torn else ""
    console.print(
        f"resumed from round {result.from_round}{dropped}{torn}: {result.summary['outcome']} "
        f"-> {_plain(str(result.run_dir))}",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def report(
    path: Annotated[Path, typer.Argument(help="Run folder or sweep folder.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="HTML file to write (default: report.html inside the folder).")
    ] = None,
) -> None:
    """Write one self-contained HTML page (no network needed) for a run or a sweep."""
    from assembly.inspection.report import write

    try:
        target = write(path, out or (path if path.is_dir() else path.parent) / "report.html")
    except UserError as exc:
        raise fail(exc) from None
    console.print(f"report -> {_plain(str(target))}", highlight=False)


@app.command()
def models(
    models_file: ModelsFileOpt = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    client: ClientOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check/--no-check",
            help="Check that each profile answers a structured request (default) or only list them.",
        ),
    ] = True,
    timeout: Annotated[
        float | None, typer.Option(min=0.1, help="Seconds allowed per check (default: the profile's timeout_s).")
    ] = None,
) -> None:
    """List the configured model profiles and check that each one works for runs.

    With --model, only that model is listed and checked. Each profile gets one real
    structured request with a run's own output schema, in its `structured_output`
    mode, else the other (the result says which works); one with an api_base is first
    asked GET /models. Keys are never printed, only whether set."""
    import os

    from rich.table import Table

    from assembly.llm.check import check_all
    from assembly.llm.serving import local_servers

    try:
        setup = model_setup(model, api_base, client, api_key_env, models_file, None)
    except UserError as exc:
        raise fail(exc) from None
    names = [setup.model] if setup.model is not None else sorted(setup.profiles)
    profiles = [setup.profiles[name] for name in names]
    if not profiles:
        raise fail(UserError(f"no model profiles ({setup.source}); pass --models FILE or --model"))
    with local_servers(profiles if check else []) as (checked, failed):
        results = {**failed, **{r.profile: r for r in asyncio.run(check_all(checked, timeout))}}
    table = Table(box=None, pad_edge=False)
    for col in ("profile", "model", "client", "api base", "key", "limits", *(("status",) if check else ())):
        table.add_column(col, overflow="fold")
    for p in profiles:
        key = (
            "none"
            if p.api_key_env is None
            else f"{p.api_key_env} ({'set' if os.environ.get(p.api_key_env) else 'NOT SET'})"
        )
        in_flight = "1 per seat" if p.name in setup.per_seat else str(p.max_concurrent)
        limits = f"{in_flight} in flight" + (f", {p.rpm:g}/min" if p.rpm else "")
        name = p.name + (" (--model)" if p.name == setup.model else "")
        where = f"embedded ({p.local.gguf})" if p.local else p.api_base or "-"
        row = [_plain(v) for v in (name, p.model, p.client, where, key, limits)]
        if check:
            r = results[p.name]
            row.append(f"[green]OK[/] {_plain(r.reason)}" if r.ok else f"[red]FAIL[/] {_plain(r.reason)}")
        table.add_row(*row)
    source = f"--model {setup.model}" if setup.model is not None else f"model profiles from {setup.source}"
    console.print(f"{_plain(source)}:", highlight=False)
    console.print(table)
    if check and not all(r.ok for r in results.values()):
        raise typer.Exit(1)


def _progress(quiet: bool, run_dir: Path, overrides: dict[str, Any] | None = None) -> Any:
    """A live display for a run continued from `run_dir` (a null context when quiet)."""
    from contextlib import nullcontext

    from assembly.core.transcript import TranscriptError, read_transcript
    from assembly.inspection.console import LiveProgress

    if quiet:
        return nullcontext()
    try:
        rounds = int(read_transcript(run_dir).started.scenario["protocol"]["max_rounds"])
    except (TranscriptError, KeyError, TypeError, ValueError):
        rounds = 0  # the command itself reports what is wrong with the run
    override = (overrides or {}).get("rounds", (overrides or {}).get("protocol.max_rounds"))
    return LiveProgress(console, int(override) if isinstance(override, int) else rounds)


def main() -> None:  # pragma: no cover - console-script shim
    sys.exit(app(prog_name="assembly"))


if __name__ == "__main__":  # `python -m assembly.cli`, used by the tests
    main()
