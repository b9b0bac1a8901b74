"""The run report's "who won, who lost" section, from the summary's `welfare` section.

Per role: its mean normalised utility and its regret under the run's decision and
under each single-utility baseline on the same seated population (see
`assembly.core.run_welfare` for the definitions), then the whole-assembly figures of
each way of choosing, and, where members stated support scores, the representation
fidelity of each role over rounds. Pure HTML (inline bars, no script), so it obeys
the report's Content-Security-Policy; every name is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

__all__ = ["who_won"]

# Column titles: what each way of choosing stands for.
CHOOSERS = {
    "assembly": "this assembly's decision",
    "utilitarian": "utilitarian (argmax mean utility)",
    "borda": "Borda (one reward model on pooled preferences)",
    "maximin": "maximin over roles (MaxMin-RLHF)",
    "plurality_round1": "round-1 plurality (pre-deliberation feedback)",
}
SCALARS = (
    ("utilitarian", "mean utility"),
    ("nash", "Nash welfare"),
    ("egalitarian", "worst-off member"),
    ("worst_role", "worst-off role"),
    ("condorcet_winner", "Condorcet winner"),
    ("in_veto_core", "in the veto core"),
)


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _num(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{float(v):.3f}"


def _bar(u: float) -> str:
    """A cell's utility as a bar (green share of the width) with the number beside it."""
    pct = max(0.0, min(1.0, float(u))) * 100
    return (
        '<span style="display:inline-block;width:64px;height:9px;background:#eef1f5;margin-right:6px;'
        f'vertical-align:middle"><span style="display:block;height:9px;width:{pct:.1f}%;background:#2da44e">'
        "</span></span>"
    )


def _role_cell(scored: Mapping[str, Any], role: str) -> str:
    utility = (scored.get("utility_by_role") or {}).get(role)
    regret = (scored.get("regret_by_role") or {}).get(role)
    if utility is None:
        return '<td class="num">–</td>'
    return f'<td class="num">{_bar(utility)}{_num(utility)} <span class="meta">regret {_num(regret)}</span></td>'


def _fidelity(fidelity: Mapping[str, Any]) -> str:
    if not fidelity:
        return ""
    rounds = sorted({row["round"] for table in fidelity.values() for row in table["by_round"]})
    head = "".join(f'<th class="num">round {r}</th>' for r in rounds)
    body = []
    for role, table in fidelity.items():
        by = {row["round"]: row for row in table["by_round"]}
        cells = "".join(f'<td class="num">{_num(by[r]["mean"]) if r in by else "–"}</td>' for r in rounds)
        body.append(f'<tr><td class="who">{_e(role)}</td>{cells}<td class="num">{_num(table["drift"])}</td></tr>')
    return (
        "<h3>Representation fidelity</h3>"
        '<p class="note">Mean Spearman correlation, per role and round, between the support members stated '
        "and their assigned full-information utilities (1: they play the values they were given); drift is "
        "the last round's value minus the first's.</p>"
        f'<div class="scroll"><table id="fidelity-table"><thead><tr><th>role</th>{head}'
        f'<th class="num">drift</th></tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    )


def who_won(summary: Mapping[str, Any]) -> str:
    """The section's HTML, or "" for a run without a welfare section."""
    welfare = summary.get("welfare")
    if not isinstance(welfare, Mapping):
        return ""
    outcomes: Mapping[str, Mapping[str, Any]] = welfare.get("outcomes", {})
    names = [n for n in CHOOSERS if n in outcomes]
    head = "".join(
        f'<th class="num">{_e(CHOOSERS[n])}<br><span class="pos">{_e(outcomes[n].get("option") or "no decision")}'
        "</span></th>"
        for n in names
    )
    role_rows = "".join(
        f'<tr><td class="who">{_e(role)} <span class="meta">({count})</span></td>'
        + "".join(_role_cell(outcomes[n], role) for n in names)
        + "</tr>"
        for role, count in welfare.get("roles", {}).items()
    )
    scalar_rows = "".join(
        f"<tr><td>{_e(label)}</td>"
        + "".join(f'<td class="num">{_num(outcomes[n].get(key))}</td>' for n in names)
        + "</tr>"
        for key, label in SCALARS
    )
    info = welfare.get("information") or {}
    known = info.get("mean_known_share")
    pooled = (
        f"Members knew {_num(known)} of the {info.get('facts')} facts with an effect on average; "
        if known is not None
        else ""
    )
    note = (
        "Utilities are each member's valuation under full information, range-normalised per member "
        "(best option 1, worst 0); a role's utility is its members' mean, its regret the mean shortfall "
        f"from each member's best option. {pooled}for {_num(info.get('informed_best_share'))} of members, the "
        "best option on what they knew was their full-information best."
    )
    return (
        '<section id="welfare"><h2>Who won, who lost</h2>'
        f'<p class="note">{_e(note)}</p>'
        f'<div class="scroll"><table id="welfare-table"><thead><tr><th>role</th>{head}</tr></thead>'
        f"<tbody>{role_rows}{scalar_rows}</tbody></table></div>"
        f"{_fidelity(welfare.get('fidelity') or {})}</section>"
    )
