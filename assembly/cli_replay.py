"""`assembly replay`: walk through a run, see it as one member saw it, or check its figures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assembly.cli_support import EXIT_INTERRUPTED, RunArg, clipped, console, err_console, fail
from assembly.cli_support import plain as _plain
from assembly.core.errors import UserError
from assembly.core.presentation import safe


# Complexity 11: one command dispatching four views (--check, --follow, --as, walk-through) and paging.
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

    if sum([follow, as_ is not None, check]) > 1:
        raise fail(UserError("--follow, --as and --check are separate views; use one at a time"))
    try:
        if check:
            _check(run_dir)
            return
        if follow:
            try:
                for part in rp.follow(run_dir):
                    console.print(part)
            except KeyboardInterrupt:
                raise typer.Exit(EXIT_INTERRUPTED) from None
            return
        # The walk-through shows a damaged transcript, flagged; rebuilding views needs it whole.
        transcript = rp.open_transcript(run_dir, allow_damage=as_ is None)
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


def _check(run_dir: Path) -> None:
    """`replay --check`: recompute every figure; exit 1 listing those summary.json has otherwise."""
    from assembly.inspection import replay as rp

    result = rp.check(run_dir)
    if result.torn:
        err_console.print("[yellow]note:[/] the transcript ends in a torn line, which was ignored")
    if not result.verified:
        err_console.print(f"[yellow]note:[/] transcript {_plain(result.integrity)}")
    if result.ok:
        console.print(
            f"[green]ok[/] every figure in {_plain(str(result.run_dir / 'summary.json'))} "
            "is recomputed identically from the transcript"
            + (f" ({_plain(result.integrity)})" if result.verified else "")
        )
        return
    console.print(
        f"[bold red]mismatch:[/] {len(result.differences)} figures in summary.json differ "
        "from what the transcript gives:"
    )
    for line in result.differences:
        # Keys and values come from summary.json, which anyone may have edited.
        console.print(f"  {safe(clipped(line))}", highlight=False)
    raise typer.Exit(1)
