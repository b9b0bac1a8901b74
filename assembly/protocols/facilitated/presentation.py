"""How the facilitated assembly is shown in replay, report and the terminal.

Speeches state a position and a message, the facilitator's synthesis a summary and
candidates, and a ballot shows only the field its decision rule reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assembly.core.presentation import Figure, Presentation, Recorded, Series, safe
from assembly.protocols.facilitated.actions import candidates_of, summary_of
from assembly.protocols.facilitated.rules import BALLOT_FIELD


class AssemblyPresentation(Presentation):
    framing_title = "facilitator's framing"
    contribution_phases = frozenset({"speak"})
    terminal_figures = (
        Figure("speakers", "spoke"),
        Figure("dispersion", "disp", "dispersion of support"),
        Figure("modal_share", "modal", "share on the modal position"),
        Figure("idea_similarity", "idea", "TF-IDF similarity of messages"),
        Figure("disclosures", "discl", "facts disclosed"),
        Figure("ballots_counted", "votes", "ballots counted"),
        Figure("quorum_met", "quorum"),
        Figure("support", "supp", "leading support"),
    )
    chart_series = (
        Series("dispersion", "dispersion of support scores", "-o"),
        Series("modal_share", "share holding the modal position", "-s"),
        Series("support", "leading candidate's support", "-^"),
        Series("idea_similarity", "idea similarity of messages (TF-IDF cosine)", "--D"),
    )
    table_figures = (
        "dispersion",
        "modal_share",
        "support",
        "leading",
        "quorum_met",
        "idea_similarity",
        "disclosures",
        "speakers",
        "ballots_counted",
    )
    hidden_figures = frozenset({"voted"})  # said by `ballots_counted` and the timeline's tally
    badges = (("dispersion", "dispersion"), ("idea_similarity", "idea similarity"))

    def describe(self, action: Recorded, rule: str | None = None) -> str:
        kind = action.get("kind")
        if kind == "speech":
            return f"[bold]{safe(action.get('position', ''))}[/] {safe(action.get('message', ''))}"
        if kind == "ballot":
            return _ballot(action, rule)
        if kind == "synthesis":
            lines = [safe(action.get("summary", ""))]
            lines += [
                f"  • [bold]{safe(c.get('option', ''))}[/]: {safe(c.get('statement', ''))}"
                for c in action.get("candidates", ())
                if isinstance(c, dict)
            ]
            return "\n".join(lines)
        return super().describe(action, rule)

    def position(self, action: Recorded) -> Any:
        field = {"speech": "position", "ballot": "choice"}.get(str(action.get("kind")))
        return action.get(field) if field else None

    def message(self, action: Recorded) -> str:
        field = {"speech": "message", "synthesis": "summary"}.get(str(action.get("kind")))
        return str(action[field]) if field and action.get(field) else ""

    def note(self, action: Recorded) -> str:
        cands = ", ".join(str(c.get("option")) for c in action.get("candidates", ()) if isinstance(c, dict))
        return f"candidates: {cands}" if cands else ""

    def plenary(self, record: Mapping[str, Any], framing: str) -> list[str]:
        lines = []
        summary = summary_of(record)
        if summary and summary != framing:  # the framing is the summary as the round opened
            lines.append(f"[bold]facilitator summary[/] {safe(summary)}")
        candidates = candidates_of(record)
        if candidates:
            lines.append(
                "[bold]candidates[/] "
                + "; ".join(f"{safe(c.get('option'))}: {safe(c.get('statement', ''))}" for c in candidates)
            )
        return lines


def _ballot(action: Recorded, rule: str | None) -> str:
    """A ballot, showing only the field its decision rule reads (all of them without a rule)."""
    if action.get("abstain"):
        return "[yellow]abstains[/]"
    reads = BALLOT_FIELD.get(rule or "")
    parts = []
    if action.get("choice") is not None and reads in (None, "choice"):
        parts.append(f"[bold]{safe(action['choice'])}[/]")
    if action.get("approve") and reads in (None, "approve"):
        parts.append("approves " + ", ".join(safe(a) for a in action["approve"]))
    if action.get("ranking") and reads in (None, "ranking"):
        parts.append("ranks " + " > ".join(safe(a) for a in action["ranking"]))
    if action.get("scores") and reads in (None, "scores"):
        parts.append("supports " + ", ".join(f"{safe(o)} {float(v):.2f}" for o, v in action["scores"].items()))
    return " · ".join(parts) or "[yellow]empty ballot[/]"
