"""The terminal the CLI prints to: a rich Console that redacts every write.

Kept apart from `console` (the run displays) so that the CLI can build its consoles
at import time without importing the protocols.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.segment import Segment

from assembly.core.redaction import redact


class RedactingConsole(Console):
    """A rich Console whose every write is `redact`ed, whatever was printed.

    Rich turns each print, each live refresh and the pager's content into text in
    `_render_buffer`, so this is the one point all terminal output passes. Member
    text (`console.safe`) and error messages are redacted earlier too, before rich
    can wrap a long key across two lines."""

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return redact(super()._render_buffer(buffer))
