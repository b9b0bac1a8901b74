"""Model access: the only module that talks to autogen-ext model clients and litellm.

Everything above this module sees an autogen ``ChatCompletionClient``; if AutoGen
or litellm is ever replaced, this file is the swap point.

Layers built by :func:`make_client` (outermost first)::

    ChatCompletionCache (optional, on disk)   -- replay without HTTP
      _GatedClient                            -- process-wide rate limit, per-attempt deadline,
                                                 strips assembly_* create args
        OpenAIChatCompletionClient | LiteLLMChatCompletionClient

The cache sits outside the gate so that replayed calls do not consume rate-limit
budget. Private create args (``assembly_salt``) are visible to the cache key but
removed before the provider sees them.

:func:`call_structured` is the call wrapper the LLM member uses: it retries
provider errors with backoff (honouring ``Retry-After``), re-asks on malformed
output, and returns one :class:`AttemptRecord` per HTTP attempt so runs can
report liveness, cost and fault handling honestly.

litellm is imported lazily (first use) because importing it takes seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import email.utils
import functools
import hashlib
import json
import os
import random
import re
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from autogen_core import CancellationToken
from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    CreateResult,
    FinishReasons,
    FunctionExecutionResultMessage,
    LLMMessage,
    ModelFamily,
    ModelInfo,
    RequestUsage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel, ValidationError

from assembly.core.member import TURN_CLOCK
from assembly.llm.profiles import ModelProfile

__all__ = [
    "SALT_ARG",
    "AttemptRecord",
    "CallResult",
    "LiteLLMChatCompletionClient",
    "ModelCallError",
    "RateLimiter",
    "bind_call",
    "call_structured",
    "call_text",
    "classify_error",
    "cost_usd",
    "create_args_for",
    "limiter_for",
    "make_client",
    "register_secret",
    "response_format_for",
    "scrub",
    "strict_json_schema",
]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: Create arg that only salts the cache key (member/round/attempt); never sent to a provider.
SALT_ARG = "assembly_salt"
_PRIVATE_PREFIX = "assembly_"

Outcome = Literal["ok", "malformed", "provider_error", "cancelled"]

_DEFAULT_MODEL_INFO: ModelInfo = {
    "vision": False,
    "function_calling": False,
    "json_output": True,
    "structured_output": True,
    "family": ModelFamily.UNKNOWN,
    # Members interleave system instructions with transcript turns.
    "multiple_system_messages": True,
}


# --------------------------------------------------------------------------- secrets


_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()
# Shapes of provider keys, scrubbed even if they were never registered (e.g. a key
# litellm picked up from a provider's default env var).
_KEY_SHAPES = re.compile(r"\b(?:sk|gsk|xai|hf|pk)[-_][A-Za-z0-9_\-]{8,}|AIza[A-Za-z0-9_\-]{20,}")
_BEARER = re.compile(r"(Bearer\s+)\S+", re.IGNORECASE)


def register_secret(value: str | None) -> None:
    """Remember a key value so that :func:`scrub` removes it from any text we store."""
    if value and len(value) >= 6:
        with _SECRETS_LOCK:
            _SECRETS.add(value)


def _register_profile_secret(profile: ModelProfile) -> None:
    if profile.api_key_env:
        register_secret(os.environ.get(profile.api_key_env))


def scrub(text: str, limit: int = 300) -> str:
    """Text safe to log: registered keys and key-shaped tokens removed, truncated."""
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, "[REDACTED]")
    text = _KEY_SHAPES.sub("[REDACTED]", text)
    text = _BEARER.sub(r"\1[REDACTED]", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- litellm


def _import_litellm() -> Any:
    # The bundled price map avoids a network fetch at import time (no egress in CI,
    # and runs must not depend on a remote file changing under them).
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in the form OpenAI strict mode accepts.

    Strict mode wants every object closed (``additionalProperties: false``) with all
    properties listed as required; optional fields stay expressible as nullable.
    """
    schema = copy.deepcopy(model.model_json_schema())

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])
            if "default" in node and node["default"] is None:
                del node["default"]
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(schema)
    return schema


