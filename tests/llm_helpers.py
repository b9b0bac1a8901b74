"""Test-only ways of driving the LLM layer, built on its public API.

`bind_call` lets an autogen agent, which cannot pass create args per call, use a
profile's settings and a cache salt; `call_text` asks for free text. The package
needs neither: members go through `structured.call_structured`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient, CreateResult, LLMMessage

from assembly.llm.profiles import ModelProfile
from assembly.llm.structured import CallResult, call_parsed, create_args_for
from assembly.llm.wrappers import Chunk, CreateCall, DelegatingClient


class BoundClient(DelegatingClient):
    """Adds fixed create args (temperature, max_tokens, salt) to every call."""

    def __init__(self, inner: ChatCompletionClient, create_args: Mapping[str, Any]) -> None:
        super().__init__(inner)
        self.create_args = dict(create_args)

    def _bound(self, call: CreateCall) -> CreateCall:
        return call.with_args({**self.create_args, **call.extra_create_args})

    async def on_create(self, call: CreateCall) -> CreateResult:
        return await self._bound(call).create(self.inner)

    def on_stream(self, call: CreateCall) -> AsyncGenerator[Chunk, None]:
        return self._bound(call).stream(self.inner)


def bind_call(
    client: ChatCompletionClient, *, profile: ModelProfile, kind: str, salt: str | None = None
) -> ChatCompletionClient:
    """A client that applies ``create_args_for(profile, kind, salt)`` to every call."""
    return BoundClient(client, create_args_for(profile, kind, salt))


async def call_text(
    client: ChatCompletionClient,
    messages: Sequence[LLMMessage],
    *,
    profile: ModelProfile,
    kind: str,
    salt: str = "",
    cancellation_token: CancellationToken | None = None,
    max_malformed_retries: int = 3,
) -> CallResult[str]:
    """Like `call_structured` for free text; only an empty answer counts as malformed."""
    return await call_parsed(
        client,
        messages,
        str.strip,
        None,
        profile=profile,
        kind=kind,
        salt=salt,
        cancellation_token=cancellation_token,
        max_malformed_retries=max_malformed_retries,
    )
