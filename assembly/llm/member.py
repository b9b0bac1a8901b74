"""LLM members: autogen-agentchat `AssistantAgent`s behind the member interface.

Each member owns its agents (agents are not coroutine-safe, so none is shared): one
per call kind (phase), rebuilt when the protocol's system message or output model for
that kind changes (e.g. new ballot candidates). A turn is:

1. the protocol renders the member's view into a system and a user message, and
   names the output model (`Protocol.prompt`, `Protocol.output_model`); the output
   model is the agent's `output_content_type`, sent as a `response_format` json_schema;
2. the agent's history is reset (the view *is* the context), and the user message is
   its only input;
3. the agent's model client (`_TurnClient`) runs the whole turn through
   `model_client.call_structured`: provider errors (429 with retry-after, 5xx,
   connection, timeout) are retried with backoff up to the profile's `retries`,
   unusable answers are re-asked up to the scenario's limit, and every HTTP attempt
   becomes an `Attempt` on the turn's event (tokens, cost, cache hit, latency);
4. the answer comes back as the protocol's action type, so the engine cannot tell an
   LLM member from a sim member.

Deadlines: the engine cancels the task running `act` at the turn's deadline. The
member cancels its autogen `CancellationToken` (aborting the HTTP request in flight)
and lets the cancellation propagate, so the engine records a `turn_timeout` and the
round goes on. A failure never raises out of `act`: it becomes a `malformed` or
`provider_error` turn, which the protocols count as an abstention.

Clients are shared by the members of one run (one connection pool per profile) and
closed when the last of them closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import re
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import StructuredMessage, TextMessage
from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient, CreateResult, LLMMessage, RequestUsage
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel, ValidationError

from assembly.core.actions import Action
from assembly.core.events import Attempt, SeatedMember
from assembly.core.member import Member, Request, TurnResult
from assembly.core.protocol import MemberFactory, Protocol
from assembly.core.spec import ScenarioBase
from assembly.core.view import View
from assembly.llm import setup as llm_setup
from assembly.llm.client import (
    AttemptRecord,
    CallResult,
    DelegatingClient,
    ModelCallError,
    call_structured,
    cost_usd,
    make_client,
    scrub,
)
from assembly.llm.profiles import ModelProfile
from assembly.llm.setup import LLMSetup, ModelSetupError
from assembly.scenario.model import Scenario

# ----------------------------------------------------------------------------- the agent's model client


class _TurnFailed(Exception):
    """Raised through the agent when a turn ends without a usable answer."""

    def __init__(self, result: CallResult[Any]) -> None:
        super().__init__("no usable answer")
        self.result = result


@dataclass
class _Turn:
    kind: str = ""
    salt: str = ""
    profile: ModelProfile | None = None
    max_malformed_retries: int = 3
    result: CallResult[Any] | None = None


class _TurnClient(DelegatingClient):
    """The model client an agent sees: one `create` is one whole member turn.

    AssistantAgent makes a single model call per turn and parses it with its
    `output_content_type`; retries, re-asks and attempt records happen here, below the
    agent, through `call_structured` on the run's shared (rate-limited, cached) client.
    """

    def __init__(self, inner: ChatCompletionClient) -> None:
        self.inner = inner
        self.turn = _Turn()

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
        turn = self.turn
        if not (isinstance(json_output, type) and issubclass(json_output, BaseModel)) or turn.profile is None:
            raise TypeError("an LLM member's agent must ask for a pydantic output type")
        result = await call_structured(
            self.inner,
            messages,
            json_output,
            profile=turn.profile,
            kind=turn.kind,
            salt=turn.salt,
            cancellation_token=cancellation_token,
            max_malformed_retries=turn.max_malformed_retries,
        )
        turn.result = result
        if not result.ok or result.content is None:
            raise _TurnFailed(result)
        usage = RequestUsage(
            prompt_tokens=sum(a.prompt_tokens for a in result.attempts),
            completion_tokens=sum(a.completion_tokens for a in result.attempts),
        )
        return CreateResult(
            finish_reason="stop", content=result.content, usage=usage, cached=all(a.cache_hit for a in result.attempts)
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
    ) -> AsyncGenerator[str | CreateResult, None]:
        async def one() -> AsyncGenerator[str | CreateResult, None]:
            yield await self.create(
                messages,
                tools=tools,
                tool_choice=tool_choice,
                json_output=json_output,
                extra_create_args=extra_create_args,
                cancellation_token=cancellation_token,
            )

        return one()

    async def close(self) -> None:
        return None  # the shared client belongs to the run's pool


# ----------------------------------------------------------------------------- clients shared by a run


# Connections one HTTP client keeps open. httpcore scans its whole connection pool
# for every request it places (encode/httpx#3215), so one pool of hundreds of
# connections spends seconds of CPU per round; a profile allowed more concurrent
# requests gets several clients (shards) instead, each with a small pool. They share
# the profile's rate limiter and response cache.
CONNECTIONS_PER_CLIENT = 16


class _ClientPool:
    """Model clients per profile for the members of one run; closed with the last member."""

    def __init__(self, key: tuple[str, int], cache_dir: Path) -> None:
        self.key = key
        self.cache_dir = cache_dir
        self.clients: dict[str, list[ChatCompletionClient]] = {}
        self.handed_out: dict[str, int] = {}
        self.users = 0

    def client(self, profile: ModelProfile) -> ChatCompletionClient:
        shards = self.clients.get(profile.name)
        if shards is None:
            count = -(-profile.max_concurrent // CONNECTIONS_PER_CLIENT) if profile.client == "openai" else 1
            try:
                size = min(profile.max_concurrent, CONNECTIONS_PER_CLIENT)
                shards = [make_client(profile, self.cache_dir, pool_size=size) for _ in range(count)]
            except KeyError as exc:  # the profile's key variable is not set
                raise ModelSetupError(str(exc.args[0]) if exc.args else str(exc)) from None
            # The first price lookup may import litellm, and the first request imports
            # the OpenAI SDK's resources: seconds that block the event loop, so spend
            # them now, before the run starts, never inside a timed turn.
            cost_usd(profile, 0, 0)
            importlib.import_module("openai.resources")
            self.clients[profile.name] = shards
        n = self.handed_out.get(profile.name, 0)
        self.handed_out[profile.name] = n + 1
        return shards[n % len(shards)]

    async def release(self) -> None:
        self.users -= 1
        if self.users > 0:
            return
        _POOLS.pop(self.key, None)
        clients = [c for shards in self.clients.values() for c in shards]
        self.clients = {}
        for client in clients:
            # Best effort: the run's results are already written.
            with contextlib.suppress(Exception):
                await client.close()


_POOLS: dict[tuple[str, int], _ClientPool] = {}


def _pool(run_dir: Path, cache_dir: Path) -> _ClientPool:
    # HTTP clients are bound to the event loop that uses them, so pools are per loop too.
    try:
        loop = id(asyncio.get_running_loop())
    except RuntimeError:
        loop = 0
    key = (str(run_dir.resolve()), loop)
    pool = _POOLS.get(key)
    if pool is None or pool.cache_dir != cache_dir:
        pool = _POOLS[key] = _ClientPool(key, cache_dir)
        llm_setup.note_cache(run_dir, cache_dir)
        llm_setup.register_env_secrets()
    return pool


# ----------------------------------------------------------------------------- the member


@dataclass
class _Agent:
    key: tuple[str, type[Action]]
    agent: AssistantAgent
    client: _TurnClient


@dataclass
class _Settings:
    profile: ModelProfile
    max_malformed_retries: int


def _agent_name(member_id: str) -> str:
    name = re.sub(r"\W", "_", member_id)
    return name if name.isidentifier() else f"m_{name}"


class LLMMember:
    """A seat played by a model, through autogen-agentchat agents (see the module doc)."""

    def __init__(
        self,
        seat: SeatedMember,
        protocol: Protocol,
        profile: ModelProfile,
        pool: _ClientPool,
        max_malformed_retries: int = 3,
    ) -> None:
        self.id = seat.id
        self.seat = seat
        self.protocol = protocol
        self.profile = profile
        self.pool = pool
        self.client = pool.client(profile)
        pool.users += 1
        self.max_malformed_retries = max_malformed_retries
        self._agents: dict[str, _Agent] = {}
        self._settings: dict[tuple[str, str], _Settings] = {}
        self._closed = False

    @property
    def model_record(self) -> dict[str, Any]:
        """The profile as the transcript records it (`run_started.models`); holds no key."""
        return self.profile.model_dump(mode="json")

    async def act(self, view: View, request: Request) -> TurnResult:
        prompt = self.protocol.prompt(view, request)
        output = self.protocol.output_model(view, request)
        entry = self._agent(request.phase, prompt.system, output)
        settings = self._settings_for(request)
        entry.client.turn = _Turn(
            kind=request.phase,
            salt=f"{self.id}|round={request.round}|{request.phase}",
            profile=settings.profile,
            max_malformed_retries=settings.max_malformed_retries,
        )
        token = CancellationToken()
        try:
            await entry.agent.on_reset(token)  # no history: the view is the whole context
            response = await entry.agent.on_messages([TextMessage(content=prompt.user, source="user")], token)
        except asyncio.CancelledError:
            token.cancel()  # the deadline passed: abort the request in flight, discard any answer
            raise
        except _TurnFailed as failed:
            return _failed(failed.result.attempts)
        except ModelCallError as exc:  # not retryable (auth, bad request, unknown model)
            return TurnResult(
                action=None, status="provider_error", attempts=_attempts(exc.attempts), detail=scrub(str(exc), 500)
            )
        except Exception as exc:  # a member must never end the run; record what happened
            done = entry.client.turn.result
            return TurnResult(
                action=None,
                status="provider_error",
                attempts=_attempts(done.attempts) if done else [],
                detail=scrub(f"member raised {type(exc).__name__}: {exc}", 500),
            )
        attempts = _attempts(entry.client.turn.result.attempts if entry.client.turn.result else [])
        message = response.chat_message
        if not isinstance(message, StructuredMessage) or not isinstance(message.content, Action):
            return TurnResult(
                action=None, status="malformed", attempts=attempts, detail="the agent returned no structured answer"
            )
        try:
            action = _as_action(message.content, request.action)
        except ValidationError as exc:
            return TurnResult(
                action=None,
                status="malformed",
                attempts=attempts,
                detail=scrub(f"answer is not a valid {request.action.__name__}: {exc}", 500),
            )
        return TurnResult(action=action, status="ok", attempts=attempts)

    def _agent(self, phase: str, system: str, output: type[Action]) -> _Agent:
        entry = self._agents.get(phase)
        key = (system, output)
        if entry is None or entry.key != key:
            client = _TurnClient(self.client)
            agent = AssistantAgent(
                _agent_name(self.id),
                model_client=client,
                system_message=system,
                output_content_type=output,
                description=f"assembly seat {self.id}",
            )
            entry = self._agents[phase] = _Agent(key, agent, client)  # type: ignore[arg-type]
        return entry

    def _settings_for(self, request: Request) -> _Settings:
        """The profile and malformed-retry budget for one call kind.

        A protocol may pass generation defaults in `params["generation"]` (the consensus
        game passes the paper's temperature, max tokens and attempts per phase). A
        profile that sets a value for this call kind by name wins; otherwise the
        protocol's default beats the profile's `default`."""
        gen = request.params.get("generation")
        cache_key = (request.phase, repr(gen))
        cached = self._settings.get(cache_key)
        if cached is not None:
            return cached
        profile, retries = self.profile, self.max_malformed_retries
        if isinstance(gen, Mapping):
            temperature, max_tokens = dict(profile.temperature), dict(profile.max_tokens)
            if gen.get("temperature") is not None and request.phase not in temperature:
                temperature[request.phase] = float(gen["temperature"])
            if gen.get("max_tokens") is not None and request.phase not in max_tokens:
                max_tokens[request.phase] = int(gen["max_tokens"])
            profile = profile.model_copy(update={"temperature": temperature, "max_tokens": max_tokens})
            if gen.get("attempts") is not None:
                retries = max(0, int(gen["attempts"]) - 1)
        settings = self._settings[cache_key] = _Settings(profile, retries)
        return settings

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self.pool.release()


def _as_action(content: Action, wanted: type[Action]) -> Action:
    """The protocol's action type. Output models that narrow it by subclassing are kept
    as they are; the others (closed-object variants) are converted and validated."""
    if isinstance(content, wanted):
        return content
    return wanted.model_validate(content.model_dump(mode="json"))


def _attempts(records: Sequence[AttemptRecord]) -> list[Attempt]:
    out = []
    for r in records:
        cancelled = r.outcome == "cancelled"
        out.append(
            Attempt(
                attempt=r.attempt + 1,
                outcome="provider_error" if cancelled else r.outcome,  # type: ignore[arg-type]
                error_kind="cancelled" if cancelled else r.error_kind,
                detail=r.detail or None,
                model=r.model,
                prompt_tokens=r.prompt_tokens,
                completion_tokens=r.completion_tokens,
                cost_usd=round(r.cost_usd, 10),
                cache_hit=r.cache_hit,
                timing={"latency_s": r.latency_s},
            )
        )
    return out


def _failed(records: Sequence[AttemptRecord]) -> TurnResult:
    last = records[-1] if records else None
    status: Literal["malformed", "provider_error"] = (
        "malformed" if last and last.outcome == "malformed" else "provider_error"
    )
    what = "unusable answers" if status == "malformed" else "provider errors"
    detail = f"gave up after {len(records)} attempts ({what})"
    if last is not None and last.error_kind:
        detail += f"; last: {last.error_kind}" + (f": {last.detail}" if last.detail else "")
    return TurnResult(action=None, status=status, attempts=_attempts(records), detail=scrub(detail, 500))


# ----------------------------------------------------------------------------- factories


@dataclass
class _Factory:
    """Builds LLM members from one setup (see `factory_for`)."""

    setup: LLMSetup | None = None  # None: the process's active setup at build time
    prefer_recorded: bool = True
    _resolved: dict[str, LLMSetup] = field(default_factory=dict)

    def __call__(self, seat: SeatedMember, protocol: Protocol, scenario: ScenarioBase, run_dir: Path) -> Member:
        if type(protocol).prompt is Protocol.prompt:
            raise ModelSetupError(f"protocol {protocol.name!r} cannot seat LLM members: it has no prompt renderer")
        setup = self._setup_for(run_dir)
        profile = setup.profile(seat.profile)
        pool = _pool(run_dir, setup.cache_for(run_dir))
        return LLMMember(seat, protocol, profile, pool, scenario.members.llm.max_malformed_retries)

    def _setup_for(self, run_dir: Path) -> LLMSetup:
        base = self.setup or llm_setup.active()
        key = f"{id(base)}|{run_dir}"
        setup = self._resolved.get(key)
        if setup is None:
            setup = base
            # Resuming a run in place: the profiles it recorded win, so it goes on with
            # the clients it started with (the run folder has a transcript only then).
            mine = llm_setup.recorded(run_dir) if self.prefer_recorded else None
            if mine is not None:
                setup = setup.with_recorded(mine)
            self._resolved[key] = setup
        return setup


_ACTIVE_FACTORY = _Factory()


def member_factory(seat: SeatedMember, protocol: Protocol, scenario: Scenario, run_dir: Path) -> Member:
    """The runner's factory for non-sim seats: an LLM member on the active setup
    (`llm_setup.activate`; by default configs/models.yaml, caching in the run folder)."""
    return _ACTIVE_FACTORY(seat, protocol, scenario, run_dir)


def factory_for(setup: LLMSetup) -> MemberFactory:
    """A member factory bound to one setup, independent of the process's active one."""
    return _Factory(setup)


def replay_factory(source_dir: Path) -> MemberFactory:
    """LLM members for `assembly rerun`: the source run's recorded profiles and its
    response cache, so every answer it got is replayed without calling anyone."""
    mine = llm_setup.recorded(source_dir)
    if mine is None:
        raise ModelSetupError(f"{source_dir}: the run recorded no model profiles, so its LLM members cannot be rebuilt")
    return _Factory(mine, prefer_recorded=False)