def structured_format(model: type[BaseModel], mode: Literal["json_schema", "json_object"]) -> dict[str, Any]:
    """The ``response_format`` that asks for ``model`` in a profile's ``structured_output`` mode.

    ``json_schema`` is OpenAI's strict form, which vLLM and llama.cpp enforce by grammar;
    ``json_object`` carries the same schema in the form llama-cpp-python (and llama.cpp)
    also enforce, for servers that reject the former."""
    if mode == "json_object":
        return {"type": "json_object", "schema": strict_json_schema(model)}
    return response_format_for(model) or {}


def response_format_for(json_output: bool | type[BaseModel] | None) -> dict[str, Any] | None:
    """OpenAI ``response_format`` for autogen's ``json_output`` argument."""
    if json_output is None or json_output is False:
        return None
    if json_output is True:
        return {"type": "json_object"}
    if isinstance(json_output, type) and issubclass(json_output, BaseModel):
        # A fresh copy per call: providers' SDKs may edit the schema in place.
        return copy.deepcopy(_json_schema_format(json_output))
    raise TypeError(f"json_output must be a bool or a pydantic model class, got {json_output!r}")


@functools.lru_cache(maxsize=1024)
def _json_schema_format(model: type[BaseModel]) -> dict[str, Any]:
    # Generating a JSON schema costs milliseconds; members ask for the same few
    # output types hundreds of times per round.
    return {
        "type": "json_schema",
        "json_schema": {"name": model.__name__, "schema": strict_json_schema(model), "strict": True},
    }


def _to_openai_messages(messages: Sequence[LLMMessage]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            out.append({"role": "system", "content": message.content})
        elif isinstance(message, UserMessage):
            if isinstance(message.content, str):
                out.append({"role": "user", "content": message.content})
            else:
                parts: list[dict[str, Any]] = []
                for part in message.content:
                    if isinstance(part, str):
                        parts.append({"type": "text", "text": part})
                    else:
                        parts.append(part.to_openai_format())
                out.append({"role": "user", "content": parts})
        elif isinstance(message, AssistantMessage):
            if not isinstance(message.content, str):
                raise ValueError("LiteLLMChatCompletionClient does not support tool calls")
            out.append({"role": "assistant", "content": message.content})
        elif isinstance(message, FunctionExecutionResultMessage):
            raise ValueError("LiteLLMChatCompletionClient does not support tool results")
        else:  # pragma: no cover - LLMMessage is a closed union
            raise TypeError(f"unsupported message type {type(message).__name__}")
    return out


_FINISH_REASONS: dict[str, FinishReasons] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "function_calls",
    "function_call": "function_calls",
}


def _finish_reason(value: Any) -> FinishReasons:
    return _FINISH_REASONS.get(str(value), "unknown") if value is not None else "unknown"


def _public_args(extra_create_args: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in extra_create_args.items() if not k.startswith(_PRIVATE_PREFIX)}


async def _await_linked(awaitable: Awaitable[T], token: CancellationToken | None) -> T:
    """Await under a CancellationToken: cancelling the token cancels the awaited work
    (and with it any HTTP request in flight)."""
    if token is None:
        return await awaitable
    task = asyncio.ensure_future(awaitable)
    token.link_future(task)
    return await task


