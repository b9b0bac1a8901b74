"""Our litellm `ChatCompletionClient`: any provider litellm knows, behind autogen's client interface.

autogen-ext has no litellm client, and the `litellm` client path is how members reach
hosted providers by their usual model strings and key variables. litellm itself is
imported on first use only (importing it costs seconds of CPU), so runs on the
`openai` client path never pay for it; `import_litellm` is the one place that
imports it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from autogen_core.models import CreateResult, LLMMessage, RequestUsage
from autogen_core.tools import Tool, ToolSchema

from assembly.llm.cancellation import await_linked
from assembly.llm.response_format import editable, response_format_for
from assembly.llm.wire import (
    DEFAULT_WINDOW,
    ProviderClient,
    StreamedAnswer,
    estimate_tokens,
    finish_reason,
    to_openai_messages,
)
from assembly.llm.wrappers import Chunk, CreateCall, public_args


def import_litellm() -> Any:
    """litellm, imported on first use."""
    # The bundled price map avoids a network fetch at import time (no egress in CI,
    # and runs must not depend on a remote file changing under them).
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


class LiteLLMChatCompletionClient(ProviderClient):
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
        super().__init__()

    def _request(self, call: CreateCall) -> dict[str, Any]:
        if call.tools:
            raise ValueError("LiteLLMChatCompletionClient does not support tools; use client: openai")
        kwargs: dict[str, Any] = public_args(call.extra_create_args)
        fmt = response_format_for(call.json_output)
        if fmt is not None and "response_format" in kwargs:
            raise ValueError("json_output and extra_create_args['response_format'] are both set")
        fmt = kwargs.get("response_format", fmt)
        if fmt is not None:
            kwargs["response_format"] = editable(fmt)  # litellm may edit the schema in place
        kwargs.update(
            model=self._model,
            messages=to_openai_messages(call.messages),
            timeout=self._timeout_s,
            num_retries=0,
            max_retries=0,
        )
        if self._api_base is not None:
            kwargs["api_base"] = self._api_base
        if self._api_key is not None:
            kwargs["api_key"] = self._api_key
        return kwargs

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
        self.add_usage(usage)
        return CreateResult(
            finish_reason=finish_reason(choice.finish_reason),
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
        answer = StreamedAnswer()
        try:
            while True:
                try:
                    chunk = await await_linked(iterator.__anext__(), call.cancellation_token)
                except StopAsyncIteration:
                    break
                answer.usage = self._usage_of(chunk) or answer.usage
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                answer.finish = choice.finish_reason or answer.finish
                reasoning = getattr(choice.delta, "reasoning_content", None)
                if reasoning:
                    answer.thoughts.append(reasoning)
                text = choice.delta.content
                if text:
                    answer.parts.append(text)
                    yield text
        finally:
            closer = getattr(stream, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
        result = answer.result()
        self.add_usage(result.usage)
        yield result

    async def close(self) -> None:
        # litellm owns and reuses its HTTP clients; nothing of ours to release.
        return None

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        try:
            return int(import_litellm().token_counter(model=self._model, messages=to_openai_messages(messages)))
        except Exception:
            return estimate_tokens(messages)  # unknown tokenizer

    def remaining_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        try:
            info = import_litellm().get_model_info(self._model)
            window = int(info.get("max_input_tokens") or info.get("max_tokens") or 0) or None
        except Exception:
            window = None
        return (window or DEFAULT_WINDOW) - self.count_tokens(messages, tools=tools)
