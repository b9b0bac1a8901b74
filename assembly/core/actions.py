"""What members are asked for, and what they answer.

Every member policy (sim, llm, scripted) returns one of these action types, so the
engine and the protocols never know which policy produced an answer. The same
pydantic classes double as the JSON schema sent to LLMs as `response_format`, which
is why field descriptions are written for a model to read.

An action class also declares its audience (class-level, never a field, so nothing
a run writes depends on it): which fields its audience hears, whether it is heard
in plenary, and what counts as an explicit abstention. Views and metrics ask these
declarations, so the core never names an action kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

OptionId = str
FactId = str

# Member free text is data, never instructions; bounding it keeps a runaway model
# (or a hostile scripted member) from bloating transcripts and prompts.
MAX_TEXT = 2000


class Action(BaseModel):
    """The base of every action. Subclasses add a `kind: Literal[...]` field (the tag
    recorded in `Turn.action`) and declare their audience below."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The fields its audience hears, in this order. Empty: private, heard by nobody
    # else (a secret ballot, a stop vote).
    public_fields: ClassVar[tuple[str, ...]] = ()
    # Heard by everyone regardless of topology (a facilitator's synthesis). Its public
    # fields become every view's `plenary` record until the next plenary action.
    plenary: ClassVar[bool] = False
    # For a plenary action: the public field whose text opens the next round (recorded
    # as that round's `framing`).
    framing_field: ClassVar[str | None] = None
    # A public field holding support per option ({option id: 0..1}). Views stack the
    # newest round's into one `HeardMatrix` per audience, shared by its members.
    scores_field: ClassVar[str | None] = None

    @classmethod
    def kind_name(cls) -> str:
        """The tag this class records as `kind`."""
        field = cls.model_fields.get("kind")
        if field is None or not isinstance(field.default, str):
            raise TypeError(f"{cls.__name__} declares no `kind` literal with a default")
        return field.default

    @classmethod
    def is_abstention(cls, recorded: Mapping[str, Any]) -> bool:
        """Whether a recorded action of this kind (a `Turn.action`) explicitly abstains.

        Counted as an abstention in the liveness figures, like a failed turn."""
        return False


def by_kind(actions: Iterable[type[Action]]) -> dict[str, type[Action]]:
    """Action classes by the `kind` they record."""
    return {a.kind_name(): a for a in actions}
