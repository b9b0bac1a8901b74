"""Provider answers with keys removed, before anything else sees them.

A provider (or a proxy in front of it) may echo the request's Authorization header
inside a normal 200 answer. The answer is redacted where it enters the tool, below
the response cache: the member, its prompts to others, the cache and the transcript
then all hold the same redacted text, so a rerun from the cache reproduces the run
exactly. The writers redact again at their own boundary (`core.redaction`); this
keeps the two consistent rather than being the only guard.
"""

from __future__ import annotations

import dataclasses

from autogen_core.models import CreateResult

from assembly.core.redaction import redact


def redacted_answer(result: CreateResult) -> CreateResult:
    """`result` with every key removed from its text, its reasoning and its tool-call arguments."""
    content = result.content
    if isinstance(content, str):
        clean: str | list[object] = redact(content)
    else:
        clean = [
            dataclasses.replace(call, arguments=redact(call.arguments))
            if dataclasses.is_dataclass(call) and isinstance(getattr(call, "arguments", None), str)
            else call
            for call in content
        ]
    thought = redact(result.thought) if result.thought is not None else None
    if clean == content and thought == result.thought:
        return result
    return result.model_copy(update={"content": clean, "thought": thought})


def redacted_chunk(item: str | CreateResult) -> str | CreateResult:
    """One item of a streamed answer, redacted (the final `CreateResult` whole)."""
    return redact(item) if isinstance(item, str) else redacted_answer(item)
