"""How the consensus game is shown in replay, report and the terminal.

A proposal states a value and its public justification (its private strategy note
is shown in replay, marked private); a stop vote is one word. The figures shown are
the honest agents' spread of values and the stop votes.
"""

from __future__ import annotations

from typing import Any

from assembly.core.presentation import Figure, Presentation, Recorded, Series, safe
from assembly.protocols.consensus_game.state import PROPOSE


class ConsensusPresentation(Presentation):
    contribution_phases = frozenset({PROPOSE})
    terminal_figures = (
        Figure("honest_mean", "h.mean", "honest mean value"),
        Figure("honest_sd", "h.sd", "honest sd"),
        Figure("honest_modal_share", "h.modal", "honest share on the modal value"),
        Figure("stop_votes", "stops", "stop votes"),
    )
    chart_series = (
        Series("honest_modal_share", "honest agents' modal share", "-s"),
        Series("honest_sd", "sd of honest agents' values (right axis)", ":o", share=False),
    )

    def describe(self, action: Recorded, rule: str | None = None) -> str:
        kind = action.get("kind")
        if kind == "proposal":
            text = f"[bold]{safe(action.get('value', ''))}[/] {safe(action.get('justification', ''))}"
            if action.get("strategy"):
                text += f"\n[dim]private note: {safe(action['strategy'])}[/]"
            return text
        if kind == "stop_vote":
            return f"[bold]{safe(action.get('vote', ''))}[/]"
        return super().describe(action, rule)

    def position(self, action: Recorded) -> Any:
        return action.get("value") if action.get("kind") == "proposal" else None

    def message(self, action: Recorded) -> str:
        text = action.get("justification") if action.get("kind") == "proposal" else None
        return str(text) if text else ""
