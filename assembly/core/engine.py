"""The engine: drives rounds, runs members concurrently under real deadlines.

AutoGen's team classes do not fit deliberation rounds (one speaker at a time, and a
timeout that is only checked when a message arrives), so the engine drives rounds
itself: every asked member runs as its own task under its own `TurnClock`
(`core.admission`), which runs only while the member is admitted, never while its
client waits for the tool's capacity (a profile's concurrency or rpm limit). A
member whose clock passes its deadline is cancelled and recorded as a `timeout`
(`turn_timeout`). A round never waits longer than `round_timeout_s`: whoever is
still running when the round's time is spent is cancelled too, and recorded as
`throttled` if it had to wait for capacity in that turn (the tool's capacity, not
the member, ran out of time), else as a `timeout`.

Events of a phase are emitted in member order once the phase is over, never in
completion order, so a transcript does not depend on how tasks interleave.

When a run ends is decided by one stop rule (`core.stop`), checked after every
round: the protocol's own rule, then the budget, then the round limit. The budget is
also checked before every phase, so a run stops mid-round when it is spent.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pydantic import ValidationError

from assembly.core.actions import Action
from assembly.core.admission import LoopLag, TurnClock
from assembly.core.collector import collection_deferred
from assembly.core.events import AnyEvent, RoundEnded, RoundStarted, RunEnded, RunInterrupted, Turn, TurnStatus
from assembly.core.member import Member, Request, TurnResult
from assembly.core.protocol import Protocol
from assembly.core.spec import ScenarioBase
from assembly.core.stop import Budget, RunState, StopRule, budget, round_limit
from assembly.core.transcript import TranscriptWriter
from assembly.core.view import ViewBuilder

# How long cancelled members get to unwind before the engine stops waiting for them.
CANCEL_GRACE_S = 1.0
# Loop passes a member just started is given to reach its first wait before the
# phase's deferred cycle collection may run. An LLM member's request is on the wire
# two passes after its turn starts (its model call runs as a task of its own,
# `llm.cancellation`); one more is slack.
SETTLE_PASSES = 3

# A turn's event-loop lag is written to its timing from this much on (below it, it is
# the loop's ordinary scheduling jitter).
LOOP_LAG_RECORDED_S = 0.01

Listener = Callable[[AnyEvent], None]

_RESULT_STATUSES = frozenset({"ok", "malformed", "provider_error"})


class BudgetSpent(Exception):
    """Raised inside a round when the run's cost or clock budget is used up."""


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _answer_now(
    loop: asyncio.AbstractEventLoop,
    act_now: Callable[[Any, Request], TurnResult | None],
    view: Any,
    request: Request,
) -> asyncio.Future[Any] | None:
    """An instant member's turn as a finished future, holding what a task running
    `Engine._timed` would: (result, wall seconds), or the exception it raised. None
    when the member needs `act` for this turn."""
    t0 = time.perf_counter()
    future: asyncio.Future[Any]
    try:
        result = act_now(view, request)
    except Exception as exc:  # recorded as the member's failure, as a raising `act` is
        future = loop.create_future()
        future.set_exception(exc)
        return future
    if result is None:
        return None
    future = loop.create_future()
    future.set_result((result, time.perf_counter() - t0))
    return future