class LiteLLMChatCompletionClient(ChatCompletionClient):
    """autogen ``ChatCompletionClient`` over ``litellm.acompletion``.

    Retries are disabled inside litellm (``num_retries=0``, ``max_retries=0``) so each
    provider error reaches :func:`call_structured`, which records and retries it.
    litellm's own response caching is never enabled (it crashes on the first hit in
    1.106.2); caching is done by autogen's ``ChatCompletionCache`` around this client.
    Tools are not supported: members only need text and structured output.
    """

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        model_info: ModelInfo | None = None,
        context_window: int | None = None,
        default_create_args: Mapping[str, Any] | None = None,
    ) -> None:
        self._model = model
        self._api_base = api_base
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._model_info: ModelInfo = dict(model_info or _DEFAULT_MODEL_INFO)  # type: ignore[assignment]
        self._context_window = context_window
        self._default_args = dict(default_create_args or {})
        self._total_usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._actual_usage = RequestUsage(prompt_tokens=0, completion_tokens=0)

    def _request(
        self,
        messages: Sequence[LLMMessage],
        tools: Sequence[Tool | ToolSchema],
        json_output: bool | type[BaseModel] | None,
        extra_create_args: Mapping[str, Any],
    ) -> dict[str, Any]:
        if tools:
            raise ValueError("LiteLLMChatCompletionClient does not support tools; use client: openai")
        kwargs: dict[str, Any] = {**self._default_args, **_public_args(extra_create_args)}
        fmt = response_format_for(json_output)
        if fmt is not None:
            if "response_format" in kwargs:
                raise ValueError("json_output and extra_create_args['response_format'] are both set")
            kwargs["response_format"] = fmt
        kwargs.update(
            model=self._model,
            messages=_to_openai_messages(messages),
            timeout=self._timeout_s,
            num_retries=0,
            max_retries=0,
        )
        if self._api_base is not None:
            kwargs["api_base"] = self._api_base
        if self._api_key is not None:
            kwargs["api_key"] = self._api_key
        return kwargs

    def _add_usage(self, usage: RequestUsage) -> None:
        for total in (self._total_usage, self._actual_usage):
            total.prompt_tokens += usage.prompt_tokens
            total.completion_tokens += usage.completion_tokens

    @staticmethod
    def _usage_of(obj: Any) -> RequestUsage | None:
        usage = getattr(obj, "usage", None)
        if usage is None:
            return None
        return RequestUsage(
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        )

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
        litellm = _import_litellm()
        kwargs = self._request(messages, tools, json_output, extra_create_args)
        response = await _await_linked(litellm.acompletion(**kwargs), cancellation_token)
        choice = response.choices[0]
        usage = self._usage_of(response) or RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._add_usage(usage)
        return CreateResult(
            finish_reason=_finish_reason(choice.finish_reason),
            content=choice.message.content or "",
            usage=usage,
            cached=False,
            thought=getattr(choice.message, "reasoning_content", None) or None,
        )

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        litellm = _import_litellm()
        kwargs = self._request(messages, tools, json_output, extra_create_args)
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        stream = await _await_linked(litellm.acompletion(**kwargs), cancellation_token)
        iterator = stream.__aiter__()
        parts: list[str] = []
        thoughts: list[str] = []
        usage: RequestUsage | None = None
        finish: Any = None
        try:
            while True:
                try:
                    chunk = await _await_linked(iterator.__anext__(), cancellation_token)
                except StopAsyncIteration:
                    break
                usage = self._usage_of(chunk) or usage
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                finish = choice.finish_reason or finish
                reasoning = getattr(choice.delta, "reasoning_content", None)
                if reasoning:
                    thoughts.append(reasoning)
                text = choice.delta.content
                if text:
                    parts.append(text)
                    yield text
        finally:
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
        final_usage = usage or RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._add_usage(final_usage)
        yield CreateResult(
            finish_reason=_finish_reason(finish),
            content="".join(parts),
            usage=final_usage,
            cached=False,
            thought="".join(thoughts) or None,
        )

    async def close(self) -> None:
        # litellm owns and reuses its HTTP clients; nothing of ours to release.
        return None

    def actual_usage(self) -> RequestUsage:
        return RequestUsage(self._actual_usage.prompt_tokens, self._actual_usage.completion_tokens)

    def total_usage(self) -> RequestUsage:
        return RequestUsage(self._total_usage.prompt_tokens, self._total_usage.completion_tokens)

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        oai = _to_openai_messages(messages)
        try:
            return int(_import_litellm().token_counter(model=self._model, messages=oai))
        except Exception:
            # Unknown tokenizer: the usual ~4 characters per token estimate.
            return sum(len(json.dumps(m.get("content"))) for m in oai) // 4 + 4 * len(oai)

    def remaining_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        window = self._context_window
        if window is None:
            try:
                info = _import_litellm().get_model_info(self._model)
                window = int(info.get("max_input_tokens") or info.get("max_tokens") or 0) or None
            except Exception:
                window = None
        return (window or 32_768) - self.count_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelInfo:  # type: ignore[override]
        return self._model_info

    @property
    def model_info(self) -> ModelInfo:
        return self._model_info


# --------------------------------------------------------------------------- rate limiting


@dataclass(eq=False)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    granted: bool = False


def _wake(waiter: _Waiter) -> None:
    if not waiter.future.done():
        waiter.future.set_result(None)


