"""What an LLM member is told: a system and a user message, rendered from its view.

Every protocol renders its own prompts (`Protocol.prompt`) as a pure function of the
member's `View` and the `Request`, so a prompt can only contain what the view
contains. This module holds the one type they all return and the one rule for
quoting member-written text.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from assembly.core.neutralize import neutralize


@dataclass(frozen=True, slots=True)
class Prompt:
    system: str  # role, values and the member's own private facts
    user: str  # the current view: what it heard, and what it is asked for now


_SPACE = re.compile(r"\s+")


def clean(text: object, limit: int) -> str:
    """Member text made safe to quote: one line, clipped, no double quotes, inert.

    Quoted text is other people's words; flattening it to one clipped line keeps a
    member from forging prompt structure (headings, fake instructions) in its speech,
    and `neutralize` keeps chat-template tokens (`<|im_start|>`) and invisible
    characters in it from acting on the model that reads it. The same texts (a
    question, options, facts, a round's speeches) are cleaned for every member, so
    results are kept."""
    return _clean(str(text), limit)


@functools.lru_cache(maxsize=8192)
def _clean(text: str, limit: int) -> str:
    flat = neutralize(_SPACE.sub(" ", text).strip())
    if len(flat) > limit:
        flat = flat[:limit].rstrip() + "…"
    return flat.replace('"', "'")
