"""Per-profile rate limits: at most `max_concurrent` requests in flight and `rpm` starts a minute.

A profile's limits describe what its endpoint (a provider account, a local server)
allows, not what one run may do, so one limiter per profile is shared by every run
in the process: the runs of a local sweep, a fork beside its source, even runs on
other event loops or threads. Sharing it is deliberate; a limiter per run would let
N runs send N times what the endpoint accepts. A request is admitted when `acquire`
returns, the one place where waiting for the tool's own capacity ends; `slot` marks
that wait on the member turn's clock, so the engine keeps it out of the member's
deadline (`core.member.TurnClock`).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from assembly.core.member import TURN_CLOCK
from assembly.llm.profiles import ModelProfile


@dataclass(eq=False)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    granted: bool = False


def _wake(waiter: _Waiter) -> None:
    if not waiter.future.done():
        waiter.future.set_result(None)


class RateLimiter:
    """At most ``max_concurrent`` requests in flight and ``rpm`` starts per ``window_s``.

    Shared across event loops and threads (see the module doc), so it is built on a
    ``threading.Lock`` and hands slots to waiters with ``call_soon_threadsafe``
    instead of using loop-bound ``asyncio.Semaphore``s. Waiters are served first
    come, first served.
    """

    def __init__(self, max_concurrent: int, rpm: float | None = None, *, window_s: float = 60.0) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be >= 1")
        self.max_concurrent = max_concurrent
        self.rpm = rpm
        self.window_s = window_s
        self._lock = threading.Lock()
        self._in_flight = 0
        self._waiters: deque[_Waiter] = deque()
        self._starts: deque[float] = deque()

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    async def acquire(self) -> None:
        """Wait for a slot and for room in the rpm window; the request is admitted on return."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._in_flight < self.max_concurrent and not self._waiters:
                self._in_flight += 1
                waiter = None
            else:
                waiter = _Waiter(loop, loop.create_future())
                self._waiters.append(waiter)
        if waiter is not None:
            await self._wait_for_slot(waiter)
        try:
            await self._wait_for_rate()
        except BaseException:
            self.release()
            raise

    async def _wait_for_slot(self, waiter: _Waiter) -> None:
        try:
            await waiter.future
        except asyncio.CancelledError:
            with self._lock:
                granted = waiter.granted
                if not granted:
                    self._waiters.remove(waiter)
            if granted:  # the slot was handed to us while we were being cancelled
                self.release()
            raise

    async def _wait_for_rate(self) -> None:
        if not self.rpm:
            return
        limit = max(1, int(self.rpm * self.window_s / 60.0))
        with self._lock:
            now = time.monotonic()
            while self._starts and self._starts[0] <= now - self.window_s:
                self._starts.popleft()
            # Reserve a start time: now if the window has room, else when the
            # `limit`-th most recent start leaves the window.
            start = now if len(self._starts) < limit else self._starts[-limit] + self.window_s
            self._starts.append(start)
        if start > now:
            await asyncio.sleep(start - now)

    def release(self) -> None:
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                try:
                    waiter.loop.call_soon_threadsafe(_wake, waiter)
                except RuntimeError:  # its loop is closed: nobody is waiting any more
                    continue
                waiter.granted = True  # the slot passes to the waiter; in_flight unchanged
                return
            self._in_flight -= 1

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        clock = TURN_CLOCK.get()
        with clock.queued() if clock is not None else contextlib.nullcontext():
            await self.acquire()
        try:
            yield
        finally:
            self.release()


# The process's limiters, one per profile (see the module doc for why they are shared).
_LIMITERS: dict[tuple[str, str, int, float | None], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def limiter_for(profile: ModelProfile) -> RateLimiter:
    """The process-wide limiter of a profile (same name and limits -> same limiter)."""
    key = (profile.name, profile.model, profile.max_concurrent, profile.rpm)
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None:
            limiter = _LIMITERS[key] = RateLimiter(profile.max_concurrent, profile.rpm)
        return limiter
