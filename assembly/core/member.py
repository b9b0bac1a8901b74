"""The member interface: one `act(view, request) -> TurnResult` for every policy.

Sim, LLM and scripted members all implement it and return the same action types,
so the engine never knows which it is talking to.

Cancellation contract: the engine enforces each turn's deadline by cancelling the
task running `act`. A member must let `asyncio.CancelledError` propagate (it may
use it to cancel its own backend, e.g. an autogen CancellationToken); a late answer
is discarded by the engine and recorded as a `turn_timeout`.
"""

from __future__ import annotations

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


@runtime_checkable
class Member(Protocol):
    id: str

    async def act(self, view: View, request: Request) -> TurnResult: ...


class InstantMember(Member, Protocol):
    """A member that may answer without waiting for anything, e.g. a sim member on
    virtual time. The engine asks `act_now` first, in the phase's own pass of the
    event loop, with no task and no deadline timer of its own (a tenth of what a sim
    turn costs); None means this turn needs `act` after all (real-time latency).
    A member whose `act_now` answers must give the same answer `act` would."""

    def act_now(self, view: View, request: Request) -> TurnResult | None: ...
