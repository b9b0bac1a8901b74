"""What an LLM member is told: a view rendered into a system and a user message.

Rendering is a pure function of the member's `View` (built in view.py, where
isolation is enforced) and the `Request`, so a prompt can only contain what the view
contains. Each protocol supplies its own renderer through `Protocol.prompt`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Prompt:
    system: str  # role, values and the member's own private facts
    user: str  # the current view: what it heard, and what it is asked for now
