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
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar

_CURRENT: ContextVar[TurnClock | None] = ContextVar("assembly_turn_clock", default=None)


def current_clock() -> TurnClock | None:
    """The clock of the member turn running in this task, if any."""
    return _CURRENT.get()


class TurnClock:
    """A member's turn clock: `budget_s` seconds of admitted time, then `on_expired` is called.

    Time spent queued (between `queued()` and `admitted()`) is not charged. Built and
    used on the event loop running the member's task.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, budget_s: float, on_expired: Callable[[], None]) -> None:
        self.loop = loop
        self.budget_s = budget_s
        self.on_expired = on_expired
        self.used_s = 0.0  # admitted seconds charged so far (up to the last pause)
        self.queued_s = 0.0  # seconds spent waiting for the tool's capacity
        self._running_since: float | None = None
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

    def admitted(self) -> None:
        """The member may proceed: its clock runs (again)."""
        now = self.loop.time()
        if self._queued_since is not None:
            self.queued_s += now - self._queued_since
            self._queued_since = None
        if self._running_since is None:
            self._running_since = now
            self._timer = self.loop.call_at(now + max(0.0, self.budget_s - self.used_s), self.on_expired)

    def queued(self) -> None:
        """The member waits for the tool's capacity: its clock stops until `admitted()`."""
        now = self.loop.time()
        if self._running_since is not None:
            self.used_s += now - self._running_since
            self._running_since = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._queued_since is None:
            self._queued_since = now
        self._ever_queued = True

    def stop(self) -> None:
        """The turn is over: no expiry any more, and the time so far is charged."""
        if self._running_since is not None:
            self.used_s += self.loop.time() - self._running_since
            self._running_since = None
        if self._queued_since is not None:
            self.queued_s += self.loop.time() - self._queued_since
            self._queued_since = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
