"""Run a coroutine to completion from synchronous code, inside a running event loop too.

`asyncio.run` refuses to start when the calling thread already runs an event loop,
which is the case in every Jupyter kernel and in any async application calling
sync code. Re-entering that loop is impossible without patching asyncio
(`nest_asyncio`), and scheduling the work onto it and waiting for the result from
the same thread would deadlock: the loop cannot run while its own thread waits.

So `run_sync` gives the coroutine a loop of its own on a worker thread and waits
for it. The caller's loop is held only for as long as the work takes, exactly like
any other synchronous call it makes, and never forever; code that must keep its
loop responsive meanwhile awaits the async form instead (`assembly.arun`).
Ctrl-C cancels the coroutine on its thread and waits for it to unwind, so a run
records `run_interrupted` as it does under `asyncio.run`; the interrupt then goes on
as it came: a `KeyboardInterrupt` raised in the waiting thread (a Jupyter kernel, a
plain loop) is re-raised, and the cancellation `asyncio.run` gives its main task on
Ctrl-C is passed on as `CancelledError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# How often the waiting thread wakes to let a pending KeyboardInterrupt through.
_POLL_S = 0.1


def loop_running() -> bool:
    """Whether the calling thread is running an event loop (e.g. a Jupyter kernel)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coro)`, or, inside a running loop, the same on a worker thread."""
    if not loop_running():
        return asyncio.run(coro)
    caller = asyncio.current_task()
    asked = caller.cancelling() if caller is not None else 0
    worker = _Worker(coro)
    worker.start()
    # Waiting on an Event, not Thread.join: a KeyboardInterrupt inside join() makes
    # Python 3.11 consider the thread finished while it still runs (bpo-45274's fix).
    try:
        while not worker.done.wait(_POLL_S):
            if caller is not None and caller.cancelling() > asked:
                # Under `asyncio.run`, Ctrl-C cancels the main task rather than raising
                # here; the cancellation cannot reach this synchronous wait, so pass it on.
                worker.cancel()
                worker.done.wait()
                raise asyncio.CancelledError
    except KeyboardInterrupt:  # a plain loop (or a Jupyter kernel) raises it here
        worker.cancel()
        worker.done.wait()
        raise
    return worker.outcome()


class _Worker(threading.Thread):
    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        super().__init__(name="assembly-run-sync", daemon=True)
        self.coro = coro
        self.result: Any = None
        self.error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None
        self.started_task = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        try:
            self.result = asyncio.run(self._main())
        except BaseException as exc:  # handed to the waiting thread, which re-raises it
            self.error = exc
        finally:
            self.started_task.set()
            self.done.set()

    async def _main(self) -> Any:
        self.loop, self.task = asyncio.get_running_loop(), asyncio.current_task()
        self.started_task.set()
        return await self.coro

    def cancel(self) -> None:
        self.started_task.wait()
        if self.loop is not None and self.task is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the work has ended
                self.loop.call_soon_threadsafe(self.task.cancel)

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result
