"""Model-client layer, end to end over real HTTP against the loopback fake server.

Nothing here mocks a client: every call goes through autogen/litellm/openai SDK
code and a real socket, so retries, timeouts, cancellation and caching are tested
the way they behave against a provider.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Literal, cast

import httpx
import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import StructuredMessage
from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient, CreateResult, LLMMessage, SystemMessage, UserMessage
from autogen_core.tools import ToolSchema
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from assembly.llm.clients import make_client
from assembly.llm.cost import cost_usd
from assembly.llm.json_text import SLOT
from assembly.llm.keys import scrub
from assembly.llm.litellm_client import LiteLLMChatCompletionClient
from assembly.llm.profiles import ModelProfile, load_models_file
from assembly.llm.rate_limit import RateLimiter, limiter_for
from assembly.llm.response_format import response_format_for
from assembly.llm.structured import ModelCallError, call_structured
from assembly.llm.wrappers import SALT_ARG
from tests.fake_openai import FakeOpenAIServer
from tests.llm_helpers import bind_call, call_text

ROOT = Path(__file__).resolve().parent.parent
CANARY = "sk-canary-XYZ-0123456789"
KEY_ENV = "ASSEMBLY_TEST_CANARY_KEY"
# `openai` and `litellm` (an OpenAI-compatible api_base) reach the server on the lean
# transport; `litellm-translated` names a provider litellm translates requests for
# itself (DeepSeek's, whose wire format the loopback server also speaks), so
# `litellm.acompletion` carries them.
CLIENTS = pytest.mark.parametrize("client_kind", ["openai", "litellm", "litellm-translated"])
MODEL_OF = {"openai": "openai/fake-model", "litellm": "openai/fake-model", "litellm-translated": "deepseek/fake-model"}
_names = itertools.count()


class Proposal(BaseModel):
    title: str = Field(max_length=60)
    budget_share: float = Field(ge=0, le=1)
    priority: Literal["low", "medium", "high"]
    supporters: list[int] = Field(min_length=1, max_length=5)
    amendment: str | None = None


class StopVote(BaseModel):
    stop: bool
    reason: str = Field(max_length=80)


@pytest.fixture(autouse=True)
def _canary_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, CANARY)


@pytest.fixture
def server() -> Any:
    with FakeOpenAIServer(seed=11) as srv:
        yield srv


def make_profile(srv: FakeOpenAIServer, client_kind: str, **overrides: Any) -> ModelProfile:
    # A unique name per profile: limiters are process-wide per profile.
    fields: dict[str, Any] = {
        "name": f"test-{client_kind}-{next(_names)}",
        "model": MODEL_OF.get(client_kind, "openai/fake-model"),
        "client": "openai" if client_kind == "openai" else "litellm",
        "api_base": srv.base_url,
        "api_key_env": KEY_ENV,
        "temperature": {"default": 0.7, "vote": 0.1},
        "max_tokens": {"default": 500},
        "timeout_s": 10.0,
        "retries": 3,
        "max_concurrent": 16,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.2,
    }
    fields.update(overrides)
    return ModelProfile(**fields)


MESSAGES: list[LLMMessage] = [
    SystemMessage(content="You are member 3 of a citizen assembly on the city budget."),
    UserMessage(content="Private fact: the bus depot lease ends in 2027. Propose one measure.", source="user"),
]


def _records_text(records: list[Any]) -> str:
    return json.dumps([dataclasses.asdict(r) for r in records])


# --------------------------------------------------------------------------- structured output


@CLIENTS
async def test_call_structured_returns_schema_conforming_object(server: FakeOpenAIServer, client_kind: str) -> None:
    profile = make_profile(server, client_kind)
    result = await call_structured(
        make_client(profile), MESSAGES, Proposal, profile=profile, kind="propose", salt="member=3|round=1"
    )
    assert result.ok and isinstance(result.value, Proposal)
    assert result.value == Proposal.model_validate_json(result.content or "")
    (attempt,) = result.attempts
    assert attempt.outcome == "ok" and attempt.model == profile.model and not attempt.cache_hit
    assert attempt.prompt_tokens > 0 and attempt.completion_tokens == len(result.content or "") // 4

    (request,) = server.requests
    body = request["body"]
    assert request["authorization"] == f"Bearer {CANARY}"
    assert body["model"] == "fake-model"
    assert body["temperature"] == 0.7 and body["max_tokens"] == 500
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["additionalProperties"] is False
    assert set(fmt["json_schema"]["schema"]["required"]) == set(Proposal.model_fields)
    assert SALT_ARG not in json.dumps(body)  # the salt only feeds the cache key
    assert "bus depot lease" in json.dumps(body["messages"])


@CLIENTS
async def test_kind_selects_temperature(server: FakeOpenAIServer, client_kind: str) -> None:
    profile = make_profile(server, client_kind)
    await call_structured(make_client(profile), MESSAGES, StopVote, profile=profile, kind="vote")
    assert server.requests[-1]["body"]["temperature"] == 0.1


@CLIENTS
async def test_client_create_translates_json_output_model(server: FakeOpenAIServer, client_kind: str) -> None:
    client = make_client(make_profile(server, client_kind))
    result = await client.create(MESSAGES, json_output=Proposal)
    assert isinstance(result.content, str)
    Proposal.model_validate_json(result.content)
    assert result.usage.prompt_tokens > 0 and result.finish_reason == "stop"
    fmt = server.requests[-1]["body"]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Proposal"


@CLIENTS
async def test_assistant_agent_structured_output(server: FakeOpenAIServer, client_kind: str) -> None:
    client = make_client(make_profile(server, client_kind))
    agent = AssistantAgent(
        "member_3", model_client=client, output_content_type=Proposal, system_message="You are member 3."
    )
    result = await agent.run(task="Propose one measure for the budget.")
    message = result.messages[-1]
    assert isinstance(message, StructuredMessage)
    assert isinstance(message.content, Proposal)
    assert server.request_count == 1
    body = server.requests[-1]["body"]
    assert body["response_format"]["json_schema"]["name"] == "Proposal"
    assert body["messages"][0] == {"role": "system", "content": "You are member 3."}
    # The fake server is deterministic: replaying the agent's request gives the
    # answer it received, which must be exactly what the agent parsed.
    replay = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=10).json()
    assert message.content == Proposal.model_validate_json(replay["choices"][0]["message"]["content"])


@CLIENTS
async def test_assistant_agent_with_bound_salt_uses_cache(
    server: FakeOpenAIServer, client_kind: str, tmp_path: Path
) -> None:
    profile = make_profile(server, client_kind)
    cached = make_client(profile, cache_dir=tmp_path)

    async def run(salt: str) -> Proposal:
        client = bind_call(cached, profile=profile, kind="propose", salt=salt)
        agent = AssistantAgent("member_3", model_client=client, output_content_type=Proposal)
        message = (await agent.run(task="Propose one measure.")).messages[-1]
        assert isinstance(message, StructuredMessage) and isinstance(message.content, Proposal)
        return message.content

    first = await run("member=3|round=1")
    assert server.request_count == 1
    assert server.requests[-1]["body"]["temperature"] == 0.7
    assert await run("member=3|round=1") == first
    assert server.request_count == 1  # replayed from disk
    await run("member=3|round=2")
    assert server.request_count == 2  # a new turn samples afresh


# --------------------------------------------------------------------------- streaming


@CLIENTS
async def test_streaming(server: FakeOpenAIServer, client_kind: str) -> None:
    client = make_client(make_profile(server, client_kind))
    items = [
        item
        async for item in client.create_stream(
            MESSAGES, json_output=Proposal, extra_create_args={"stream_options": {"include_usage": True}}
        )
    ]
    final = items[-1]
    assert isinstance(final, CreateResult)
    chunks = items[:-1]
    assert len(chunks) > 2 and all(isinstance(c, str) for c in chunks)
    assert "".join(str(c) for c in chunks) == final.content
    assert isinstance(final.content, str)
    Proposal.model_validate_json(final.content)
    assert final.usage.completion_tokens == len(final.content) // 4 > 0
    assert server.requests[-1]["body"]["stream"] is True


# --------------------------------------------------------------------------- provider errors


@CLIENTS
async def test_rate_limit_honours_retry_after(server: FakeOpenAIServer, client_kind: str) -> None:
    # Backoff without Retry-After would be 2 s and then 4 s; Retry-After says 0.05 s.
    profile = make_profile(server, client_kind, backoff_base_s=2.0, backoff_max_s=10.0)
    server.configure(fault_script=["rate_limit", "rate_limit"], retry_after="0.05")
    started = time.monotonic()
    result = await call_structured(make_client(profile), MESSAGES, Proposal, profile=profile, kind="propose")
    elapsed = time.monotonic() - started
    assert result.ok
    kinds = [(a.outcome, a.error_kind) for a in result.attempts]
    assert kinds == [("provider_error", "rate_limit"), ("provider_error", "rate_limit"), ("ok", None)]
    assert server.fault_counts["rate_limit"] == 2 and server.request_count == 3
    assert 0.1 <= elapsed < 1.5


@CLIENTS
async def test_server_errors_retried_then_given_up(server: FakeOpenAIServer, client_kind: str) -> None:
    profile = make_profile(server, client_kind, retries=2)
    server.configure(fault_rates={"server_error": 1.0})
    result = await call_structured(make_client(profile), MESSAGES, Proposal, profile=profile, kind="propose")
    assert result.value is None and not result.ok
    assert [a.error_kind for a in result.attempts] == ["server_error"] * 3
    assert server.request_count == 3 == server.fault_counts["server_error"]


@CLIENTS
async def test_server_error_then_success(server: FakeOpenAIServer, client_kind: str) -> None:
    profile = make_profile(server, client_kind)
    server.configure(fault_script=["server_error", "disconnect"])
    result = await call_structured(make_client(profile), MESSAGES, Proposal, profile=profile, kind="propose")
    assert result.ok
    assert [a.error_kind for a in result.attempts] == ["server_error", "connection", None]


@CLIENTS
async def test_timeout_is_a_retried_provider_error(server: FakeOpenAIServer, client_kind: str) -> None:
    profile = make_profile(server, client_kind, timeout_s=0.4, retries=1)
    server.configure(fault_rates={"hang": 1.0}, hang_s=30.0)
    started = time.monotonic()
    result = await call_structured(make_client(profile), MESSAGES, Proposal, profile=profile, kind="propose")
    assert time.monotonic() - started < 10
    assert result.value is None
    assert [(a.outcome, a.error_kind) for a in result.attempts] == [("provider_error", "timeout")] * 2


@CLIENTS
async def test_connection_refused_is_retried(client_kind: str) -> None:
    srv = FakeOpenAIServer().start()
    profile = make_profile(srv, client_kind, retries=1)
    srv.stop()  # nothing listens on that port any more
    result = await call_structured(make_client(profile), MESSAGES, Proposal, profile=profile, kind="propose")
    assert result.value is None
    assert [a.error_kind for a in result.attempts] == ["connection", "connection"]


# --------------------------------------------------------------------------- malformed output


@CLIENTS
async def test_malformed_reasked_with_feedback(server: FakeOpenAIServer, client_kind: str) -> None:
    profile = make_profile(server, client_kind)
    server.configure(fault_script=["malformed", "empty"])
    result = await call_structured(make_client(profile), MESSAGES, Proposal, profile=profile, kind="propose")
    assert result.ok and isinstance(result.value, Proposal)
    assert [(a.outcome, a.error_kind) for a in result.attempts] == [
        ("malformed", "invalid_json"),
        ("malformed", "empty"),
        ("ok", None),
    ]
    assert result.attempts[0].completion_tokens > 0  # the bad answer's tokens are still counted
    reask = server.requests[1]["body"]["messages"]
    assert reask[: len(MESSAGES)] == server.requests[0]["body"]["messages"]
    assert reask[-2]["role"] == "assistant" and "could not be used" in reask[-1]["content"]
    # Only the latest failure is shown to the model.
    assert len(server.requests[2]["body"]["messages"]) == len(MESSAGES) + 1


@CLIENTS
async def test_malformed_gives_up_after_budget(server: FakeOpenAIServer, client_kind: str) -> None:
    profile = make_profile(server, client_kind)
    server.configure(fault_rates={"malformed": 1.0})
    result = await call_structured(
        make_client(profile), MESSAGES, Proposal, profile=profile, kind="propose", max_malformed_retries=2
    )
    assert result.value is None and result.content is not None
    assert [a.outcome for a in result.attempts] == ["malformed"] * 3
    assert server.request_count == 3
    with pytest.raises(ValidationError):
        Proposal.model_validate_json(result.content)


@CLIENTS
async def test_schema_violation_is_malformed(server: FakeOpenAIServer, client_kind: str) -> None:
    class Strict(BaseModel):
        title: str = Field(min_length=5)

    # The server follows the schema it is sent; validating against a stricter model
    # than the one requested mimics a model that returns well-formed but wrong JSON.
    class Loose(BaseModel):
        title: str = Field(max_length=4)

    profile = make_profile(server, client_kind)
    client = make_client(profile)
    result = await call_structured(
        cast(ChatCompletionClient, _SchemaSwap(client, Loose)),
        MESSAGES,
        Strict,
        profile=profile,
        kind="propose",
        max_malformed_retries=1,
    )
    assert result.value is None
    assert [a.error_kind for a in result.attempts] == ["schema", "schema"]
    assert "title" in result.attempts[0].detail


class _SchemaSwap:
    """Sends a different schema than the caller validates against (see test above)."""

    def __init__(self, inner: Any, schema_model: type[BaseModel]) -> None:
        self.inner = inner
        self.fmt = response_format_for(schema_model)

    async def create(self, messages: Any, **kwargs: Any) -> CreateResult:
        kwargs["extra_create_args"] = {**kwargs["extra_create_args"], "response_format": self.fmt}
        result: CreateResult = await self.inner.create(messages, **kwargs)
        return result


async def test_call_text(server: FakeOpenAIServer) -> None:
    profile = make_profile(server, "litellm")
    server.configure(fault_script=["empty"])
    result = await call_text(make_client(profile), MESSAGES, profile=profile, kind="speak")
    assert isinstance(result.value, str) and len(result.value.split()) > 3
    assert [a.error_kind for a in result.attempts] == ["empty", None]
    assert "response_format" not in server.requests[-1]["body"]


@CLIENTS
async def test_seeded_fault_mix_matches_records(server: FakeOpenAIServer, client_kind: str) -> None:
    rates = {"rate_limit": 0.15, "server_error": 0.1, "malformed": 0.1, "empty": 0.05, "disconnect": 0.05}
    server.configure(fault_rates=rates, seed=5)
    profile = make_profile(server, client_kind, retries=8)
    client = make_client(profile)
    attempts = []
    for i in range(25):
        result = await call_structured(client, MESSAGES, Proposal, profile=profile, kind="propose", salt=str(i))
        attempts += result.attempts
    seen = {kind: sum(a.error_kind == kind for a in attempts) for kind in ("rate_limit", "server_error")}
    assert seen == {
        "rate_limit": server.fault_counts["rate_limit"],
        "server_error": server.fault_counts["server_error"],
    }
    assert sum(a.error_kind == "connection" for a in attempts) == server.fault_counts["disconnect"]
    assert sum(a.error_kind == "invalid_json" for a in attempts) == server.fault_counts["malformed"]
    assert sum(a.error_kind == "empty" for a in attempts) == server.fault_counts["empty"]
    assert len(attempts) == server.request_count
    assert sum(server.fault_counts.values()) > 5


# --------------------------------------------------------------------------- cancellation


@CLIENTS
async def test_hang_cancelled_by_token(server: FakeOpenAIServer, client_kind: str) -> None:
    hang_s = 30.0
    profile = make_profile(server, client_kind, timeout_s=60.0)
    server.configure(fault_rates={"hang": 1.0}, hang_s=hang_s)
    client = make_client(profile)

    token = CancellationToken()
    asyncio.get_running_loop().call_later(0.3, token.cancel)
    started = time.monotonic()
    result = await call_structured(
        client, MESSAGES, Proposal, profile=profile, kind="propose", cancellation_token=token
    )
    assert time.monotonic() - started < hang_s / 3
    assert result.attempts[-1].outcome == "cancelled" and result.value is None
    assert server.fault_counts["hang"] == 1

    # The bare client (as AssistantAgent uses it) is cancelled the same way.
    token = CancellationToken()
    asyncio.get_running_loop().call_later(0.3, token.cancel)
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await client.create(MESSAGES, json_output=Proposal, cancellation_token=token)
    assert time.monotonic() - started < hang_s / 3


async def test_token_cancels_backoff_sleep(server: FakeOpenAIServer) -> None:
    profile = make_profile(server, "openai", backoff_base_s=20.0, backoff_max_s=20.0)
    server.configure(fault_rates={"server_error": 1.0})
    token = CancellationToken()
    asyncio.get_running_loop().call_later(0.3, token.cancel)
    started = time.monotonic()
    result = await call_structured(
        make_client(profile), MESSAGES, Proposal, profile=profile, kind="propose", cancellation_token=token
    )
    assert time.monotonic() - started < 5
    assert [a.outcome for a in result.attempts] == ["provider_error", "cancelled"]


# --------------------------------------------------------------------------- rate limiting


@CLIENTS
async def test_limiter_caps_in_flight_requests(server: FakeOpenAIServer, client_kind: str) -> None:
    server.configure(latency_s=0.15)
    profile = make_profile(server, client_kind, max_concurrent=3)
    client = make_client(profile)
    results = await asyncio.gather(
        *[
            call_structured(client, MESSAGES, StopVote, profile=profile, kind="stop_vote", salt=str(i))
            for i in range(12)
        ]
    )
    assert all(r.ok for r in results)
    assert server.request_count == 12
    assert 2 <= server.max_in_flight <= 3
    assert limiter_for(profile).in_flight == 0


async def test_limiter_is_shared_across_event_loops(server: FakeOpenAIServer) -> None:
    server.configure(latency_s=0.1)
    profile = make_profile(server, "openai", max_concurrent=2)
    errors: list[BaseException] = []

    def run_in_own_loop(offset: int) -> None:
        async def batch() -> None:
            client = make_client(profile)  # HTTP clients are per loop; the limiter is not
            await asyncio.gather(
                *[
                    call_structured(client, MESSAGES, StopVote, profile=profile, kind="vote", salt=f"{offset}-{i}")
                    for i in range(6)
                ]
            )

        try:
            asyncio.run(batch())
        except BaseException as exc:
            errors.append(exc)

    def run_both() -> None:
        threads = [threading.Thread(target=run_in_own_loop, args=(k,)) for k in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

    await asyncio.to_thread(run_both)
    assert errors == []
    assert server.request_count == 12
    assert server.max_in_flight == 2


async def test_limiter_rpm_window() -> None:
    limiter = RateLimiter(max_concurrent=100, rpm=360, window_s=0.5)  # 3 starts per 0.5 s
    started = time.monotonic()
    stamps = []
    for _ in range(7):
        async with limiter.slot():
            stamps.append(time.monotonic() - started)
    assert stamps[2] < 0.2  # the first three go at once
    assert stamps[3] >= 0.45 and stamps[6] >= 0.95
    assert stamps[6] < 3.0


async def test_limiter_cancelled_waiter_does_not_leak_slots() -> None:
    limiter = RateLimiter(max_concurrent=1)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    limiter.release()
    assert limiter.in_flight == 0
    await asyncio.wait_for(limiter.acquire(), 1)  # the slot is free again
    # A waiter cancelled right after being handed the slot gives it back.
    second = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.01)
    limiter.release()
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    assert limiter.in_flight == 0


# --------------------------------------------------------------------------- cache


@CLIENTS
async def test_cache_replays_without_http(server: FakeOpenAIServer, client_kind: str, tmp_path: Path) -> None:
    profile = make_profile(server, client_kind)
    first = await call_structured(
        make_client(profile, cache_dir=tmp_path),
        MESSAGES,
        Proposal,
        profile=profile,
        kind="propose",
        salt="m=1|r=1",
    )
    assert server.request_count == 1 and first.ok

    # A re-run: a new client over the same cache directory.
    again = await call_structured(
        make_client(profile, cache_dir=tmp_path),
        MESSAGES,
        Proposal,
        profile=profile,
        kind="propose",
        salt="m=1|r=1",
    )
    assert server.request_count == 1
    assert again.content == first.content and again.value == first.value
    (attempt,) = again.attempts
    assert attempt.cache_hit and attempt.cost_usd == 0.0 and attempt.prompt_tokens == first.attempts[0].prompt_tokens


@CLIENTS
async def test_cache_key_covers_salt_schema_args_and_model(
    server: FakeOpenAIServer, client_kind: str, tmp_path: Path
) -> None:
    profile = make_profile(server, client_kind)
    client = make_client(profile, cache_dir=tmp_path)

    async def call(**changes: Any) -> None:
        args: dict[str, Any] = {"profile": profile, "kind": "propose", "salt": "m=1|r=1", **changes}
        messages = args.pop("messages", MESSAGES)
        output = args.pop("output", Proposal)
        use = args.pop("client", client)
        await call_structured(use, messages, output, **args)

    await call()
    assert server.request_count == 1
    variants: list[dict[str, Any]] = [
        {"salt": "m=2|r=1"},  # another member or round
        {"kind": "vote"},  # different temperature
        {"output": StopVote},  # different schema
        {"messages": [*MESSAGES, UserMessage(content="And now?", source="user")]},
    ]
    other_tokens = make_profile(server, client_kind, max_tokens={"default": 300})
    variants.append({"profile": other_tokens, "client": make_client(other_tokens, cache_dir=tmp_path)})
    other_model = make_profile(server, client_kind, model="openai/other-model")
    variants.append({"profile": other_model, "client": make_client(other_model, cache_dir=tmp_path)})
    for expected, variant in enumerate(variants, start=2):
        await call(**variant)
        assert server.request_count == expected, variant
    await call()  # and the original is still cached
    assert server.request_count == len(variants) + 1


@CLIENTS
async def test_cached_rerun_replays_malformed_attempts(
    server: FakeOpenAIServer, client_kind: str, tmp_path: Path
) -> None:
    profile = make_profile(server, client_kind)
    server.configure(fault_script=["malformed"])
    live = await call_structured(
        make_client(profile, cache_dir=tmp_path),
        MESSAGES,
        Proposal,
        profile=profile,
        kind="propose",
        salt="x",
    )
    assert [a.outcome for a in live.attempts] == ["malformed", "ok"] and server.request_count == 2
    replay = await call_structured(
        make_client(profile, cache_dir=tmp_path),
        MESSAGES,
        Proposal,
        profile=profile,
        kind="propose",
        salt="x",
    )
    assert server.request_count == 2
    assert [a.outcome for a in replay.attempts] == ["malformed", "ok"]
    assert all(a.cache_hit for a in replay.attempts)
    assert replay.value == live.value


# --------------------------------------------------------------------------- secrets


@CLIENTS
# The second key has no provider-like shape, so only the registry of configured keys can catch it.
@pytest.mark.parametrize("key", [CANARY, "plain-canary-0123456789"])
async def test_api_key_never_leaks(
    server: FakeOpenAIServer, client_kind: str, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, key)
    profile = make_profile(server, client_kind)
    client = make_client(profile)
    server.configure(fault_script=["rate_limit", "server_error", "disconnect", "malformed"])
    ok = await call_structured(client, MESSAGES, Proposal, profile=profile, kind="propose")
    assert ok.ok and key not in _records_text(ok.attempts)

    # The fake provider echoes the key in its 401 message, as real providers do.
    server.configure(fault_script=["auth_error"])
    with pytest.raises(ModelCallError) as info:
        await call_structured(client, MESSAGES, Proposal, profile=profile, kind="propose")
    assert server.requests[-1]["authorization"] == f"Bearer {key}"  # the key really was sent
    error = info.value
    rendered = "".join(traceback.format_exception(error)) + repr(error) + _records_text(error.attempts)
    assert "Incorrect API key" in rendered  # the provider message is kept ...
    assert key not in rendered  # ... without the key
    assert error.attempts[-1].error_kind == "other"
    assert error.__cause__ is None and error.__suppress_context__
    assert all(key not in json.dumps(r["body"]) for r in server.requests)


def test_scrub_removes_registered_and_key_shaped_values() -> None:
    text = scrub(f"failed with key {CANARY} and Bearer abc.def and sk-proj-ABCDEFGHIJKLMNOP")
    assert CANARY not in text and "abc.def" not in text and "ABCDEFGHIJKLMNOP" not in text
    assert len(scrub("x" * 1000)) == 300


# --------------------------------------------------------------------------- cost, config, imports


async def test_cost_from_litellm_price_map(server: FakeOpenAIServer) -> None:
    import litellm

    profile = make_profile(server, "litellm", model="openai/gpt-4o-mini")
    result = await call_structured(make_client(profile), MESSAGES, Proposal, profile=profile, kind="propose")
    (attempt,) = result.attempts
    prompt_cost, completion_cost = litellm.cost_per_token(
        model="openai/gpt-4o-mini",
        prompt_tokens=attempt.prompt_tokens,
        completion_tokens=attempt.completion_tokens,
    )
    assert attempt.cost_usd == pytest.approx(prompt_cost + completion_cost) and attempt.cost_usd > 0


def test_cost_from_profile_price_or_zero(server: FakeOpenAIServer) -> None:
    priced = make_profile(server, "openai", price_per_1k_input=0.5, price_per_1k_output=2.0)
    assert cost_usd(priced, 1000, 500) == pytest.approx(1.5)
    assert cost_usd(make_profile(server, "openai", model="openai/Qwen/Qwen3-14B"), 1000, 500) == 0.0


def test_importing_model_client_does_not_import_litellm() -> None:
    code = "import sys, assembly.llm.clients; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


async def test_litellm_client_rejects_tools() -> None:
    client = LiteLLMChatCompletionClient("openai/fake-model", api_base="http://127.0.0.1:9/v1")
    # AssistantAgent checks this flag before offering tools to a model.
    assert client.model_info["function_calling"] is False
    assert client.model_info["structured_output"] is True
    tool: ToolSchema = {
        "name": "lookup",
        "description": "look up a fact",
        "parameters": {"type": "object", "properties": {}},
    }
    with pytest.raises(ValueError, match="tools"):
        await client.create(MESSAGES, tools=[tool])


def test_models_yaml_loads() -> None:
    models = load_models_file(ROOT / "configs" / "models.yaml")
    assert models.default in models.profiles
    clients = {p.client for p in models.profiles.values()}
    assert clients == {"litellm", "openai"}
    for name, profile in models.profiles.items():
        assert profile.name == name
    local = next(p for p in models.profiles.values() if p.api_base == "http://127.0.0.1:8000/v1")
    assert local.provider_model == "Qwen/Qwen3-14B" and local.api_key_env is None
    assert models.default is not None and models.profiles[models.default].name == models.default


def test_profile_kind_fallbacks() -> None:
    profile = ModelProfile(model="openai/m", temperature={"default": 0.7, "vote": 0.0}, max_tokens={"speak": 200})
    assert profile.temperature_for("vote") == 0.0
    assert profile.temperature_for("speak") == 0.7
    assert profile.max_tokens_for("speak") == 200 and profile.max_tokens_for("vote") is None


@pytest.mark.parametrize(
    "bad",
    [
        {"api_key": CANARY},
        {"api_key_env": CANARY},
        {"api_key_env": "not a name"},
        {"temperature": {"speek": 0.5}},
        {"temperature": {"default": 3.0}},
        {"max_tokens": {"default": 0}},
        {"model": "gpt-4o-mini"},
        {"client": "anthropic"},
        {"unknown_field": 1},
    ],
)
def test_profile_validation_rejects(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        ModelProfile(**{"model": "openai/m", **bad})
    assert CANARY not in str(info.value)


def test_missing_key_env_is_reported_without_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV)
    profile = ModelProfile(name="p", model="openai/m", api_key_env=KEY_ENV)
    with pytest.raises(KeyError, match=KEY_ENV):
        make_client(profile)


# --------------------------------------------------------------------------- the cache's key


@given(
    # Any text, including the splice's own placeholder as a member might write it.
    texts=st.lists(st.text(max_size=40) | st.sampled_from([SLOT, json.dumps(SLOT), "\x00"]), min_size=1, max_size=3),
    salt=st.text(max_size=20),
    temperature=st.none() | st.floats(0, 2),
    mode=st.sampled_from(["json_schema", "json_object"]),
)
@settings(max_examples=60, deadline=None)
def test_the_cache_key_is_autogens_own(
    texts: list[str], salt: str, temperature: float | None, mode: Literal["json_schema", "json_object"]
) -> None:
    """Our key splices the format's pre-sorted text into the key's serialization; it must
    be the very key autogen's ChatCompletionCache computes, so caches written before
    still replay (autogen's own `_check_cache` is the oracle)."""
    from autogen_core import InMemoryStore
    from autogen_ext.models.cache import ChatCompletionCache

    from assembly.llm.response_cache import GroupCommitStore, ResponseCache
    from assembly.llm.response_format import structured_format

    messages: list[LLMMessage] = [SystemMessage(content=texts[0])]
    messages += [UserMessage(content=t, source="user") for t in texts[1:]]
    args: dict[str, Any] = {"response_format": structured_format(Proposal, mode), SALT_ARG: salt}
    if temperature is not None:
        args["temperature"] = temperature
    ours = ResponseCache(cast(ChatCompletionClient, None), GroupCommitStore(InMemoryStore()))
    theirs = ChatCompletionCache(cast(ChatCompletionClient, None), InMemoryStore())
    key = theirs._check_cache(messages, [], None, args)[1]
    assert ours._check_cache(messages, [], None, args)[1] == key
    assert ours._check_cache(messages, [], None, args)[1] == key  # texts escaped before, now kept


@pytest.mark.parametrize(
    ("model", "api_base", "lean"),
    [
        ("openai/fake-model", True, True),  # a self-hosted OpenAI-compatible server
        ("hosted_vllm/fake-model", True, True),
        ("deepseek/fake-model", True, False),  # a provider litellm translates for
        ("anthropic/claude-x", False, False),
        ("openai/gpt-4o-mini", False, False),  # api.openai.com: litellm's per-model parameter rules
    ],
)
def test_the_litellm_path_sends_openai_compatible_servers_the_lean_transport(
    model: str, api_base: bool, lean: bool
) -> None:
    from assembly.llm.openai_http import OpenAICompatClient
    from assembly.llm.transport import provider_client

    profile = ModelProfile(
        name=f"route-{next(_names)}",
        model=model,
        client="litellm",
        api_base="http://127.0.0.1:9/v1" if api_base else None,
        api_key_env=KEY_ENV,
    )
    client = provider_client(profile)
    assert isinstance(client, OpenAICompatClient) == lean
    assert isinstance(client, LiteLLMChatCompletionClient) == (not lean)
