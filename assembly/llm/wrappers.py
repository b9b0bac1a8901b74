"""Client layering: model clients that add one behaviour each around an inner autogen `ChatCompletionClient`.

Every layer (the rate-limit gate here, the member's turn client, the test helpers)
is a `DelegatingClient`: autogen's seven-parameter `create`/`create_stream`
signature is written once, in `CallClient`, which hands each call down as one
`CreateCall` value, and a layer overrides `on_create`/`on_stream` to change what
reaches `inner`. Private create args (`assembly_*`, e.g. the cache salt) travel
with the call so the response cache above the gate can key on them; the gate
strips them before a provider sees them.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient, CreateResult, LLMMessage, ModelInfo, RequestUsage
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

from assembly.core.admission import current_clock
from assembly.llm.answers import redacted_answer, redacted_chunk
from assembly.llm.cancellation import await_linked
from assembly.llm.rate_limit import RateLimiter

#: Create arg that only salts the cache key (member/round/attempt); never sent to a provider.
SALT_ARG = "assembly_salt"
_PRIVATE_PREFIX = "assembly_"

Chunk = str | CreateResult


def public_args(extra_create_args: Mapping[str, Any]) -> dict[str, Any]:
    """The create args a provider may see (private `assembly_*` args removed)."""
    return {k: v for k, v in extra_create_args.items() if not k.startswith(_PRIVATE_PREFIX)}


@dataclass(frozen=True)
class CreateCall:
    """The arguments of one `create`/`create_stream` call, passed down the layers as one value."""

    messages: Sequence[LLMMessage]
    tools: Sequence[Tool | ToolSchema] = field(default_factory=list)
    tool_choice: Tool | Literal["auto", "required", "none"] = "auto"
    json_output: bool | type[BaseModel] | None = None
    extra_create_args: Mapping[str, Any] = field(default_factory=dict)
    cancellation_token: CancellationToken | None = None

    def with_args(self, extra_create_args: Mapping[str, Any]) -> CreateCall:
        # Built directly: `dataclasses.replace` inspects the fields on every call, and
        # every member turn makes one.
        return CreateCall(
            self.messages, self.tools, self.tool_choice, self.json_output, extra_create_args, self.cancellation_token
        )

    async def create(self, client: ChatCompletionClient) -> CreateResult:
        """Make this call on `client`."""
        return await client.create(
            self.messages,
            tools=self.tools,
            tool_choice=self.tool_choice,
            json_output=self.json_output,
            extra_create_args=self.extra_create_args,
            cancellation_token=self.cancellation_token,
        )

    def stream(self, client: ChatCompletionClient) -> AsyncGenerator[Chunk, None]:
        """Make this call on `client`, streaming."""
        return client.create_stream(
            self.messages,
            tools=self.tools,
            tool_choice=self.tool_choice,
            json_output=self.json_output,
            extra_create_args=self.extra_create_args,
            cancellation_token=self.cancellation_token,
        )


class CallClient(ChatCompletionClient):
    """A `ChatCompletionClient` whose `create`/`create_stream` receive one `CreateCall`."""

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        return await self.on_create(
            CreateCall(messages, tools, tool_choice, json_output, extra_create_args, cancellation_token)
        )

    def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[Chunk, None]:
        return self.on_stream(
            CreateCall(messages, tools, tool_choice, json_output, extra_create_args, cancellation_token)
        )

    @abstractmethod
    async def on_create(self, call: CreateCall) -> CreateResult: ...

    @abstractmethod
    def on_stream(self, call: CreateCall) -> AsyncGenerator[Chunk, None]: ...


class DelegatingClient(CallClient):
    """Base of every layer: passes calls, usage and model info through to ``inner``."""

    def __init__(self, inner: ChatCompletionClient) -> None:
        self.inner = inner

    async def on_create(self, call: CreateCall) -> CreateResult:
        return await call.create(self.inner)

    def on_stream(self, call: CreateCall) -> AsyncGenerator[Chunk, None]:
        return call.stream(self.inner)

    async def close(self) -> None:
        await self.inner.close()

    def actual_usage(self) -> RequestUsage:
        return self.inner.actual_usage()

    def total_usage(self) -> RequestUsage:
        return self.inner.total_usage()

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        return self.inner.count_tokens(messages, tools=tools)

    def remaining_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        return self.inner.remaining_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelInfo:  # type: ignore[override]
        return self.inner.model_info

    @property
    def model_info(self) -> ModelInfo:
        return self.inner.model_info


class GatedClient(DelegatingClient):
    """Rate limit, per-attempt deadline, private-arg stripping and key redaction of
    answers (`answers.redacted_answer`) around a provider client.

    The per-attempt deadline (the profile's ``timeout_s``) starts once the limiter
    admits the request, so waiting in the queue is never mistaken for a provider
    timeout. For the same reason, a request that has to wait for the limiter pauses
    the member's turn clock (`core.admission`) until it is admitted: the engine's
    deadline then covers the member, never the tool's queue.
    """

    def __init__(self, inner: ChatCompletionClient, limiter: RateLimiter, timeout_s: float | None) -> None:
        super().__init__(inner)
        self.limiter = limiter
        self.timeout_s = timeout_s

    async def on_create(self, call: CreateCall) -> CreateResult:
        public = call.with_args(public_args(call.extra_create_args))

        clock = current_clock()

        async def admitted() -> CreateResult:
            async with self.limiter.slot(clock.queued if clock else None):
                if clock is not None:
                    clock.admitted()
                async with asyncio.timeout(self.timeout_s):
                    return await public.create(self.inner)

        return redacted_answer(await await_linked(admitted(), call.cancellation_token))

    async def on_stream(self, call: CreateCall) -> AsyncGenerator[Chunk, None]:
        clock = current_clock()
        await await_linked(self.limiter.acquire(clock.queued if clock else None), call.cancellation_token)
        if clock is not None:
            clock.admitted()
        try:
            async for item in call.with_args(public_args(call.extra_create_args)).stream(self.inner):
                yield redacted_chunk(item)
        finally:
            self.limiter.release()
