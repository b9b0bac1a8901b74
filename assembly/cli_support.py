"""What every `assembly` command shares: the consoles, error exits, one-line output."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from assembly.core.errors import UserError
from assembly.core.neutralize import neutralize
from assembly.core.redaction import redact
from assembly.inspection.terminal import RedactingConsole

# Every byte printed is redacted (keys, URL credentials), whatever produced it.
console: Console = RedactingConsole()
err_console: Console = RedactingConsole(stderr=True)

EXIT_INTERRUPTED = 130

RunArg = Annotated[Path, typer.Argument(help="Run folder (or its transcript.jsonl).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No live display; one line at the end.")]


def fail(exc: UserError) -> typer.Exit:
    """Print a user error as one line on stderr; the exit to raise (2 for bad input, 1 for I/O)."""
    # Messages may quote user input or a provider: keys out, and nothing that acts on a terminal.
    message = neutralize(redact(str(exc)), tokens=False)
    err_console.print(f"[bold red]error:[/] {plain(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(exc.exit_code)


def clipped(text: str, limit: int = 300) -> str:
    """At most `limit` characters of text that may be arbitrarily long (user input, a file)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain(text: str) -> str:
    """Text shown as is: rich markup in it is escaped."""
    return escape(text)


def one_line(text: str) -> None:
    """Print `text` as exactly one line, whatever the terminal width and also when piped
    (rich would wrap it at the console width, 80 columns in a pipe)."""
    console.print(" ".join(text.split()), highlight=False, markup=False, soft_wrap=True)
