"""The structured call: one model call as a member needs it, with retries, re-asks and a record of every attempt.

A liveness study needs to know what happened on every HTTP attempt, not only
whether a turn got an answer. `call_structured` retries provider errors (429, 5xx,
connection, timeout) with backoff or the server's ``Retry-After``, re-asks on
malformed output with the validation error, ends promptly when its cancellation
token is cancelled, and returns the parsed value with one `AttemptRecord` per
attempt (outcome, error kind, tokens, cost, cache hit, latency), scrubbed of keys.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from autogen_core import CancellationToken
from autogen_core.models import AssistantMessage, ChatCompletionClient, CreateResult, LLMMessage, UserMessage
from pydantic import BaseModel, ValidationError

from assembly.llm.cancellation import await_linked, cancelled_by
from assembly.llm.cost import cost_usd
from assembly.llm.errors import classify_error, retry_after_s
from assembly.llm.keys import register_profile_secret, scrub
from assembly.llm.profiles import ModelProfile
from assembly.llm.response_format import structured_format
from assembly.llm.wrappers import SALT_ARG

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

Outcome = Literal["ok", "malformed", "provider_error", "cancelled"]


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


@dataclass
class CallResult(Generic[T]):
    """Parsed value (None when every attempt failed or the call was cancelled) and the attempts."""

    value: T | None
    attempts: list[AttemptRecord] = field(default_factory=list)
    content: str | None = None  # raw text of the last answer, for transcripts

    @property
    def ok(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].outcome == "ok"


class ModelCallError(RuntimeError):
    """A provider error that retrying cannot fix (bad request, auth, unknown model).

    Carries the attempt records; the message is scrubbed and the original exception
    is deliberately not chained, since provider messages may echo the key.
    """

    def __init__(self, message: str, attempts: list[AttemptRecord]) -> None:
        super().__init__(message)
        self.attempts = attempts


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


def retry_delay(exc: BaseException, failure: int, profile: ModelProfile) -> float:
    """Seconds to wait before retrying after the `failure`-th provider error."""
    retry_after = retry_after_s(exc)
    if retry_after is not None:
        return min(max(retry_after, 0.0), profile.backoff_max_s)
    # Exponential backoff with jitter so that many members do not retry in lockstep.
    base = min(profile.backoff_max_s, profile.backoff_base_s * 2 ** (failure - 1))
    return base * random.uniform(0.5, 1.0)


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
    `ModelCallError`. Cancelling the token ends the call promptly with a
    ``cancelled`` record and value None.

    The schema is sent as ``response_format`` in the create args (not as
    ``json_output``), so both client paths return the raw text and its token usage
    even when it fails validation; the schema is part of the cache key either way.
    """
    return await call_parsed(
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


async def call_parsed(
    client: ChatCompletionClient,
    messages: Sequence[LLMMessage],
    parse: Callable[[str], T],
    response_format: dict[str, Any] | None,
    *,
    profile: ModelProfile,
    kind: str,
    salt: str = "",
    cancellation_token: CancellationToken | None = None,
    max_malformed_retries: int = 3,
) -> CallResult[T]:
    """`call_structured` for any `parse` of the answer's text (a `ValidationError` from
    it, or an empty answer, counts as malformed) and any ``response_format``."""
    register_profile_secret(profile)
    call = _Call(client, messages, parse, response_format, profile, cancellation_token, max_malformed_retries)
    return await call.run(kind, salt)


class _Malformed(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class _Call(Generic[T]):
    """One call across its attempts: each attempt either ends the call (a `CallResult`)
    or leaves it to the next attempt (None), after a backoff or with a re-ask."""

    def __init__(
        self,
        client: ChatCompletionClient,
        messages: Sequence[LLMMessage],
        parse: Callable[[str], T],
        response_format: dict[str, Any] | None,
        profile: ModelProfile,
        token: CancellationToken | None,
        max_malformed_retries: int,
    ) -> None:
        self.client = client
        self.messages = messages
        self.parse = parse
        self.response_format = response_format
        self.profile = profile
        self.token = token
        self.max_malformed_retries = max_malformed_retries
        self.attempts: list[AttemptRecord] = []
        self.conversation: list[LLMMessage] = list(messages)
        self.provider_failures = 0
        self.malformed = 0
        self.last_content: str | None = None

    async def run(self, kind: str, salt: str) -> CallResult[T]:
        base_args = create_args_for(self.profile, kind)
        if self.response_format is not None:
            base_args["response_format"] = self.response_format
        while True:
            # Re-asks change the salt: the cache must not hand back the malformed answer.
            done = await self._attempt({**base_args, SALT_ARG: f"{salt}|reask={self.malformed}"})
            if done is not None:
                return done

    async def _attempt(self, args: dict[str, Any]) -> CallResult[T] | None:
        started = time.monotonic()
        try:
            result = await await_linked(
                self.client.create(self.conversation, extra_create_args=args, cancellation_token=self.token),
                self.token,
            )
        except asyncio.CancelledError:
            if not cancelled_by(self.token):
                raise  # the task itself is cancelled (e.g. the engine's deadline)
            self._record("cancelled", None, "cancelled by token", started)
            return self._gave_up()
        except Exception as exc:
            return await self._provider_error(exc, started)
        return self._answer(result, started)

    async def _provider_error(self, exc: Exception, started: float) -> CallResult[T] | None:
        error_kind = classify_error(exc)
        detail = f"{type(exc).__name__}: {exc}"
        if error_kind is None:
            self._record("provider_error", "other", detail, started)
            raise ModelCallError(scrub(f"{self.profile.name or self.profile.model}: {detail}"), self.attempts) from None
        self._record("provider_error", error_kind, detail, started)
        if self.provider_failures >= self.profile.retries:
            return self._gave_up()
        self.provider_failures += 1
        try:
            await await_linked(asyncio.sleep(retry_delay(exc, self.provider_failures, self.profile)), self.token)
        except asyncio.CancelledError:
            if not cancelled_by(self.token):
                raise
            self._record("cancelled", None, "cancelled by token during backoff", time.monotonic())
            return self._gave_up()
        return None

    def _answer(self, result: CreateResult, started: float) -> CallResult[T] | None:
        usage = result.usage
        cost = 0.0 if result.cached else cost_usd(self.profile, usage.prompt_tokens, usage.completion_tokens)
        tokens: dict[str, Any] = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cost_usd": cost,
            "cache_hit": bool(result.cached),
        }
        content = result.content if isinstance(result.content, str) else ""
        self.last_content = content
        try:
            value = self._parse(result, content)
        except _Malformed as bad:
            self._record("malformed", bad.kind, bad.detail, started, **tokens)
            if self.malformed >= self.max_malformed_retries:
                return self._gave_up()
            self.malformed += 1
            self.conversation = _reask(self.messages, content, bad.detail, self.response_format is not None)
            return None
        self._record("ok", None, "", started, **tokens)
        return CallResult(value, self.attempts, content)

    def _parse(self, result: CreateResult, content: str) -> T:
        if not isinstance(result.content, str):
            raise _Malformed("tool_calls", "model answered with tool calls")
        if not content.strip():
            raise _Malformed("empty", f"empty content (finish_reason={result.finish_reason})")
        try:
            return self.parse(content)
        except ValidationError as exc:
            error_kind, detail = _validation_summary(exc)
            if result.finish_reason == "length":
                error_kind = "truncated"
            raise _Malformed(error_kind, detail) from None

    def _record(self, outcome: Outcome, error_kind: str | None, detail: str, started: float, **extra: Any) -> None:
        self.attempts.append(
            AttemptRecord(
                attempt=len(self.attempts),
                outcome=outcome,
                error_kind=error_kind,
                detail=scrub(detail),
                model=self.profile.model,
                latency_s=round(time.monotonic() - started, 6),
                **extra,
            )
        )

    def _gave_up(self) -> CallResult[T]:
        return CallResult(None, self.attempts, self.last_content)


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
