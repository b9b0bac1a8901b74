"""The consensus game's actions: a proposed value, and a vote to stop or continue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from assembly.core.actions import MAX_TEXT, Action


class Proposal(Action):
    """Consensus game: a proposed integer value with a private note and a public justification."""

    # Broadcast to every agent; the strategy note stays with its author.
    public_fields: ClassVar[tuple[str, ...]] = ("value", "justification")

    kind: Literal["proposal"] = "proposal"
    strategy: Annotated[str, Field(max_length=MAX_TEXT, description="Private strategy note, never shown.")]
    value: Annotated[int, Field(description="The integer value you propose.")]
    justification: Annotated[str, Field(max_length=MAX_TEXT, description="Public justification.")]

    @classmethod
    def is_abstention(cls, recorded: Mapping[str, Any]) -> bool:
        # A Byzantine agent's output model also allows the value "abstain" (prompts.py).
        return recorded.get("value") == "abstain"


class StopVote(Action):
    """Consensus game: whether to stop now."""

    kind: Literal["stop_vote"] = "stop_vote"
    vote: Literal["stop", "continue", "abstain"]

    @classmethod
    def is_abstention(cls, recorded: Mapping[str, Any]) -> bool:
        return recorded.get("vote") == "abstain"
