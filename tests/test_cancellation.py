"""`llm.cancellation`: a token cancels the work awaited under it, in the calling task.

The model-client tests check the same contract end to end (a hanging HTTP request,
a backoff sleep); these pin the task bookkeeping it rests on: which cancellations
the caller sees, and that the calling task is left exactly as it was.
"""

from __future__ import annotations

import asyncio
import warnings

import pytest
from autogen_core import CancellationToken

from assembly.llm.cancellation import await_linked, cancelled_by


async def test_a_token_cancels_the_work_and_leaves_the_task_uncancelled() -> None:
    token = CancellationToken()
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().call_later(0.05, token.cancel)
    with pytest.raises(asyncio.CancelledError) as caught:
        await await_linked(asyncio.sleep(30), token)
    assert cancelled_by(token)
    assert task.cancelling() == 0
    await asyncio.sleep(0)  # the task goes on: nothing of the token's cancellation is left pending
    assert caught.value is not None


async def test_the_task_s_own_cancellation_is_not_the_token_s() -> None:
    token = CancellationToken()
    seen: dict[str, object] = {}

    async def member() -> None:
        try:
            await await_linked(asyncio.sleep(30), token)
        except asyncio.CancelledError:
            seen["by_token"] = cancelled_by(token)
            task = asyncio.current_task()
            assert task is not None
            seen["cancelling"] = task.cancelling()
            raise

    task = asyncio.ensure_future(member())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == {"by_token": False, "cancelling": 1}
    token.cancel()  # after the work: the token no longer reaches the task
    assert task.cancelled()


async def test_a_cancelled_token_never_starts_the_work() -> None:
    token = CancellationToken()
    token.cancel()
    started = False

    async def work() -> None:
        nonlocal started
        started = True

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would be an error
        with pytest.raises(asyncio.CancelledError):
            await await_linked(work(), token)
    assert not started and cancelled_by(token)


async def test_a_token_cancelled_after_the_work_has_no_effect() -> None:
    token = CancellationToken()
    assert await await_linked(asyncio.sleep(0, result=7), token) == 7
    token.cancel()
    await asyncio.sleep(0.01)  # would raise if the token still held the task
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_work_that_cancels_its_own_token_ends_cancelled_by_it() -> None:
    token = CancellationToken()

    async def work() -> int:
        token.cancel()
        return 1  # returns without another await: the request is delivered on the way out

    with pytest.raises(asyncio.CancelledError):
        await await_linked(work(), token)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0 and cancelled_by(token)


async def test_a_timeout_inside_the_work_is_still_a_timeout() -> None:
    token = CancellationToken()

    async def work() -> None:
        async with asyncio.timeout(0.02):
            await asyncio.sleep(30)

    with pytest.raises(TimeoutError):
        await await_linked(work(), token)
    assert not token.is_cancelled()


async def test_linking_starts_no_task_and_nested_layers_link_once() -> None:
    token = CancellationToken()
    before = len(asyncio.all_tasks())
    counts: list[int] = []

    async def inner() -> None:
        counts.append(len(asyncio.all_tasks()))
        await asyncio.sleep(30)

    async def outer() -> None:
        await await_linked(inner(), token)  # the same token again, one layer down

    asyncio.get_running_loop().call_later(0.05, token.cancel)
    with pytest.raises(asyncio.CancelledError):
        await await_linked(outer(), token)
    assert counts == [before]
    assert len(token._callbacks) == 1  # one link, however many layers await under the token
