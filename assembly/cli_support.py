"""What every `assembly` command shares: the consoles, error exits, one-line output."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from assembly.core.errors import UserError

console = Console()
err_console = Console(stderr=True)

EXIT_INTERRUPTED = 130

RunArg = Annotated[Path, typer.Argument(help="Run folder (or its transcript.jsonl).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No live display; one line at the end.")]


def fail(exc: UserError) -> typer.Exit:
    """Print a user error as one line on stderr; the exit to raise (2 for bad input)."""
    err_console.print(f"[bold red]error:[/] {plain(str(exc))}", highlight=False, soft_wrap=True)
    return typer.Exit(exc.exit_code)


def plain(text: str) -> str:
    """Text shown as is: rich markup in it is escaped."""
    return escape(text)


def one_line(text: str) -> None:
    """Print `text` as exactly one line, whatever the terminal width and also when piped
    (rich would wrap it at the console width, 80 columns in a pipe)."""
    console.print(" ".join(text.split()), highlight=False, markup=False, soft_wrap=True)