class RateLimiter:
    """At most ``max_concurrent`` requests in flight and ``rpm`` starts per ``window_s``.

    Shared by every run in the process, including runs on different event loops or
    threads (a sweep may run several), so it is built on a ``threading.Lock`` and
    hands slots to waiters with ``call_soon_threadsafe`` instead of using
    loop-bound ``asyncio.Semaphore``s. Waiters are served first come, first served.
    """

    def __init__(self, max_concurrent: int, rpm: float | None = None, *, window_s: float = 60.0) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be >= 1")
        self.max_concurrent = max_concurrent
        self.rpm = rpm
        self.window_s = window_s
        self._lock = threading.Lock()
        self._in_flight = 0
        self._waiters: deque[_Waiter] = deque()
        self._starts: deque[float] = deque()

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._in_flight < self.max_concurrent and not self._waiters:
                self._in_flight += 1
                waiter = None
            else:
                waiter = _Waiter(loop, loop.create_future())
                self._waiters.append(waiter)
        if waiter is not None:
            try:
                await waiter.future
            except asyncio.CancelledError:
                with self._lock:
                    granted = waiter.granted
                    if not granted:
                        self._waiters.remove(waiter)
                if granted:  # the slot was handed to us while we were being cancelled
                    self.release()
                raise
        try:
            await self._wait_for_rate()
        except BaseException:
            self.release()
            raise

    async def _wait_for_rate(self) -> None:
        if not self.rpm:
            return
        limit = max(1, int(self.rpm * self.window_s / 60.0))
        with self._lock:
            now = time.monotonic()
            while self._starts and self._starts[0] <= now - self.window_s:
                self._starts.popleft()
            # Reserve a start time: now if the window has room, else when the
            # `limit`-th most recent start leaves the window.
            start = now if len(self._starts) < limit else self._starts[-limit] + self.window_s
            self._starts.append(start)
        if start > now:
            await asyncio.sleep(start - now)

    def release(self) -> None:
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                try:
                    waiter.loop.call_soon_threadsafe(_wake, waiter)
                except RuntimeError:  # its loop is closed: nobody is waiting any more
                    continue
                waiter.granted = True  # the slot passes to the waiter; in_flight unchanged
                return
            self._in_flight -= 1

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        # Waiting here is the tool's own queueing: the turn's clock keeps it out of the
        # member's deadline (see core.member.TurnClock).
        clock = TURN_CLOCK.get()
        with clock.queued() if clock is not None else contextlib.nullcontext():
            await self.acquire()
        try:
            yield
        finally:
            self.release()


