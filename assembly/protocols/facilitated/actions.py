"""The facilitated assembly's actions: speeches, the facilitator's synthesis, ballots.

The same pydantic classes are the JSON schema an LLM member answers with, which is
why field descriptions are written for a model to read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from assembly.core.actions import MAX_TEXT, Action, FactId, OptionId


class Speech(Action):
    """A member's contribution to a deliberation round."""

    # Heard by the speaker's audience; what it discloses is published as `Disclosure`s.
    public_fields: ClassVar[tuple[str, ...]] = ("message", "position", "scores")
    scores_field: ClassVar[str | None] = "scores"

    kind: Literal["speech"] = "speech"
    message: Annotated[str, Field(max_length=MAX_TEXT, description="What you say to the assembly.")]
    position: Annotated[OptionId, Field(description="The option id you currently favour most.")]
    scores: Annotated[
        dict[OptionId, Annotated[float, Field(ge=0.0, le=1.0)]],
        Field(description="Your support for every option, from 0 (oppose) to 1 (fully support)."),
    ]
    disclose: Annotated[
        list[FactId],
        Field(default_factory=list, description="Ids of your private facts you choose to share now."),
    ]


class Candidate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    option: OptionId
    statement: Annotated[str, Field(max_length=MAX_TEXT)]


class Synthesis(Action):
    """The facilitator's synthesis: candidate recommendations and a running summary."""

    # The facilitator speaks in plenary; its summary frames the next round.
    public_fields: ClassVar[tuple[str, ...]] = ("summary", "candidates")
    plenary: ClassVar[bool] = True
    framing_field: ClassVar[str | None] = "summary"

    kind: Literal["synthesis"] = "synthesis"
    candidates: Annotated[
        list[Candidate],
        Field(min_length=1, description="Candidate recommendations for the assembly to vote on."),
    ]
    summary: Annotated[
        str,
        Field(max_length=MAX_TEXT, description="A short neutral summary of the deliberation so far."),
    ]


class Ballot(Action):
    """A vote on the current candidates.

    One type serves every decision rule: plurality-style rules read `choice`,
    approval reads `approve`, ranked rules (schulze, borda, veto_by_consumption) read
    `ranking`, and maximin_score reads `scores`. A member that wants to abstain sets
    `abstain` (abstentions are counted, never inferred).

    `scores` is left out of the serialized ballot when empty: only the rule that reads
    it asks for it, and ballots cast under every other rule keep their recorded shape.
    """

    kind: Literal["ballot"] = "ballot"
    choice: OptionId | None = Field(default=None, description="The one candidate option you vote for.")
    approve: list[OptionId] = Field(default_factory=list, description="Every candidate option you approve.")
    ranking: list[OptionId] = Field(default_factory=list, description="Candidate options from most to least preferred.")
    scores: dict[OptionId, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=dict, description="Your support for each candidate, from 0 (oppose) to 1 (fully support)."
    )
    abstain: bool = Field(default=False, description="True to abstain from this vote.")

    @model_serializer(mode="wrap")
    def _without_empty_scores(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        if not out.get("scores"):
            out.pop("scores", None)
        return out

    # A secret ballot: no public fields.

    @classmethod
    def is_abstention(cls, recorded: Mapping[str, Any]) -> bool:
        return recorded.get("abstain") is True


# The newest synthesis reaches every view as its `plenary` record (its public fields).


def summary_of(plenary: Mapping[str, Any]) -> str:
    """The facilitator's newest summary in a view's plenary record ("" before any)."""
    return str(plenary.get("summary", ""))


def candidates_of(plenary: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    """The facilitator's newest candidates in a view's plenary record, as recorded."""
    return tuple(plenary.get("candidates", ()))
