"""The Chat Completions wire format: autogen messages as OpenAI JSON, and OpenAI answers as autogen values.

Both client paths speak it (the lean HTTP transport directly, litellm as its input
format), so the translation is written once, here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from autogen_core import FunctionCall
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

from assembly.llm.wrappers import CallClient

MODEL_INFO: ModelInfo = {
    "vision": False,
    "function_calling": False,
    "json_output": True,
    "structured_output": True,
    "family": ModelFamily.UNKNOWN,
    # Members interleave system instructions with transcript turns.
    "multiple_system_messages": True,
}

#: The context window assumed for a model whose own is unknown.
DEFAULT_WINDOW = 32_768

_FINISH_REASONS: dict[str, FinishReasons] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "function_calls",
    "function_call": "function_calls",
}


def to_openai_messages(messages: Sequence[LLMMessage], *, names: bool = False) -> list[dict[str, Any]]:
    """Messages as the Chat Completions API takes them.

    ``names`` adds each user and assistant message's ``source`` as its ``name`` (what
    autogen's OpenAI client sent, so that servers see the same request as before).
    Tool calls and tool results are refused: members only need text and structured output.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            out.append({"role": "system", "content": message.content})
            continue
        if isinstance(message, UserMessage):
            item: dict[str, Any] = {"role": "user", "content": _user_content(message)}
        elif isinstance(message, AssistantMessage):
            if not isinstance(message.content, str):
                raise ValueError("tool calls are not supported: members only need text and structured output")
            item = {"role": "assistant", "content": message.content}
        elif isinstance(message, FunctionExecutionResultMessage):
            raise ValueError("tool results are not supported: members only need text and structured output")
        else:  # pragma: no cover - LLMMessage is a closed union
            raise TypeError(f"unsupported message type {type(message).__name__}")
        if names:
            item["name"] = message.source
        out.append(item)
    return out


def _user_content(message: UserMessage) -> str | list[dict[str, Any]]:
    if isinstance(message.content, str):
        return message.content
    return [{"type": "text", "text": p} if isinstance(p, str) else p.to_openai_format() for p in message.content]


def finish_reason(value: Any) -> FinishReasons:
    return _FINISH_REASONS.get(str(value), "unknown") if value is not None else "unknown"


def usage_of(usage: Mapping[str, Any] | None) -> RequestUsage:
    """Token usage from an answer's ``usage`` object (zeros when the server sent none)."""
    if not usage:
        return RequestUsage(prompt_tokens=0, completion_tokens=0)
    return RequestUsage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0), completion_tokens=int(usage.get("completion_tokens") or 0)
    )


def tool_calls_of(message: Mapping[str, Any]) -> list[FunctionCall] | None:
    """The tool calls a model answered with, if it answered with any (members treat them as malformed)."""
    calls = message.get("tool_calls")
    if not calls:
        return None
    return [
        FunctionCall(
            id=str(c.get("id", "")),
            name=str((c.get("function") or {}).get("name", "")),
            arguments=str((c.get("function") or {}).get("arguments", "")),
        )
        for c in calls
    ]


class StreamedAnswer:
    """A streamed answer as it arrives: text and reasoning deltas, the finish reason
    and usage (sent last), then the final `CreateResult`."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.thoughts: list[str] = []
        self.finish: Any = None
        self.usage: RequestUsage | None = None

    def result(self) -> CreateResult:
        return CreateResult(
            finish_reason=finish_reason(self.finish),
            content="".join(self.parts),
            usage=self.usage or RequestUsage(prompt_tokens=0, completion_tokens=0),
            cached=False,
            thought="".join(self.thoughts) or None,
        )


class ProviderClient(CallClient):
    """What both provider clients share: running token totals (autogen's
    `total_usage`/`actual_usage`), model info, and token estimates where the server's
    tokenizer is not at hand."""

    def __init__(self) -> None:
        self._prompt_tokens = 0
        self._completion_tokens = 0

    def add_usage(self, usage: RequestUsage) -> None:
        self._prompt_tokens += usage.prompt_tokens
        self._completion_tokens += usage.completion_tokens

    def actual_usage(self) -> RequestUsage:
        return RequestUsage(prompt_tokens=self._prompt_tokens, completion_tokens=self._completion_tokens)

    def total_usage(self) -> RequestUsage:
        return self.actual_usage()

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        return estimate_tokens(messages)

    def remaining_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        return DEFAULT_WINDOW - self.count_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelInfo:  # type: ignore[override]
        return MODEL_INFO

    @property
    def model_info(self) -> ModelInfo:
        return MODEL_INFO


def estimate_tokens(messages: Sequence[LLMMessage]) -> int:
    """About four characters per token, for servers whose tokenizer we do not have."""
    wire = to_openai_messages(messages)
    return sum(len(json.dumps(m.get("content"))) for m in wire) // 4 + 4 * len(wire)
