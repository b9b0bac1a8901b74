"""Admission: when a member's turn clock runs, so that the tool's own queue is never charged to a member.

A member's deadline must measure the member (its model, its server), not the
capacity of the tool that calls it: a member waiting for one of a profile's
``max_concurrent`` slots has not started its turn. So each turn has a `TurnClock`
that runs only while the member is admitted. The engine starts it when the
member's task starts (a member that never queues, e.g. a sim member, is admitted
from the start); a client that makes the member wait for capacity calls `queued()`
before waiting and `admitted()` once it may send, which pauses the clock meanwhile.

The clock reaches the client through a context variable set by the engine inside
the member's task (and inherited by the tasks the member starts), not through the
request or the model call's arguments: the core knows no model client, and the
response cache keys on every create arg. `current_clock()` is all a client needs.

The tool's CPU is the other queue. With a thousand members on a small machine, the
event loop itself falls behind: an answer that reached the socket waits while the
loop renders other members' prompts and parses their answers. `LoopLag` measures
how far behind the loop runs (how late a periodic tick fires), and a clock does not
charge a member for the lag that accrued while its turn ran: its deadline moves out
by that much. The lag is recorded on the turn (``timing.loop_lag_s``), apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar

_CURRENT: ContextVar[TurnClock | None] = ContextVar("assembly_turn_clock", default=None)


def current_clock() -> TurnClock | None:
    """The clock of the member turn running in this task, if any."""
    return _CURRENT.get()


class LoopLag:
    """How far behind the event loop runs, accumulated: the seconds ticks every
    `PERIOD_S` fired late, plus how late the pending tick is now. A tick up to
    `JITTER_S` late is on time (an idle loop's timers fire a fraction of a
    millisecond late, which would otherwise add about 2% to every deadline)."""

    PERIOD_S = 0.02
    JITTER_S = 0.001

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.total_s = 0.0
        self._due = loop.time() + self.PERIOD_S
        self._handle: asyncio.TimerHandle | None = loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        now = self.loop.time()
        self.total_s += self._late(now)
        self._due = now + self.PERIOD_S
        self._handle = self.loop.call_at(self._due, self._tick)

    def now_s(self) -> float:
        """The lag accrued so far, including the pending tick's."""
        if self._handle is None:
            return self.total_s
        return self.total_s + self._late(self.loop.time())

    def _late(self, now: float) -> float:
        late = now - self._due
        return late if late > self.JITTER_S else 0.0

    def stop(self) -> None:
        if self._handle is not None:
            self.total_s = self.now_s()
            self._handle.cancel()
            self._handle = None


def _expired_after_release() -> None:
    """What a released clock calls on expiry: nothing (it can no longer expire)."""


class TurnClock:
    """A member's turn clock: `budget_s` seconds of admitted time, then `on_expired` is called.

    Time spent queued (between `queued()` and `admitted()`) is not charged, nor is
    the event loop's lag (`lag`) while the member is admitted. Built and used on the
    event loop running the member's task.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        budget_s: float,
        on_expired: Callable[[], None],
        lag: LoopLag | None = None,
    ) -> None:
        self.loop = loop
        self.budget_s = budget_s
        self.on_expired = on_expired
        self.lag = lag
        self.used_s = 0.0  # admitted seconds charged so far (up to the last pause)
        self.queued_s = 0.0  # seconds spent waiting for the tool's capacity
        self.lag_s = 0.0  # admitted seconds the event loop ran late: the tool's, not charged
        self._running_since: float | None = None
        self._lag_since = 0.0
        self._queued_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._ever_queued = False

    @property
    def is_queued(self) -> bool:
        return self._queued_since is not None

    @property
    def has_queued(self) -> bool:
        """Whether the member waited for the tool's capacity at any time in this turn."""
        return self._ever_queued

    def enter(self) -> None:
        """Make this the clock of the current task's context (the engine calls it in the member's task)."""
        _CURRENT.set(self)

    def charged_s(self) -> float:
        """Seconds charged to the member so far."""
        return self.used_s + (self._running()[0] if self._running_since is not None else 0.0)

    def lagged_s(self) -> float:
        """Seconds of event-loop lag not charged to the member so far."""
        return self.lag_s + (self._running()[1] if self._running_since is not None else 0.0)

    def held_by_tool(self, min_lag_s: float) -> bool:
        """Whether a member cut by the round's time lost it to the tool rather than to
        its own deadline: it queued for the tool's capacity, or its own time is not
        spent because the event loop fell behind (by at least `min_lag_s`)."""
        lagged = self.lagged_s() >= min_lag_s and self.charged_s() < self.budget_s
        return self.has_queued or lagged

    def _running(self) -> tuple[float, float]:
        """(charged, lag) seconds since the clock last started running."""
        assert self._running_since is not None
        lag = (self.lag.now_s() - self._lag_since) if self.lag is not None else 0.0
        wall = self.loop.time() - self._running_since
        return max(0.0, wall - lag), min(lag, wall)

    def _pause(self) -> None:
        if self._running_since is not None:
            charged, lag = self._running()
            self.used_s += charged
            self.lag_s += lag
            self._running_since = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, charged_s: float) -> None:
        """Check again once the budget not yet charged (`charged_s` so far) could be spent."""
        self._timer = self.loop.call_later(max(0.0, self.budget_s - charged_s), self._check)

    def _check(self) -> None:
        # The loop's lag since the clock started is not the member's: if some of the
        # budget is still unspent after taking it off, wait for that much more.
        self._timer = None
        charged = self.charged_s()
        if charged < self.budget_s - 1e-4:
            self._arm(charged)
        else:
            self.on_expired()

    def admitted(self) -> None:
        """The member may proceed: its clock runs (again)."""
        now = self.loop.time()
        if self._queued_since is not None:
            self.queued_s += now - self._queued_since
            self._queued_since = None
        if self._running_since is None:
            self._running_since = now
            self._lag_since = self.lag.now_s() if self.lag is not None else 0.0
            self._arm(self.used_s)  # just started running: exactly `used_s` is charged so far

    def queued(self) -> None:
        """The member waits for the tool's capacity: its clock stops until `admitted()`."""
        now = self.loop.time()
        self._pause()
        if self._queued_since is None:
            self._queued_since = now
        self._ever_queued = True

    def release(self) -> None:
        """Drop `on_expired` once the turn is over. The engine's callback refers to its
        seat, which refers to this clock: without this, every LLM turn would leave a
        reference cycle for the cycle collector to find, instead of being freed when
        its phase ends."""
        self._pause()  # no timer left to call it
        self.on_expired = _expired_after_release

    def stop(self) -> None:
        """The turn is over: no expiry any more, and the time so far is charged."""
        self._pause()
        if self._queued_since is not None:
            self.queued_s += self.loop.time() - self._queued_since
            self._queued_since = None