_LIMITERS: dict[tuple[str, str, int, float | None], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def limiter_for(profile: ModelProfile) -> RateLimiter:
    """The process-wide limiter of a profile (same name and limits -> same limiter)."""
    key = (profile.name, profile.model, profile.max_concurrent, profile.rpm)
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None:
            limiter = _LIMITERS[key] = RateLimiter(profile.max_concurrent, profile.rpm)
        return limiter


class DelegatingClient(ChatCompletionClient):
    """Base for wrappers that only change how ``create``/``create_stream`` reach ``inner``."""

    inner: ChatCompletionClient

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


class _GatedClient(DelegatingClient):
    """Rate limit, per-attempt deadline and private-arg stripping around a provider client.

    The deadline starts once a slot is acquired, so waiting in the queue is never
    mistaken for a provider timeout.
    """

    def __init__(self, inner: ChatCompletionClient, limiter: RateLimiter, timeout_s: float | None) -> None:
        self.inner = inner
        self.limiter = limiter
        self.timeout_s = timeout_s

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
        args = _public_args(extra_create_args)

        async def run() -> CreateResult:
            async with self.limiter.slot(), asyncio.timeout(self.timeout_s):
                return await self.inner.create(
                    messages,
                    tools=tools,
                    tool_choice=tool_choice,
                    json_output=json_output,
                    extra_create_args=args,
                    cancellation_token=cancellation_token,
                )

        return await _await_linked(run(), cancellation_token)

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        await _await_linked(self.limiter.acquire(), cancellation_token)
        try:
            async for item in self.inner.create_stream(
                messages,
                tools=tools,
                tool_choice=tool_choice,
                json_output=json_output,
                extra_create_args=_public_args(extra_create_args),
                cancellation_token=cancellation_token,
            ):
                yield item
        finally:
            self.limiter.release()


class _BoundClient(DelegatingClient):
    """Adds fixed create args (temperature, max_tokens, salt) to every call; see :func:`bind_call`."""

    def __init__(self, inner: ChatCompletionClient, create_args: Mapping[str, Any]) -> None:
        self.inner = inner
        self.create_args = dict(create_args)

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
        return await self.inner.create(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            json_output=json_output,
            extra_create_args={**self.create_args, **extra_create_args},
            cancellation_token=cancellation_token,
        )

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        async for item in self.inner.create_stream(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            json_output=json_output,
            extra_create_args={**self.create_args, **extra_create_args},
            cancellation_token=cancellation_token,
        ):
            yield item


def create_args_for(profile: ModelProfile, kind: str, salt: str | None = None) -> dict[str, Any]:
    """Create args for one call kind: the profile's temperature/max_tokens plus a cache salt.

    The salt (e.g. ``"member=3|round=2"``) makes otherwise identical prompts in
    different turns distinct cache entries, so sampled answers are not replayed
    where a fresh sample was intended.
    """
    args: dict[str, Any] = {}
    temperature = profile.temperature_for(kind)
    if temperature is not None:
        args["temperature"] = temperature
    max_tokens = profile.max_tokens_for(kind)
    if max_tokens is not None:
        args["max_tokens"] = max_tokens
    if profile.thinking is not None:
        # vLLM and llama.cpp both hand `chat_template_kwargs` to the model's chat
        # template; Qwen3's reads `enable_thinking`.
        args["extra_body"] = {"chat_template_kwargs": {"enable_thinking": profile.thinking}}
    if salt:
        args[SALT_ARG] = salt
    return args


def bind_call(
    client: ChatCompletionClient, *, profile: ModelProfile, kind: str, salt: str | None = None
) -> ChatCompletionClient:
    """A client that applies ``create_args_for(profile, kind, salt)`` to every call.

    For code that cannot pass create args per call, e.g. an autogen
    ``AssistantAgent(model_client=bind_call(client, profile=p, kind="speak", salt=...))``.
    """
    return _BoundClient(client, create_args_for(profile, kind, salt))


# --------------------------------------------------------------------------- factory


_DISK_CACHES: dict[str, Any] = {}
_DISK_CACHES_LOCK = threading.Lock()


def _disk_cache(directory: Path) -> Any:
    # One diskcache.Cache (one SQLite connection pool) per directory per process,
    # however many clients a sweep creates.
    import diskcache

    key = str(directory.resolve())
    with _DISK_CACHES_LOCK:
        cache = _DISK_CACHES.get(key)
        if cache is None:
            directory.mkdir(parents=True, exist_ok=True)
            cache = _DISK_CACHES[key] = diskcache.Cache(key)
        return cache


def _cache_namespace(model: str) -> str:
    # ChatCompletionCache's key does not include the model, so each model gets its
    # own directory; a readable prefix plus a hash keeps odd characters out of paths.
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", model)[:60]
    return f"{readable}-{hashlib.sha256(model.encode()).hexdigest()[:10]}"


@functools.lru_cache(maxsize=1)
def _ssl_context() -> Any:
    # Building an SSL context (loading the CA bundle) takes ~70 ms; clients share one.
    import httpx

    return httpx.create_ssl_context()


def _http_client(profile: ModelProfile, pool_size: int | None) -> Any:
    import httpx
    import openai

    keep = max(1, pool_size or profile.max_concurrent)
    return openai.DefaultAsyncHttpxClient(
        verify=_ssl_context(),
        timeout=profile.timeout_s,
        limits=httpx.Limits(max_connections=max(keep, 1000), max_keepalive_connections=keep),
    )


def make_client(
    profile: ModelProfile, cache_dir: Path | None = None, *, pool_size: int | None = None
) -> ChatCompletionClient:
    """An autogen ``ChatCompletionClient`` for a profile (see the module docstring for layers).

    Retries inside the provider SDKs are disabled so that every provider error is
    seen, recorded and retried by :func:`call_structured`.

    With ``cache_dir``, answers are cached on disk by autogen's ``ChatCompletionCache``,
    whose key is a SHA-256 over the messages (including each message's ``source``),
    tools, the ``json_output`` schema and all ``extra_create_args`` -- which carry
    temperature, max_tokens, ``response_format`` and the ``assembly_salt``. The key
    does not include the model, so each model gets its own subdirectory. Failed
    calls are not cached; malformed answers are (a re-run replays them, and the
    re-ask that followed, exactly).

    ``pool_size`` (openai client) is how many connections the client keeps open;
    by default the profile's ``max_concurrent``, so bursts do not reconnect.
    """
    api_key = profile.api_key()
    register_secret(api_key)
    if api_key is None and profile.api_base is not None:
        # A keyless local server: send a placeholder so that neither SDK falls back to
        # a real key from OPENAI_API_KEY and ships it to a third-party endpoint.
        api_key = "no-key"
    inner: ChatCompletionClient
    if profile.client == "openai":
        from autogen_ext.models.openai import OpenAIChatCompletionClient

        openai_info: ModelInfo = {**_DEFAULT_MODEL_INFO, "function_calling": True}  # type: ignore[typeddict-item]
        kwargs: dict[str, Any] = {
            "model": profile.provider_model,
            "max_retries": 0,
            "timeout": profile.timeout_s,
            "model_info": openai_info,
            "http_client": _http_client(profile, pool_size),
        }
        if profile.api_base is not None:
            kwargs["base_url"] = profile.api_base
        if api_key is not None:
            kwargs["api_key"] = api_key
        inner = OpenAIChatCompletionClient(**kwargs)
    else:
        inner = LiteLLMChatCompletionClient(
            profile.model, api_base=profile.api_base, api_key=api_key, timeout_s=profile.timeout_s
        )
    client: ChatCompletionClient = _GatedClient(inner, limiter_for(profile), profile.timeout_s)
    if cache_dir is not None:
        from autogen_ext.cache_store.diskcache import DiskCacheStore
        from autogen_ext.models.cache import CHAT_CACHE_VALUE_TYPE, ChatCompletionCache

        store = DiskCacheStore[CHAT_CACHE_VALUE_TYPE](_disk_cache(Path(cache_dir) / _cache_namespace(profile.model)))
        client = ChatCompletionCache(client, store)
    return client


# --------------------------------------------------------------------------- errors and cost


class ModelCallError(RuntimeError):
    """A provider error that retrying cannot fix (bad request, auth, unknown model).

    Carries the attempt records; the message is scrubbed and the original exception
    is deliberately not chained, since provider messages may echo the key.
    """

    def __init__(self, message: str, attempts: list[AttemptRecord]) -> None:
        super().__init__(message)
        self.attempts = attempts


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes: litellm wraps the SDK error, which wraps the transport error."""
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in out and len(out) < 10:
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


def classify_error(exc: BaseException) -> str | None:
    """Retryable provider error kind (rate_limit, server_error, connection, timeout), else None.

    Looks through the cause chain because wrappers re-label errors: litellm reports a
    dropped connection as a 500 whose cause is the SDK's ``APIConnectionError``.
    """
    import httpx
    import openai

    chain = _chain(exc)
    if any(isinstance(e, TimeoutError | openai.APITimeoutError | httpx.TimeoutException) for e in chain):
        return "timeout"
    if any(isinstance(e, openai.RateLimitError) or getattr(e, "status_code", None) == 429 for e in chain):
        return "rate_limit"
    for e in chain:
        if isinstance(e, openai.APIConnectionError | httpx.TransportError | ConnectionError):
            return "connection"
        # aiohttp (litellm's transport) errors may surface unwrapped.
        names = {c.__name__ for c in type(e).__mro__}
        if type(e).__module__.startswith("aiohttp") and names & {
            "ClientConnectionError",
            "ServerDisconnectedError",
        }:
            return "connection"
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 500 <= status < 600:
        return "server_error"
    return None


def _retry_after_s(exc: BaseException) -> float | None:
    for e in _chain(exc):
        value = _retry_after_header(e)
        if value is not None:
            return value
    return None


def _retry_after_header(exc: BaseException) -> float | None:
    headers: Any = None
    response = getattr(exc, "response", None)
    if response is not None:
        headers = getattr(response, "headers", None)
    if not headers:
        headers = getattr(exc, "litellm_response_headers", None) or getattr(exc, "headers", None)
    if not headers:
        return None
    try:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            return float(millis) / 1000.0
        value = headers.get("retry-after")
    except Exception:
        return None
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def _retry_delay(exc: BaseException, failure: int, profile: ModelProfile) -> float:
    retry_after = _retry_after_s(exc)
    if retry_after is not None:
        return min(max(retry_after, 0.0), profile.backoff_max_s)
    # Exponential backoff with jitter so that many members do not retry in lockstep.
    base = min(profile.backoff_max_s, profile.backoff_base_s * 2 ** (failure - 1))
    return base * random.uniform(0.5, 1.0)


_UNPRICED: set[str] = set()


def cost_usd(profile: ModelProfile, prompt_tokens: int, completion_tokens: int) -> float:
    """USD cost of one call.

    Explicit profile prices win (negotiated rates, or 0 for a self-hosted model whose
    name litellm happens to know); otherwise litellm's bundled price map; otherwise 0
    (unknown models are assumed to be free local ones).
    """
    if profile.price_per_1k_input is not None or profile.price_per_1k_output is not None:
        return (profile.price_per_1k_input or 0.0) * prompt_tokens / 1000.0 + (
            profile.price_per_1k_output or 0.0
        ) * completion_tokens / 1000.0
    if profile.model in _UNPRICED:
        return 0.0
    try:
        prompt_cost, completion_cost = _import_litellm().cost_per_token(
            model=profile.model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
    except Exception:
        _UNPRICED.add(profile.model)
        return 0.0
    return float(prompt_cost) + float(completion_cost)


# --------------------------------------------------------------------------- call wrapper


@dataclass(frozen=True)
class AttemptRecord:
    """One model call attempt, as stored in run logs.

    ``error_kind`` is a provider error kind (rate_limit, server_error, connection,
    timeout, other) for ``provider_error`` and a parse failure kind (empty,
    invalid_json, schema, truncated, tool_calls) for ``malformed``. ``detail`` is
    short and scrubbed of keys.
    """

    attempt: int
    outcome: Outcome
    error_kind: str | None
    detail: str
    model: str
    latency_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cache_hit: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CallResult(Generic[T]):
    """Parsed value (None when every attempt failed or the call was cancelled) and the attempts."""

    value: T | None
    attempts: list[AttemptRecord] = field(default_factory=list)
    content: str | None = None  # raw text of the last answer, for transcripts

    @property
    def ok(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].outcome == "ok"

    @property
    def cancelled(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].outcome == "cancelled"

    @property
    def cost_usd(self) -> float:
        return sum(a.cost_usd for a in self.attempts)

    @property
    def cache_hits(self) -> int:
        return sum(a.cache_hit for a in self.attempts)


class _Malformed(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def _validation_summary(exc: ValidationError) -> tuple[str, str]:
    errors = exc.errors(include_url=False, include_input=False)
    kind = "invalid_json" if any(e.get("type") == "json_invalid" for e in errors) else "schema"
    parts = [f"{'.'.join(str(p) for p in e.get('loc', ())) or '<root>'}: {e.get('msg', '')}" for e in errors[:3]]
    return kind, "; ".join(parts)


def _reask(messages: Sequence[LLMMessage], bad: str, reason: str, structured: bool) -> list[LLMMessage]:
    # Only the latest failed answer is shown, so repeated re-asks do not grow the prompt.
    out = list(messages)
    if bad:
        out.append(AssistantMessage(content=bad[:4000], source="assistant"))
    wanted = "only a JSON object that matches the required schema" if structured else "a non-empty answer"
    out.append(
        UserMessage(content=f"Your previous reply could not be used ({reason}). Reply with {wanted}.", source="system")
    )
    return out


def _task_is_being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _call(
    client: ChatCompletionClient,
    messages: Sequence[LLMMessage],
    parse: Callable[[str], T],
    response_format: dict[str, Any] | None,
    *,
    profile: ModelProfile,
    kind: str,
    salt: str,
    cancellation_token: CancellationToken | None,
    max_malformed_retries: int,
) -> CallResult[T]:
    _register_profile_secret(profile)
    base_args = create_args_for(profile, kind)
    if response_format is not None:
        base_args["response_format"] = response_format
    attempts: list[AttemptRecord] = []
    conversation: list[LLMMessage] = list(messages)
    provider_failures = 0
    malformed = 0
    last_content: str | None = None

    def record(outcome: Outcome, error_kind: str | None, detail: str, started: float, **extra: Any) -> None:
        attempts.append(
            AttemptRecord(
                attempt=len(attempts),
                outcome=outcome,
                error_kind=error_kind,
                detail=scrub(detail),
                model=profile.model,
                latency_s=round(time.monotonic() - started, 6),
                **extra,
            )
        )

    def was_cancelled() -> bool:
        return cancellation_token is not None and cancellation_token.is_cancelled() and not _task_is_being_cancelled()

    while True:
        # Re-asks change the salt: the cache must not hand back the malformed answer.
        args = {**base_args, SALT_ARG: f"{salt}|reask={malformed}"}
        started = time.monotonic()
        try:
            result = await _await_linked(
                client.create(conversation, extra_create_args=args, cancellation_token=cancellation_token),
                cancellation_token,
            )
        except asyncio.CancelledError:
            if was_cancelled():
                record("cancelled", None, "cancelled by token", started)
                return CallResult(None, attempts, last_content)
            raise
        except Exception as exc:
            error_kind = classify_error(exc)
            detail = f"{type(exc).__name__}: {exc}"
            if error_kind is None:
                record("provider_error", "other", detail, started)
                raise ModelCallError(scrub(f"{profile.name or profile.model}: {detail}"), attempts) from None
            record("provider_error", error_kind, detail, started)
            if provider_failures >= profile.retries:
                return CallResult(None, attempts, last_content)
            provider_failures += 1
            try:
                await _await_linked(asyncio.sleep(_retry_delay(exc, provider_failures, profile)), cancellation_token)
            except asyncio.CancelledError:
                if was_cancelled():
                    record("cancelled", None, "cancelled by token during backoff", time.monotonic())
                    return CallResult(None, attempts, last_content)
                raise
            continue

        usage = result.usage
        cost = 0.0 if result.cached else cost_usd(profile, usage.prompt_tokens, usage.completion_tokens)
        tokens = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cost_usd": cost,
            "cache_hit": bool(result.cached),
        }
        content = result.content if isinstance(result.content, str) else ""
        last_content = content
        try:
            if not isinstance(result.content, str):
                raise _Malformed("tool_calls", "model answered with tool calls")
            if not content.strip():
                raise _Malformed("empty", f"empty content (finish_reason={result.finish_reason})")
            try:
                value = parse(content)
            except ValidationError as exc:
                error_kind, detail = _validation_summary(exc)
                if result.finish_reason == "length":
                    error_kind = "truncated"
                raise _Malformed(error_kind, detail) from None
        except _Malformed as bad:
            record("malformed", bad.kind, bad.detail, started, **tokens)
            if malformed >= max_malformed_retries:
                return CallResult(None, attempts, last_content)
            malformed += 1
            conversation = _reask(messages, content, bad.detail, response_format is not None)
            continue
        record("ok", None, "", started, **tokens)
        return CallResult(value, attempts, content)


async def call_structured(
    client: ChatCompletionClient,
    messages: Sequence[LLMMessage],
    output_type: type[M],
    *,
    profile: ModelProfile,
    kind: str,
    salt: str = "",
    cancellation_token: CancellationToken | None = None,
    max_malformed_retries: int = 3,
) -> CallResult[M]:
    """Ask for an ``output_type`` instance; retry provider errors, re-ask on malformed output.

    Provider errors (429, 5xx, connection, timeout) are retried up to
    ``profile.retries`` times with exponential backoff or the server's
    ``Retry-After``; malformed answers (empty, invalid JSON, schema violations) are
    re-asked up to ``max_malformed_retries`` times with the validation error. When
    either budget runs out the value is None. Non-retryable provider errors raise
    :class:`ModelCallError`. Cancelling the token ends the call promptly with a
    ``cancelled`` record and value None.

    The schema is sent as ``response_format`` in the create args (not as
    ``json_output``), so both client paths return the raw text and its token usage
    even when it fails validation; the schema is part of the cache key either way.
    """
    return await _call(
        client,
        messages,
        output_type.model_validate_json,
        structured_format(output_type, profile.structured_output),
        profile=profile,
        kind=kind,
        salt=salt,
        cancellation_token=cancellation_token,
        max_malformed_retries=max_malformed_retries,
    )


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
    """Like :func:`call_structured` for free text; only an empty answer counts as malformed."""
    return await _call(
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
