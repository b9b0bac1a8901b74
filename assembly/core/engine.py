"""The engine: drives rounds, runs members concurrently under real deadlines.

AutoGen's team classes do not fit deliberation rounds (one speaker at a time, and a
timeout that is only checked when a message arrives), so the engine drives rounds
itself: every asked member runs as its own task, the phase waits at most until the
deadline, and whoever is still running then is cancelled and recorded as a
`turn_timeout`. A round never waits longer than `round_timeout_s`.

Events of a phase are emitted in member order once the phase is over, never in
completion order, so a transcript does not depend on how tasks interleave.

A member's deadline covers only the member: time a turn spends queued behind the
tool's own limits (its `TurnClock`) moves that turn's deadline back, is left out of
the turn's `timing.wall_s` and of the round clock, and is recorded as `timing.queued_s`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from assembly.core.actions import Action
from assembly.core.events import Event, RoundEnded, RoundStarted, RunEnded, RunInterrupted, Turn
from assembly.core.member import TURN_CLOCK, Member, Request, TurnClock, TurnResult
from assembly.core.protocol import Protocol
from assembly.core.spec import ScenarioBase
from assembly.core.transcript import TranscriptWriter
from assembly.core.view import ViewBuilder

# How long cancelled members get to unwind before the engine stops waiting for them.
CANCEL_GRACE_S = 1.0

Listener = Callable[[Event], None]

_RESULT_STATUSES = frozenset({"ok", "malformed", "provider_error"})


class BudgetSpent(Exception):
    """Raised inside a round when the run's cost or clock budget is used up."""


