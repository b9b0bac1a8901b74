"""Names shared by the show of hands' modules, and counting hands."""

from __future__ import annotations

from collections.abc import Iterable

from assembly.core.events import Turn

RAISE = "raise_hands"  # the round's one phase


def count_hands(turns: Iterable[Turn]) -> tuple[int, int, int]:
    """(yes, no, abstain-or-failed) among a round's hands."""
    yes = no = other = 0
    for t in turns:
        hand = (t.action or {}).get("hand") if t.status == "ok" else None
        if hand == "yes":
            yes += 1
        elif hand == "no":
            no += 1
        else:
            other += 1
    return yes, no, other
