"""How a protocol's actions and figures are shown, declared once per protocol.

Replay, `replay --as`, the HTML report and the terminal lay out what every run has
(rounds, turns, liveness, tallies, disclosures, figures) and ask the run's protocol
for everything that depends on what its actions mean: each protocol package has a
`presentation.py` with a `Presentation` subclass, reached through the registry as
`protocol_class(kind).presentation`. So the inspection modules never name an action
kind, a phase or a protocol-specific figure.

Member text is untrusted. `describe` and `plenary` return rich markup with every
piece of member text passed through `safe`; `position`, `message` and `note` return
plain text that the caller escapes for its medium (HTML or the terminal).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.markup import escape

from assembly.core.neutralize import neutralize
from assembly.core.redaction import redact

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

Recorded = Mapping[str, Any]  # an action as a transcript records it (`Turn.action`)


def safe(text: Any) -> str:
    """Member text made inert for the terminal: no rich markup, no key, and no control,
    bidi or zero-width character or chat-template token that acts (`neutralize`)."""
    return escape(neutralize(redact(str(text))))


@dataclass(frozen=True)
class Figure:
    """A per-round figure as the terminal's rounds table shows it."""

    key: str  # the figure's name in `round_figures`
    header: str  # a short column header: the table must fit an 80-column terminal
    meaning: str | None = None  # its legend entry; None: the header says enough


@dataclass(frozen=True)
class Series:
    """A line of the report's convergence chart."""

    key: str  # the figure's name in `round_figures`
    label: str
    style: str  # matplotlib format string
    share: bool = True  # on the 0-1 share axis; False: on a right axis of its own


class Presentation:
    """The default presentation: every action as its JSON, no protocol figures.

    Subclasses override what their protocol has; everything here is optional."""

    # Title of the panel that shows a round's `framing` in replay.
    framing_title: ClassVar[str] = "framing"
    # Phases in which members state a position and a message: replay gives them the
    # wide column, and the report lists them as the round's contributions.
    contribution_phases: ClassVar[frozenset[str]] = frozenset()
    # Per-round figures in the terminal's rounds table, in order (liveness follows).
    terminal_figures: ClassVar[tuple[Figure, ...]] = ()
    # Lines of the report's convergence chart, in order (colours are assigned in it).
    chart_series: ClassVar[tuple[Series, ...]] = ()
    # The report's figures table: these first, in this order, then every other
    # protocol figure alphabetically, except the hidden ones.
    table_figures: ClassVar[tuple[str, ...]] = ()
    hidden_figures: ClassVar[frozenset[str]] = frozenset()
    # Figures shown as badges on each round of the report's timeline: (key, label).
    badges: ClassVar[tuple[tuple[str, str], ...]] = ()

    def describe(self, action: Recorded, rule: str | None = None) -> str:
        """One action as inert rich markup, for replay and `replay --as`.

        `rule`: the rule the round's tally applied (`Tally.rule`), if any, so that a
        ballot can show only what that rule reads."""
        return safe(json.dumps(dict(action), sort_keys=True))

    def position(self, action: Recorded) -> Any:
        """The position an action states (an option id, a value), or None."""
        return None

    def message(self, action: Recorded) -> str:
        """The text an action says to others, or ""."""
        return ""

    def note(self, action: Recorded) -> str:
        """A short plain-text note shown beside a non-member's (facilitator's) message."""
        return ""

    def plenary(self, record: Mapping[str, Any], framing: str) -> list[str]:
        """Lines (rich markup) showing a view's plenary record in `replay --as`.

        `framing` is shown already; a record that repeats it may be left out."""
        return [f"[bold]plenary[/] {safe(json.dumps(dict(record), sort_keys=True))}"] if record else []
