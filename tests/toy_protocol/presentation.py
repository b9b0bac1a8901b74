"""How hands read in replay, report and the terminal."""

from __future__ import annotations

from typing import Any

from assembly.core.presentation import Figure, Presentation, Recorded, Series, safe
from tests.toy_protocol.state import RAISE

_SHOWN = {"yes": "[green]✋ hand up[/]", "no": "[red]hand down[/]", "abstain": "[yellow]abstains[/]"}


class HandsPresentation(Presentation):
    contribution_phases = frozenset({RAISE})
    terminal_figures = (
        Figure("hands_up", "up", "share of hands up"),
        Figure("hands_counted", "hands", "hands shown"),
    )
    chart_series = (Series("hands_up", "share of all members with a hand up", "-o"),)
    table_figures = ("hands_up", "hands_counted")
    badges = (("hands_up", "hands up"),)

    def describe(self, action: Recorded, rule: str | None = None) -> str:
        if action.get("kind") != "hand":
            return super().describe(action, rule)
        shown = _SHOWN.get(str(action.get("hand")), safe(action.get("hand")))
        return f"{shown} {safe(action.get('reason', ''))}"

    def position(self, action: Recorded) -> Any:
        return action.get("hand")

    def message(self, action: Recorded) -> str:
        return str(action.get("reason") or "")