@dataclass(eq=False)
class Seat:
    """One member's turn in a phase: its task, its clock and, if the engine ended it, why."""

    member: str
    settled: asyncio.Future[None]  # done when the task is, or when it is abandoned after a cut
    started: float  # loop time the phase started
    task: asyncio.Future[Any] = field(init=False)
    clock: TurnClock | None = None  # none for a member that answered at once: nothing to time
    cut: TurnStatus | None = None  # "timeout" or "throttled" once the engine cancelled the turn
    turn: Turn | None = None  # the turn, once its member answered in time (`Engine._settled`)
    dumped: str | None = None  # and its transcript JSON


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
        self.budget: Budget = budget(spec.max_cost, spec.budget_s, protocol.conclude)
        # First that fires, in this order: a decision in the last round beats a spent
        # budget, which beats the round limit (the order the engine always had).
        self.stop: StopRule = protocol.stop_rule() | self.budget | round_limit(spec.max_rounds, protocol.conclude)
        self.round = 0
        self.round_clock = 0.0  # accounted seconds spent in this round
        self.round_throttled = False  # whether a member of this round was throttled
        self.run_clock = 0.0  # accounted seconds in the run (simulated for virtual sim)
        self.cost = 0.0
        self.loop_lag: LoopLag | None = None  # while `run` runs: how far behind the event loop is

    # ---- event plumbing

    def emit(self, *events: AnyEvent) -> None:
        if self.writer is not None:
            self.writer.write(events)
        self.fold(*events)

    def fold(self, *events: AnyEvent) -> None:
        """What follows writing events: the engine, views and protocol fold them in, and
        listeners hear them."""
        for e in events:
            self.observe(e)
            for listener in self.listeners:
                listener(e)

    def observe(self, event: AnyEvent) -> None:
        """Fold an event into engine, view and protocol state (also used on resume)."""
        self.views.apply(event)
        self.protocol.apply(event)
        if isinstance(event, Turn):
            self.cost += sum(a.cost_usd for a in event.attempts)
        elif isinstance(event, RoundEnded):
            self.run_clock += float((event.timing or {}).get("clock_s", 0.0))

    # ---- the round loop

    async def run(self, start_round: int = 1) -> RunEnded:
        self.loop_lag = LoopLag(asyncio.get_running_loop())
        try:
            return await self._run(start_round)
        finally:
            self.loop_lag.stop()
            self.loop_lag = None

    async def _run(self, start_round: int) -> RunEnded:
        max_rounds = self.scenario.protocol.max_rounds
        end: RunEnded | None = None
        try:
            for r in range(start_round, max_rounds + 1):
                self.round, self.round_clock, self.round_throttled = r, 0.0, False
                wall0 = time.perf_counter()
                self.emit(RoundStarted(round=r, framing=self.views.next_framing()))
                end, stopped = await self._play_round()
                self.emit(
                    RoundEnded(
                        round=r,
                        stop=stopped,
                        timing={"clock_s": round(self.round_clock, 6), "wall_s": round(time.perf_counter() - wall0, 6)},
                    )
                )
                if self.writer is not None:
                    self.writer.sync()  # a round is the unit of durability and of resume
                if end is not None:
                    break
            if end is None:
                # Only a resumed run whose every round was already played gets here.
                end = self.protocol.conclude("round_limit")
        except (asyncio.CancelledError, KeyboardInterrupt):
            self.emit(RunInterrupted(round=self.round, reason="interrupted by the user"))
            if self.writer is not None:
                self.writer.sync()
            raise
        self.emit(end)
        return end

    async def _play_round(self) -> tuple[RunEnded | None, bool]:
        """Play the round, then check the stop rule on the state it left: the run's end
        if it ends here, and whether the round itself stopped it (the round's `stop`
        flag: the protocol's rule, or a budget spent mid-round), rather than a limit
        (`StopRule.limit`) reached between rounds."""
        try:
            await self.protocol.play_round(self)
        except BudgetSpent:
            # Spent before a phase: the round is cut short and ends the run here.
            return self.budget.check(self.run_state()), True
        hit = self.stop.fired(self.run_state(round_over=True))
        return (hit.end, not hit.rule.limit) if hit is not None else (None, False)

    def run_state(self, round_over: bool = False) -> RunState:
        """The state stop rules read. Once the round is over its clock counts, exactly
        as `observe` will add it from the round's `round_ended` event."""
        clock = self.run_clock + round(self.round_clock, 6) if round_over else self.run_clock
        return RunState(round=self.round, cost=self.cost, clock_s=clock)

    def _over_budget(self) -> bool:
        return self.budget.spent(self.run_state())

    # ---- RoundContext

    async def ask(
        self, phase: str, member_ids: Sequence[str], action: type[Action], params: dict[str, object] | None = None
    ) -> list[Turn]:
        if self._over_budget():
            raise BudgetSpent()
        deadline = self.phase_deadline()
        if deadline <= 0:
            # If members waited for the tool's capacity this round, that is what spent
            # its time: the members never asked are the tool's loss, not theirs.
            status: TurnStatus = "throttled" if self.round_throttled else "timeout"
            turns = [
                Turn(
                    round=self.round,
                    phase=phase,
                    member=m,
                    status=status,
                    detail="round time budget spent before this phase",
                )
                for m in member_ids
            ]
            self.emit(*turns)
            return turns
        request = Request(round=self.round, phase=phase, action=action, deadline_s=deadline, params=dict(params or {}))
        seats = await self._start_paced(member_ids, request, deadline)
        # Members that answered at once (sim members) have nothing to wait for, and
        # `asyncio.wait` would still schedule a callback per future and a loop pass.
        if any(not s.settled.done() for s in seats):
            # Members end themselves at their own deadlines (their clocks' timers); the
            # round's remaining time bounds the phase whatever the queue.
            round_left = self.round_timeout - self.round_clock
            _, pending = await asyncio.wait([s.settled for s in seats], timeout=round_left)
            if pending:
                for s in seats:
                    if not s.settled.done():
                        held = s.clock is not None and s.clock.held_by_tool(LOOP_LAG_RECORDED_S)
                        self._cut(s, "throttled" if held else "timeout")
                await asyncio.wait(pending)  # each settles within CANCEL_GRACE_S of its cut
        turns = [s.turn if s.turn is not None else self._turn(phase, s, deadline) for s in seats]
        self.round_throttled = self.round_throttled or any(t.status == "throttled" for t in turns)
        self.account(turns)
        if self.writer is not None:
            dump = self.writer.dump
            dumped = (s.dumped if s.dumped is not None else dump(t) for s, t in zip(seats, turns, strict=True))
            self.writer.write_dumped(dumped)
        self.fold(*turns)
        return turns

    async def _start_paced(self, member_ids: Sequence[str], request: Request, deadline: float) -> list[Seat]:
        """Start every member's turn, each one's first steps before the next one's view.

        Started all at once, N turns would advance in lockstep: every view and prompt
        of the phase built before the first request leaves, and every answer then
        arriving in one burst, which the event loop works through one by one. Each
        member's request would wait on N others' preparation, and a round at N = 256
        would last its latency plus a fifth more (bench/round_wall.py). Yielding once
        after each start lets the member just started run to its first wait, and
        what it started then advances while the next members start, so each request
        is on the wire a few starts after its member's, as soon as it is ready.
        Members that finish at once (sim members) are then started without yielding:
        there is nothing to overlap.

        No cycle collection runs until the last member started has had
        `SETTLE_PASSES` passes of the loop to reach its first wait (`core.collector`):
        a collection in the burst would hold up every request after it. The deferral
        lasts as long as the burst, never as long as members take to answer."""
        loop = asyncio.get_running_loop()
        seats: list[Seat] = []
        pace = True
        with collection_deferred():
            for m in member_ids:
                seat = self._start(loop, m, request, deadline)
                seats.append(seat)
                if pace:
                    await asyncio.sleep(0)
                    pace = not seat.task.done()
            if pace:
                for _ in range(SETTLE_PASSES):
                    await asyncio.sleep(0)
        return seats

    def _start(self, loop: asyncio.AbstractEventLoop, member_id: str, request: Request, deadline: float) -> Seat:
        """Start one member's turn as its own task, under its own clock."""
        seat = Seat(member_id, loop.create_future(), loop.time())
        view = self.views.view(member_id, self.round, request.phase)
        member = self.members[member_id]
        act_now = getattr(member, "act_now", None)  # an `InstantMember`
        answered = _answer_now(loop, act_now, view, request) if act_now is not None else None
        if answered is not None:
            seat.task = answered
            self._settled(seat, request.phase, deadline, answered)
            return seat
        seat.clock = TurnClock(loop, deadline, partial(self._cut, seat, "timeout"), self.loop_lag)
        seat.task = asyncio.ensure_future(self._timed(member, view, request, seat.clock))
        seat.task.add_done_callback(partial(self._settled, seat, request.phase, deadline))
        return seat

    def _settled(self, seat: Seat, phase: str, deadline: float, task: asyncio.Future[Any]) -> None:
        """A member's task is done. If it answered without being cut, its turn is
        final now, so it is built and dumped now: while later answers are still on
        their way, rather than with every other turn of the phase once the last one
        arrives (at N = 256, some 15 ms a phase after the last answer)."""
        if seat.cut is None and not task.cancelled():
            try:
                seat.turn = self._turn(phase, seat, deadline)
                seat.dumped = self.writer.dump(seat.turn) if self.writer is not None else None
            except Exception:  # the phase's close builds it again, and raises there
                seat.turn = seat.dumped = None
        if seat.clock is not None:
            seat.clock.release()  # the task is over (its clock stopped); see `TurnClock.release`
        _settle(seat.settled)

    @staticmethod
    def _cut(seat: Seat, status: TurnStatus) -> None:
        """End a member's turn: cancel it (letting cancellation reach its backend: HTTP
        requests, autogen tokens) and stop waiting for it after CANCEL_GRACE_S, so a
        member that ignores cancellation is abandoned, never waited for."""
        if seat.cut is not None or seat.task.done():
            return
        clock = seat.clock
        assert clock is not None  # a turn still running is a task under its clock
        seat.cut = status
        clock.stop()
        seat.task.cancel()
        clock.loop.call_later(CANCEL_GRACE_S, _settle, seat.settled)

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

    def throttled_turn(self, phase: str, member: str, queued_s: float, wall_s: float, lag_s: float = 0.0) -> Turn:
        """The event for a member still held by the tool when the round's time ran out: by
        its capacity (queued for max_concurrent/rpm) or by its own CPU (event-loop lag)."""
        timing = {"wall_s": round(wall_s, 6), "queued_s": round(queued_s, 6)}
        held = [f"waiting {queued_s:.3g}s for the tool's capacity (max_concurrent/rpm)"]
        if lag_s >= LOOP_LAG_RECORDED_S:
            timing["loop_lag_s"] = round(lag_s, 6)
            held = [*held[: queued_s > 0.0], f"{lag_s:.3g}s behind the tool's busy event loop"]
        return Turn(
            round=self.round,
            phase=phase,
            member=member,
            status="throttled",
            detail="round time spent " + " and ".join(held),
            timing=timing,
        )

    @staticmethod
    async def _timed(member: Member, view: Any, request: Request, clock: TurnClock) -> tuple[TurnResult, float]:
        clock.enter()  # this task's context: the member's client finds its clock here
        clock.admitted()  # a member is admitted when it starts, until its client queues it
        t0 = time.perf_counter()
        try:
            result = await member.act(view, request)
        finally:
            clock.stop()
        return result, time.perf_counter() - t0

    def _turn(self, phase: str, seat: Seat, deadline: float) -> Turn:
        member, task = seat.member, seat.task
        clock = seat.clock
        if seat.cut == "throttled":
            assert clock is not None  # only a running turn is cut
            return self.throttled_turn(phase, member, clock.queued_s, clock.loop.time() - seat.started, clock.lag_s)
        if seat.cut is not None or not task.done() or task.cancelled():
            # A late answer is discarded, even from a member that swallowed its cancellation.
            return self.timeout_turn(phase, member, deadline)
        exc = task.exception()
        if exc is not None:
            # A member that raises must not end the run; it is recorded and visible.
            return self._member_turn(
                phase,
                member,
                status="provider_error",
                detail=f"member raised {type(exc).__name__}: {exc}"[:500],
                timing={"wall_s": 0.0},
            )
        result, wall = task.result()
        timing = {"wall_s": round(wall, 6)}
        if clock is not None:
            if clock.queued_s > 0.0:
                timing["queued_s"] = round(clock.queued_s, 6)
            if clock.lag_s >= LOOP_LAG_RECORDED_S:
                timing["loop_lag_s"] = round(clock.lag_s, 6)
        sim = result.sim_latency_s
        if sim is not None and (math.isinf(sim) or sim > deadline):
            return self._member_turn(
                phase,
                member,
                status="timeout",
                detail=f"no answer within {deadline:g}s",
                attempts=result.attempts,
                latency_s=round(deadline, 6),
                timing=timing,
            )
        if result.status not in _RESULT_STATUSES or (result.action is None) == (result.status == "ok"):
            return self._member_turn(
                phase,
                member,
                status="provider_error",
                attempts=result.attempts,
                timing=timing,
                detail=f"member returned an inconsistent result (status {result.status!r})",
            )
        # The hot path, once per member per phase. Validating is the faster way to
        # build the event: pydantic's core checks these fields in less time than
        # `model_construct` assembles them in Python.
        try:
            return Turn(
                round=self.round,
                phase=phase,
                member=member,
                status=result.status,
                action=result.action.model_dump(mode="json") if result.action is not None else None,
                attempts=result.attempts,  # validation copies the list
                detail=result.detail,
                latency_s=round(sim, 6) if sim is not None else None,
                timing=timing,
            )
        except ValidationError as invalid:  # a plug-in member's result the event cannot hold
            problem = invalid.errors()[0]
            where = ".".join(str(p) for p in problem["loc"])
            return self._member_turn(
                phase,
                member,
                status="provider_error",
                timing=timing,
                detail=f"member returned an invalid result ({where}: {problem['msg']})"[:500],
            )

    def _member_turn(self, phase: str, member: str, **fields: Any) -> Turn:
        """A turn event of this round's `phase` for `member`: how `_turn` records a failure."""
        return Turn(round=self.round, phase=phase, member=member, **fields)
