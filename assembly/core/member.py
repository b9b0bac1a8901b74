"""The member interface: one `act(view, request) -> TurnResult` for every policy.

Sim, LLM and scripted members all implement it and return the same action types,
so the engine never knows which it is talking to.

Cancellation contract: the engine enforces each turn's deadline by cancelling the
task running `act`. A member must let `asyncio.CancelledError` propagate (it may
use it to cancel its own backend, e.g. an autogen CancellationToken); a late answer
is discarded by the engine and recorded as a `turn_timeout`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from assembly.core.actions import Action
from assembly.core.events import Attempt
from assembly.core.view import View

Phase = str  # "speak" | "synthesize" | "vote" | "propose" | "stop_vote" | ...


@dataclass(frozen=True, slots=True)
class Request:
    """What the protocol asks of a member this turn."""

    round: int
    phase: Phase
    action: type[Action]
    deadline_s: float  # the member's time budget, which the engine enforces
    # Phase-specific knobs that are not knowledge (e.g. which ballot fields the
    # decision rule reads); never private information.
    params: dict[str, object] = field(default_factory=dict)


@dataclass(slots=True)
class TurnResult:
    """A member's answer: an action, or a recorded failure to produce one."""

    action: Action | None
    status: Literal["ok", "malformed", "provider_error"] = "ok"
    attempts: list[Attempt] = field(default_factory=list)
    detail: str | None = None
    # Simulated latency (sim members in virtual time). When set, the engine accounts
    # this instead of the measured time, and treats it beyond the deadline as a timeout.
    sim_latency_s: float | None = None


@dataclass
class TurnClock:
    """How long one member turn has waited for the tool's own capacity.

    A member's deadline covers only the member: time its requests spend queued behind
    the tool's own limits (a model profile's `max_concurrent` or `rpm`) is the tool's,
    not the member's. The engine gives every turn a clock (`TURN_CLOCK`, set in the
    turn's task), code that makes a turn wait for the tool's capacity wraps the wait in
    `queued()`, and the engine moves that turn's deadline back by the time queued and
    records it apart (`timing.queued_s`)."""

    _queued_s: float = 0.0
    _since: float | None = None  # start of the wait in progress (time.monotonic)

    def queued_s(self, now: float | None = None) -> float:
        """Seconds queued so far, including a wait still in progress."""
        if self._since is None:
            return self._queued_s
        return self._queued_s + ((time.monotonic() if now is None else now) - self._since)

    @contextmanager
    def queued(self) -> Iterator[None]:
        if self._since is not None:  # already counted by an outer wait
            yield
            return
        self._since = time.monotonic()
        try:
            yield
        finally:
            self._queued_s += time.monotonic() - self._since
            self._since = None


# The clock of the member turn the current asyncio task runs (None outside a turn).
TURN_CLOCK: ContextVar[TurnClock | None] = ContextVar("assembly_turn_clock", default=None)


@runtime_checkable
class Member(Protocol):
    id: str

    async def act(self, view: View, request: Request) -> TurnResult: ...
