"""The show of hands' one action: a hand, with a reason its audience hears."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from assembly.core.actions import Action


class Hand(Action):
    """Raise a hand (yes), keep it down (no), or abstain; say why in a few words."""

    public_fields: ClassVar[tuple[str, ...]] = ("hand", "reason")

    kind: Literal["hand"] = "hand"
    hand: Literal["yes", "no", "abstain"]
    reason: Annotated[str, Field(max_length=200, description="Why, in a few words.")]

    @classmethod
    def is_abstention(cls, recorded: Mapping[str, Any]) -> bool:
        return recorded.get("hand") == "abstain"
