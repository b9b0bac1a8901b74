"""The `assembly` command line.

Commands stay thin: each parses options, calls the module that owns the concept
(scenario, runner, ...), and turns `UserError`s into one clear message and exit 2.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from assembly.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Simulate citizen assemblies of LLM agents (offline `sim` members by default).")
console = Console()
err_console = Console(stderr=True)

EXIT_INTERRUPTED = 130


def fail(exc: UserError) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {_plain(str(exc))}", highlight=False)
    return typer.Exit(exc.exit_code)


def _plain(text: str) -> str:
    from rich.markup import escape

    return escape(text)


SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override any field: dotted.path=value "
                                                            "(repeatable), validated like the file.")]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed (overrides the scenario's).")]
MembersOpt = Annotated[int | None, typer.Option(help="Group size; seating scales the population.")]
RoundsOpt = Annotated[int | None, typer.Option(help="Maximum rounds (protocol.max_rounds).")]
TimeoutOpt = Annotated[float | None, typer.Option("--turn-timeout", help="Per-turn deadline in seconds.")]


def collect_overrides(seed: int | None, members: int | None, rounds: int | None, turn_timeout: float | None,
                      sets: list[str] | None) -> dict[str, Any]:
    from assembly.scenario import parse_override

    out: dict[str, Any] = {}
    for text in sets or []:
        key, value = parse_override(text)
        out[key] = value
    for key, value in (("seed", seed), ("members", members), ("rounds", rounds), ("turn_timeout", turn_timeout)):
        if value is not None:
            out[key] = value
    return out


@app.command()
def validate(scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
             set_: SetOpt = None, seed: SeedOpt = None, members: MembersOpt = None,
             rounds: RoundsOpt = None, turn_timeout: TimeoutOpt = None) -> None:
    """Check a scenario (and overrides) without running it."""
    from assembly.scenario import load_scenario, run_key

    try:
        sc = load_scenario(scenario, collect_overrides(seed, members, rounds, turn_timeout, set_))
    except UserError as exc:
        raise fail(exc) from None
    console.print(f"[green]ok[/] {_plain(str(scenario))}: {sc.name}, protocol {sc.protocol.kind}, "
                  f"{sc.population.size} members, {len(sc.options)} options, {len(sc.facts)} facts, "
                  f"seed {sc.seed}, run key {run_key(sc)}")


@app.command()
def run(scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
        seed: SeedOpt = None, members: MembersOpt = None, rounds: RoundsOpt = None,
        turn_timeout: TimeoutOpt = None, set_: SetOpt = None,
        out: Annotated[Path | None, typer.Option(help="Run folder (default runs/<run-id>).")] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live display; one line at the end.")] = False,
        ) -> None:
    """Run a scenario: seat an assembly, deliberate, decide (or record why not)."""
    from assembly.console import LiveProgress, print_summary
    from assembly.runner import execute, new_run_dir
    from assembly.scenario import load_scenario

    try:
        sc = load_scenario(scenario, collect_overrides(seed, members, rounds, turn_timeout, set_))
        run_dir = out or new_run_dir(Path("runs"), sc)
        if (run_dir / "transcript.jsonl").exists():
            raise UserError(f"{run_dir} already holds a run; pick another --out "
                            f"(or `assembly resume {run_dir}` to continue it)")
    except UserError as exc:
        raise fail(exc) from None
    try:
        if quiet:
            summary = asyncio.run(execute(sc, run_dir))
        else:
            console.print(f"[bold]{_plain(sc.name)}[/]: {_plain(sc.question)}")
            with LiveProgress(console, sc.protocol.max_rounds) as live:
                summary = asyncio.run(execute(sc, run_dir, listeners=[live]))
    except KeyboardInterrupt:
        err_console.print(f"[yellow]interrupted.[/] Everything up to the last event is saved in {run_dir}. "
                          f"Continue with: assembly resume {run_dir}")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except UserError as exc:
        raise fail(exc) from None
    if quiet:
        console.print(f"{summary['outcome']} cause={summary['cause']} decision={summary['decision']} "
                      f"rounds={summary['rounds']} -> {run_dir}", highlight=False, markup=False)
    else:
        print_summary(console, summary, str(run_dir))


def main() -> None:  # pragma: no cover - console-script shim
    sys.exit(app())


if __name__ == "__main__":  # `python -m assembly.cli`, used by the tests
    main()
