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


# The token the current task was started under by `await_linked`, with that task:
# layers below the first one that links a token run in a task the token already
# cancels, so they await directly instead of starting (and linking) a task each.
_LINKED: ContextVar[tuple[CancellationToken, asyncio.Task[Any]] | None] = ContextVar(
    "assembly_linked_token", default=None
)


async def await_linked(awaitable: Awaitable[T], token: CancellationToken | None) -> T:
    """Await under a token: cancelling the token cancels the awaited work (and with it
    any HTTP request in flight)."""
    if token is None:
        return await awaitable
    linked = _LINKED.get()
    if linked is not None and linked[0] is token and linked[1] is asyncio.current_task():
        return await awaitable

    async def under_token() -> T:
        task = asyncio.current_task()
        assert task is not None
        _LINKED.set((token, task))
        return await awaitable

    task = asyncio.ensure_future(under_token())
    token.link_future(task)
    return await task


def cancelled_by(token: CancellationToken | None) -> bool:
    """Whether a `CancelledError` just caught came from `token` rather than from the
    task itself being cancelled (which must propagate, e.g. the engine's deadline)."""
    task = asyncio.current_task()
    being_cancelled = task is not None and task.cancelling() > 0
    return token is not None and token.is_cancelled() and not being_cancelled
