"""What members are asked for, and what they answer.

Every member policy (sim, llm, scripted) returns one of these action types, so the
engine and the protocols never know which policy produced an answer. The same
pydantic classes double as the JSON schema sent to LLMs as `response_format`, which
is why field descriptions are written for a model to read.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

OptionId = str
FactId = str

# Member free text is data, never instructions; bounding it keeps a runaway model
# (or a hostile scripted member) from bloating transcripts and prompts.
MAX_TEXT = 2000


class Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
