"""Cancellation across the autogen boundary: an autogen `CancellationToken` cancels the asyncio work under it.

A member's turn ends at its deadline by cancelling its token, and that must abort
the HTTP request in flight, the wait for a rate-limit slot and a retry's backoff
alike; every layer that awaits on behalf of a token links it here, in one way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from autogen_core import CancellationToken

T = TypeVar("T")


async def await_linked(awaitable: Awaitable[T], token: CancellationToken | None) -> T:
    """Await under a token: cancelling the token cancels the awaited work (and with it
    any HTTP request in flight)."""
    if token is None:
        return await awaitable
    task = asyncio.ensure_future(awaitable)
    token.link_future(task)
    return await task


def cancelled_by(token: CancellationToken | None) -> bool:
    """Whether a `CancelledError` just caught came from `token` rather than from the
    task itself being cancelled (which must propagate, e.g. the engine's deadline)."""
    task = asyncio.current_task()
    being_cancelled = task is not None and task.cancelling() > 0
    return token is not None and token.is_cancelled() and not being_cancelled
