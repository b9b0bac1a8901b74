"""Cancellation across the autogen boundary: an autogen `CancellationToken` cancels the asyncio work under it.

A member's turn ends at its deadline by cancelling its token, and that must abort
the HTTP request in flight, the wait for a rate-limit slot and a retry's backoff
alike; every layer that awaits on behalf of a token links it here, in one way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import Any, TypeVar

from autogen_core import CancellationToken

T = TypeVar("T")


# The token the current task is awaiting under (`await_linked`), with that task:
# layers below the first one that links a token already run under it, so they
# await directly instead of linking it again.
_LINKED: ContextVar[tuple[CancellationToken, asyncio.Task[Any]] | None] = ContextVar(
    "assembly_linked_token", default=None
)


async def await_linked(awaitable: Awaitable[T], token: CancellationToken | None) -> T:
    """Await under a token: cancelling the token cancels the awaited work (and with it
    any HTTP request in flight), and the caller sees a `CancelledError` that
    `cancelled_by(token)` tells apart from its own task being cancelled.

    The work runs in the calling task, not a task of its own: a task per call would
    cost every member's turn an extra task and an extra pass of the event loop before
    its request is on the wire, which at N = 256 adds up to a tenth of a round's
    overhead (bench/round_wall.py). The token cancels the calling task while (and
    only while) the work runs, and the cancellation it caused is taken back
    (`Task.uncancel`) as it leaves, so the task's own cancellations (the engine's
    deadline, `asyncio.timeout`) are counted exactly as before."""
    if token is None:
        return await awaitable
    task = asyncio.current_task()
    if task is None:  # pragma: no cover - awaited outside a task
        raise RuntimeError("await_linked needs a running task")
    linked = _LINKED.get()
    if linked is not None and linked[0] is token and linked[1] is task:
        return await awaitable
    if token.is_cancelled():
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()  # never started: nothing to cancel, and no "never awaited" warning
        raise asyncio.CancelledError("cancelled by token")
    link = _TaskLink(task)
    token.add_callback(link.cancel)
    outer = _LINKED.set((token, task))
    try:
        result = await awaitable
        if link.fired:
            # The token was cancelled while this task itself ran (the work cancelled its
            # own token): the request is still pending, and is delivered here.
            await asyncio.sleep(0)
        return result
    finally:
        link.close()
        _LINKED.reset(outer)


class _TaskLink:
    """A token's hold on one task, for the span of one `await_linked`."""

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.active = True
        self.fired = False

    def cancel(self) -> None:
        if self.active:
            self.fired = True
            self.task.cancel("cancelled by token")

    def close(self) -> None:
        """Stop cancelling the task, and take back the cancellation the token caused."""
        self.active = False
        if self.fired:
            self.task.uncancel()


def cancelled_by(token: CancellationToken | None) -> bool:
    """Whether a `CancelledError` just caught came from `token` rather than from the
    task itself being cancelled (which must propagate, e.g. the engine's deadline)."""
    task = asyncio.current_task()
    being_cancelled = task is not None and task.cancelling() > 0
    return token is not None and token.is_cancelled() and not being_cancelled
