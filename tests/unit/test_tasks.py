"""``chatserver.tasks.stop``: a stopped task ends; the caller's cancellation is not swallowed."""

from __future__ import annotations

import asyncio

import pytest

from chatserver.tasks import stop

pytestmark = pytest.mark.anyio


async def test_stop_ends_a_running_task() -> None:
    task = asyncio.ensure_future(asyncio.sleep(3600))
    await stop(task)
    assert task.cancelled()


async def test_stop_drops_what_the_task_raised_on_its_way_out() -> None:
    async def failing_cleanup() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            raise RuntimeError("cleanup failed")

    task = asyncio.ensure_future(failing_cleanup())
    await asyncio.sleep(0)
    await stop(task)  # does not raise
    assert isinstance(task.exception(), RuntimeError)


async def test_the_callers_cancellation_propagates() -> None:
    async def stubborn() -> None:
        while True:  # takes a while to end once cancelled
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                await asyncio.sleep(0.2)
                return

    inner = asyncio.ensure_future(stubborn())
    await asyncio.sleep(0)
    after_stop: list[str] = []

    async def closer() -> None:
        await stop(inner)
        after_stop.append("ran on")

    outer = asyncio.ensure_future(closer())
    await asyncio.sleep(0.05)  # closer waits for inner
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert after_stop == []  # the caller did not run on past its cancellation
    await asyncio.wait([inner])


def test_stop_of_a_task_that_ended_on_a_loop_now_closed() -> None:
    async def fail() -> None:
        raise RuntimeError("ended badly")

    loop = asyncio.new_event_loop()
    task = loop.create_task(fail())
    with pytest.raises(RuntimeError):
        loop.run_until_complete(task)
    loop.close()
    asyncio.run(stop(task))  # another loop: nothing to wait for, nothing raised


async def test_a_task_that_swallows_its_cancellation_is_cancelled_again() -> None:
    """A loop whose library swallowed a CancelledError still ends (a Redis heartbeat did not)."""
    swallowed = 0

    async def heartbeat() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                if swallowed < 2:  # as a library's retry loop would
                    swallowed += 1
                    continue
                raise

    task = asyncio.ensure_future(heartbeat())
    await asyncio.sleep(0)
    await asyncio.wait_for(stop(task), timeout=10)
    assert task.cancelled() and swallowed == 2
