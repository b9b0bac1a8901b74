"""Our litellm `ChatCompletionClient`: any provider litellm knows, behind autogen's client interface.

autogen-ext has no litellm client, and the `litellm` client path is how members reach
hosted providers by their usual model strings and key variables. litellm itself is
imported on first use only (importing it costs seconds of CPU), so runs on the
`openai` client path never pay for it; `import_litellm` is the one place that
imports it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from autogen_core.models import (
    AssistantMessage,
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

from assembly.llm.cancellation import await_linked
from assembly.llm.response_format import response_format_for
from assembly.llm.wrappers import CallClient, Chunk, CreateCall, public_args

DEFAULT_MODEL_INFO: ModelInfo = {
    "vision": False,
    "function_calling": False,
    "json_output": True,
    "structured_output": True,
    "family": ModelFamily.UNKNOWN,
    # Members interleave system instructions with transcript turns.
    "multiple_system_messages": True,
}


def import_litellm() -> Any:
    """litellm, imported on first use."""
    # The bundled price map avoids a network fetch at import time (no egress in CI,
    # and runs must not depend on a remote file changing under them).
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


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


class LiteLLMChatCompletionClient(CallClient):
    """autogen ``ChatCompletionClient`` over ``litellm.acompletion``.

    Retries are disabled inside litellm (``num_retries=0``, ``max_retries=0``) so each
    provider error reaches `structured.call_structured`, which records and retries it.
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
    ) -> None:
        self._model = model
        self._api_base = api_base
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._model_info: ModelInfo = dict(DEFAULT_MODEL_INFO)  # type: ignore[assignment]
        self._total_usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._actual_usage = RequestUsage(prompt_tokens=0, completion_tokens=0)

    def _request(self, call: CreateCall) -> dict[str, Any]:
        if call.tools:
            raise ValueError("LiteLLMChatCompletionClient does not support tools; use client: openai")
        kwargs: dict[str, Any] = public_args(call.extra_create_args)
        fmt = response_format_for(call.json_output)
        if fmt is not None:
            if "response_format" in kwargs:
                raise ValueError("json_output and extra_create_args['response_format'] are both set")
            kwargs["response_format"] = fmt
        kwargs.update(
            model=self._model,
            messages=_to_openai_messages(call.messages),
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

    async def on_create(self, call: CreateCall) -> CreateResult:
        litellm = import_litellm()
        kwargs = self._request(call)
        response = await await_linked(litellm.acompletion(**kwargs), call.cancellation_token)
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

    async def on_stream(self, call: CreateCall) -> AsyncGenerator[Chunk, None]:
        litellm = import_litellm()
        kwargs = self._request(call)
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
        stream = await await_linked(litellm.acompletion(**kwargs), call.cancellation_token)
        iterator = stream.__aiter__()
        parts: list[str] = []
        thoughts: list[str] = []
        usage: RequestUsage | None = None
        finish: Any = None
        try:
            while True:
                try:
                    chunk = await await_linked(iterator.__anext__(), call.cancellation_token)
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
            return int(import_litellm().token_counter(model=self._model, messages=oai))
        except Exception:
            # Unknown tokenizer: the usual ~4 characters per token estimate.
            return sum(len(json.dumps(m.get("content"))) for m in oai) // 4 + 4 * len(oai)

    def remaining_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        try:
            info = import_litellm().get_model_info(self._model)
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
