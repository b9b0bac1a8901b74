"""LLM members: seats played by a model through autogen-agentchat agents, behind the member interface.

The engine cannot tell an LLM member from a sim member: both turn a view into the
protocol's action type, under the same deadline and cancellation contract. This
module also implements the `MemberFactory` the core declares, bound explicitly to
one run's `LLMSetup` (`factory_for`, or `replay_factory` for reruns), so runs on
different setups can share a process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import TextMessage
from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient, CreateResult, RequestUsage
from pydantic import ValidationError

from assembly.core.actions import Action
from assembly.core.events import Attempt, SeatedMember
from assembly.core.member import Member, Request, TurnResult
from assembly.core.protocol import MemberFactory, Protocol
from assembly.core.redaction import has_redacted_credentials, redact_url
from assembly.core.spec import ScenarioBase
from assembly.core.view import View
from assembly.llm.keys import register_env_secrets, scrub
from assembly.llm.profiles import ModelProfile
from assembly.llm.run_clients import RunClients
from assembly.llm.setup import LLMSetup, ModelSetupError, note_cache, recorded
from assembly.llm.structured import AttemptRecord, CallResult, ModelCallError, call_structured
from assembly.llm.wrappers import Chunk, CreateCall, DelegatingClient

# ----------------------------------------------------------------------------- the agent's model client


class _TurnFailed(Exception):
    """Raised through the agent when a turn ends without a usable answer."""

    def __init__(self, result: CallResult[Action]) -> None:
        super().__init__("no usable answer")
        self.result = result


@dataclass
class _Turn:
    kind: str = ""
    salt: str = ""
    profile: ModelProfile | None = None
    output: type[Action] | None = None
    max_malformed_retries: int = 3
    result: CallResult[Action] | None = None  # holds the parsed answer, which the member uses as is


class _TurnClient(DelegatingClient):
    """The model client an agent sees: one `create` is one whole member turn.

    AssistantAgent makes a single model call per turn; retries, re-asks and attempt
    records happen here, below the agent, through `call_structured` on the run's
    shared (rate-limited, cached) client. The answer is parsed there, once, into the
    turn's output type and kept on the turn; the agent itself is given no output type,
    so it passes the text on without parsing it again.
    """

    def __init__(self, inner: ChatCompletionClient) -> None:
        super().__init__(inner)
        self.turn = _Turn()

    async def on_create(self, call: CreateCall) -> CreateResult:
        turn = self.turn
        if turn.profile is None or turn.output is None:
            raise TypeError("an LLM member's agent called its model outside a turn")
        result = await call_structured(
            self.inner,
            call.messages,
            turn.output,
            profile=turn.profile,
            kind=turn.kind,
            salt=turn.salt,
            cancellation_token=call.cancellation_token,
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

    async def on_stream(self, call: CreateCall) -> AsyncGenerator[Chunk, None]:
        yield await self.on_create(call)

    async def close(self) -> None:
        return None  # the shared client belongs to the run's clients


# ----------------------------------------------------------------------------- the member


@dataclass
class _Agent:
    system: str
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
    """A seat played by a model, through autogen-agentchat agents.

    Each member owns its agents (agents are not coroutine-safe, so none is shared):
    one per call kind (phase), rebuilt when the protocol's system message for that
    kind changes. A turn is:

    1. the protocol renders the member's view into a system and a user message, and
       names the output model (`Protocol.prompt`, `Protocol.output_model`), sent as
       a `response_format` json_schema;
    2. the agent's history is reset (the view *is* the context), and the user message
       is its only input;
    3. the agent's model client (`_TurnClient`) runs the whole turn through
       `structured.call_structured`: provider errors are retried with backoff up to
       the profile's `retries`, unusable answers are re-asked up to the scenario's
       limit, and every HTTP attempt becomes an `Attempt` on the turn's event;
    4. the parsed answer comes back as the protocol's action type.

    Deadlines: the engine cancels the task running `act` at the turn's deadline. The
    member cancels its autogen `CancellationToken` (aborting the HTTP request in
    flight) and lets the cancellation propagate, so the engine records a
    `turn_timeout` and the round goes on. A failure never raises out of `act`: it
    becomes a `malformed` or `provider_error` turn, which the protocols count as an
    abstention.
    """

    def __init__(
        self,
        seat: SeatedMember,
        protocol: Protocol,
        profile: ModelProfile,
        clients: RunClients,
        max_malformed_retries: int = 3,
    ) -> None:
        self.id = seat.id
        self.seat = seat
        self.protocol = protocol
        self.profile = profile
        self.clients = clients
        self.client = clients.client(profile)
        self.max_malformed_retries = max_malformed_retries
        self._agents: dict[str, _Agent] = {}
        self._settings: dict[tuple[str, str], _Settings] = {}
        self._closed = False

    @property
    def model_record(self) -> dict[str, Any]:
        """The profile as the transcript records it (`run_started.models`); holds no key,
        not even one written into the api_base URL."""
        record = self.profile.model_dump(mode="json")
        return {**record, "api_base": redact_url(self.profile.api_base)}

    async def act(self, view: View, request: Request) -> TurnResult:
        prompt = self.protocol.prompt(view, request)
        entry = self._agent(request.phase, prompt.system)
        settings = self._settings_for(request)
        turn = entry.client.turn = _Turn(
            kind=request.phase,
            salt=f"{self.id}|round={request.round}|{request.phase}",
            profile=settings.profile,
            output=self.protocol.output_model(view, request),
            max_malformed_retries=settings.max_malformed_retries,
        )
        token = CancellationToken()
        try:
            await entry.agent.on_reset(token)  # no history: the view is the whole context
            # The agent's stream is read to its end, not left at its `Response` as
            # `on_messages` leaves it: an async generator dropped before its end is
            # closed by asyncio's finalizer hook, which wakes the event loop through its
            # self-pipe (a system call) and starts a task to close it, every turn.
            async with aclosing(
                entry.agent.on_messages_stream([TextMessage(content=prompt.user, source="user")], token)
            ) as stream:
                async for _ in stream:
                    pass
        except asyncio.CancelledError:
            token.cancel()  # the deadline passed: abort the request in flight, discard any answer
            raise
        except Exception as exc:  # a member must never end the run; record what happened
            return _unanswered(exc, turn.result)
        return _answered(turn.result, request.action)

    def _agent(self, phase: str, system: str) -> _Agent:
        entry = self._agents.get(phase)
        if entry is None or entry.system != system:
            client = _TurnClient(self.client)
            agent = AssistantAgent(
                _agent_name(self.id),
                model_client=client,
                system_message=system,
                description=f"assembly seat {self.id}",
            )
            entry = self._agents[phase] = _Agent(system, agent, client)
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
            await self.clients.release()


def _answered(done: CallResult[Action] | None, wanted: type[Action]) -> TurnResult:
    """The turn for an agent that returned: the answer `call_structured` parsed, as `wanted`."""
    attempts = _attempts(done.attempts if done else [])
    if done is None or not isinstance(done.value, Action):
        return TurnResult(
            action=None, status="malformed", attempts=attempts, detail="the agent returned no structured answer"
        )
    try:
        action = _as_action(done.value, wanted)
    except ValidationError as exc:
        return TurnResult(
            action=None,
            status="malformed",
            attempts=attempts,
            detail=scrub(f"answer is not a valid {wanted.__name__}: {exc}", 500),
        )
    return TurnResult(action=action, status="ok", attempts=attempts)


def _unanswered(exc: Exception, done: CallResult[Action] | None) -> TurnResult:
    """The turn for an agent that raised."""
    if isinstance(exc, _TurnFailed):
        return _failed(exc.result.attempts)
    if isinstance(exc, ModelCallError):  # not retryable (auth, bad request, unknown model)
        return TurnResult(
            action=None, status="provider_error", attempts=_attempts(exc.attempts), detail=scrub(str(exc), 500)
        )
    return TurnResult(
        action=None,
        status="provider_error",
        attempts=_attempts(done.attempts) if done else [],
        detail=scrub(f"member raised {type(exc).__name__}: {exc}", 500),
    )


def _as_action(content: Action, wanted: type[Action]) -> Action:
    """The protocol's action type. Output models that narrow it by subclassing are kept
    as they are; the others (closed-object variants) are converted, not parsed again."""
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
    """Builds LLM members from one setup (see `factory_for`); it holds the clients of the
    runs it builds members for, one `RunClients` per run folder and event loop."""

    setup: LLMSetup
    prefer_recorded: bool = True
    _resolved: dict[str, LLMSetup] = field(default_factory=dict)
    _clients: dict[tuple[str, int], RunClients] = field(default_factory=dict)

    def __call__(self, seat: SeatedMember, protocol: Protocol, scenario: ScenarioBase, run_dir: Path) -> Member:
        if type(protocol).prompt is Protocol.prompt:
            raise ModelSetupError(f"protocol {protocol.name!r} cannot seat LLM members: it has no prompt renderer")
        setup = self._setup_for(run_dir)
        profile = setup.seat_profile(seat.profile, scenario.population.size)
        if self.prefer_recorded and has_redacted_credentials(profile.api_base):
            raise ModelSetupError(
                f"profile {profile.name!r} had credentials in its api_base, which a run never stores; "
                "define the profile with its api_base in the models file (better: put the key in "
                "the environment variable named by api_key_env)"
            )
        clients = self._clients_for(run_dir, setup.cache_for(run_dir))
        return LLMMember(seat, protocol, profile, clients, scenario.members.llm.max_malformed_retries)

    def _setup_for(self, run_dir: Path) -> LLMSetup:
        key = str(run_dir)
        setup = self._resolved.get(key)
        if setup is None:
            setup = self.setup
            # Resuming a run in place: the profiles it recorded win, so it goes on with
            # the clients it started with (the run folder has a transcript only then).
            mine = recorded(run_dir, setup) if self.prefer_recorded else None
            if mine is not None:
                setup = setup.with_recorded(mine)
            self._resolved[key] = setup
        return setup

    def _clients_for(self, run_dir: Path, cache_dir: Path) -> RunClients:
        # HTTP clients are bound to the event loop that uses them, so a run's clients are per loop too.
        try:
            loop = id(asyncio.get_running_loop())
        except RuntimeError:
            loop = 0
        key = (str(run_dir.resolve()), loop)
        clients = self._clients.get(key)
        if clients is None or clients.cache_dir != cache_dir:

            def forget() -> None:
                self._clients.pop(key, None)

            clients = self._clients[key] = RunClients(cache_dir, on_closed=forget)
            note_cache(run_dir, cache_dir)
            register_env_secrets()
        return clients


def factory_for(setup: LLMSetup) -> MemberFactory:
    """The member factory for LLM seats on `setup` (its profiles and response cache).

    Resuming a run in place, the profiles the run recorded win over the setup's."""
    return _Factory(setup)


def replay_factory(source_dir: Path, max_concurrent: int | None = None) -> MemberFactory:
    """LLM members for `assembly rerun`: the source run's recorded profiles and its
    response cache, so every answer it got is replayed without calling anyone.
    `max_concurrent` (--max-concurrent) caps the recorded profiles' concurrency."""
    mine = recorded(source_dir)
    if mine is None:
        raise ModelSetupError(f"{source_dir}: the run recorded no model profiles, so its LLM members cannot be rebuilt")
    return _Factory(dataclasses.replace(mine, max_concurrent=max_concurrent), prefer_recorded=False)