class Engine:
    def __init__(
        self,
        scenario: ScenarioBase,
        protocol: Protocol,
        members: dict[str, Member],
        writer: TranscriptWriter | None,
        views: ViewBuilder,
        listeners: Sequence[Listener] = (),
    ) -> None:
        self.scenario = scenario
        self.protocol = protocol
        self.members = members
        self.writer = writer
        self.views = views
        self.listeners = list(listeners)
        spec = scenario.protocol
        self.turn_timeout = spec.turn_timeout_s
        self.round_timeout = spec.round_timeout_s
        self.budget_s = spec.budget_s
        self.max_cost = spec.max_cost
        self.round = 0
        self.round_clock = 0.0  # accounted seconds spent in this round
        self.run_clock = 0.0  # accounted seconds in the run (simulated for virtual sim)
        self.cost = 0.0

    # ---- event plumbing

    def emit(self, *events: Event) -> None:
        if self.writer is not None:
            self.writer.write(events)
        for e in events:
            self.observe(e)
            for listener in self.listeners:
                listener(e)

    def observe(self, event: Any) -> None:
        """Fold an event into engine, view and protocol state (also used on resume)."""
        self.views.apply(event)
        self.protocol.apply(event)
        if isinstance(event, Turn):
            self.cost += sum(a.cost_usd for a in event.attempts)
        elif isinstance(event, RoundEnded):
            self.run_clock += float((event.timing or {}).get("clock_s", 0.0))

    # ---- the round loop

    async def run(self, start_round: int = 1) -> RunEnded:
        max_rounds = self.scenario.protocol.max_rounds
        end: RunEnded | None = None
        try:
            for r in range(start_round, max_rounds + 1):
                self.round, self.round_clock = r, 0.0
                wall0 = time.perf_counter()
                self.emit(RoundStarted(round=r, framing=self.views.next_framing()))
                try:
                    end = await self.protocol.play_round(self)
                except BudgetSpent:
                    end = self.protocol.conclude("budget")
                self.emit(
                    RoundEnded(
                        round=r,
                        stop=end is not None,
                        timing={"clock_s": round(self.round_clock, 6), "wall_s": round(time.perf_counter() - wall0, 6)},
                    )
                )
                if self.writer is not None:
                    self.writer.sync()  # a round is the unit of durability and of resume
                if end is None and self._over_budget():
                    end = self.protocol.conclude("budget")
                if end is not None:
                    break
            if end is None:
                end = self.protocol.conclude("round_limit")
        except (asyncio.CancelledError, KeyboardInterrupt):
            self.emit(RunInterrupted(round=self.round, reason="interrupted by the user"))
            if self.writer is not None:
                self.writer.sync()
            raise
        self.emit(end)
        return end

    def _over_budget(self) -> bool:
        return (self.max_cost is not None and self.cost >= self.max_cost) or (
            self.budget_s is not None and self.run_clock >= self.budget_s
        )

    # ---- RoundContext

    async def ask(
        self, phase: str, member_ids: Sequence[str], action: type[Action], params: dict[str, object] | None = None
    ) -> list[Turn]:
        if self._over_budget():
            raise BudgetSpent()
        deadline = self.phase_deadline()
        if deadline <= 0:
            turns = [
                Turn(
                    round=self.round,
                    phase=phase,
                    member=m,
                    status="timeout",
                    detail="round time budget spent before this phase",
                )
                for m in member_ids
            ]
            self.emit(*turns)
            return turns
        request = Request(round=self.round, phase=phase, action=action, deadline_s=deadline, params=dict(params or {}))
        clocks = [TurnClock() for _ in member_ids]
        tasks = [
            asyncio.ensure_future(self._timed(self.members[m], self.views.view(m, self.round, phase), request, c))
            for m, c in zip(member_ids, clocks, strict=True)
        ]
        late = await self._until_deadlines(tasks, clocks, deadline)
        if late:
            # Let cancellation reach the backends (HTTP requests, autogen tokens);
            # a member that ignores it is abandoned, never waited for.
            await asyncio.wait(late, timeout=CANCEL_GRACE_S)
        turns = [
            _with_queue(self._turn(phase, m, t, deadline), c) for m, t, c in zip(member_ids, tasks, clocks, strict=True)
        ]
        self.account(turns)
        self.emit(*turns)
        return turns

    @staticmethod
    async def _until_deadlines(
        tasks: Sequence[asyncio.Future[Any]], clocks: Sequence[TurnClock], deadline: float
    ) -> list[asyncio.Future[Any]]:
        """Wait for the tasks, cancelling each at its own deadline: `deadline` seconds of
        its own time, not counting what its clock spent queued. Returns those cancelled."""
        start = time.monotonic()
        clock_of = dict(zip(tasks, clocks, strict=True))
        pending, late = set(tasks), []
        while pending:
            now = time.monotonic()
            left = {t: start + deadline + clock_of[t].queued_s(now) - now for t in pending}
            for t in [t for t, s in left.items() if s <= 0]:
                t.cancel()
                late.append(t)
                pending.discard(t)
            if pending:
                # A queued task's deadline moves on while it waits: this wakes up, finds
                # it further away, and waits again.
                done, _ = await asyncio.wait(
                    pending, timeout=min(left[t] for t in pending), return_when=asyncio.FIRST_COMPLETED
                )
                pending -= done
        return late

    def phase_deadline(self) -> float:
        """Each member's deadline in the next phase: the turn timeout, capped by what
        is left of the round's budget."""
        return min(self.turn_timeout, self.round_timeout - self.round_clock)

    def account(self, turns: Sequence[Turn]) -> None:
        """Add a phase's duration to the round clock: its slowest turn, in simulated
        seconds where a member reports them, else as measured."""
        if turns:
            self.round_clock += max(
                t.latency_s if t.latency_s is not None else (t.timing or {}).get("wall_s", 0.0) for t in turns
            )

    def timeout_turn(self, phase: str, member: str, deadline: float) -> Turn:
        """The event for a member cut off at its deadline."""
        return Turn(
            round=self.round,
            phase=phase,
            member=member,
            status="timeout",
            detail=f"no answer within {deadline:g}s",
            timing={"wall_s": round(deadline, 6)},
        )

    @staticmethod
    async def _timed(member: Member, view: Any, request: Request, clock: TurnClock) -> tuple[TurnResult, float]:
        """The member's answer and its own time (wall time less time queued for the tool)."""
        TURN_CLOCK.set(clock)  # this task's own context: other members' turns are unaffected
        t0 = time.perf_counter()
        result = await member.act(view, request)
        return result, time.perf_counter() - t0 - clock.queued_s()

    def _turn(self, phase: str, member: str, task: asyncio.Future[Any], deadline: float) -> Turn:
        turn = partial(Turn, round=self.round, phase=phase, member=member)
        if not task.done() or task.cancelled():
            return self.timeout_turn(phase, member, deadline)
        exc = task.exception()
        if exc is not None:
            # A member that raises must not end the run; it is recorded and visible.
            return turn(
                status="provider_error",
                detail=f"member raised {type(exc).__name__}: {exc}"[:500],
                timing={"wall_s": 0.0},
            )
        result, wall = task.result()
        timing = {"wall_s": round(wall, 6)}
        sim = result.sim_latency_s
        if sim is not None and (math.isinf(sim) or sim > deadline):
            return turn(
                status="timeout",
                detail=f"no answer within {deadline:g}s",
                attempts=result.attempts,
                latency_s=round(deadline, 6),
                timing=timing,
            )
        if result.status not in _RESULT_STATUSES or (result.action is None) == (result.status == "ok"):
            return turn(
                status="provider_error",
                attempts=result.attempts,
                timing=timing,
                detail=f"member returned an inconsistent result (status {result.status!r})",
            )
        # Everything here is already validated (the action is a pydantic Action, the
        # status was just checked), so the event is built without validating again:
        # this is the hot path, once per member per phase.
        return Turn.model_construct(
            round=self.round,
            phase=phase,
            member=member,
            status=result.status,
            action=result.action.model_dump(mode="json") if result.action is not None else None,
            attempts=list(result.attempts),
            detail=result.detail,
            latency_s=round(sim, 6) if sim is not None else None,
            timing=timing,
        )


def _with_queue(turn: Turn, clock: TurnClock) -> Turn:
    """The turn with the time it spent queued for the tool recorded apart, if any."""
    queued = round(clock.queued_s(), 3)  # a slot granted at once is not a wait worth recording
    if queued <= 0:
        return turn
    return turn.model_copy(update={"timing": {**(turn.timing or {}), "queued_s": queued}})
