"""The task helpers' cancellation: a caller told to stop always stops.

``asyncio.gather`` (Python 3.10 to 3.13 alike) hands its caller a child's error instead of
the caller's own cancellation when both come in one loop iteration; a fan-out worker took
that error for a failed job, went back to its empty queue, and the run never ended.
"""

from __future__ import annotations

import asyncio

import pytest

from sarvam_async._tasks import gather_or_cancel


async def test_a_cancelled_gather_raises_cancelled_even_as_a_child_fails() -> None:
    go = asyncio.Event()
    long_cancelled = asyncio.Event()

    async def fails() -> None:
        await go.wait()
        raise ValueError("a download failed")

    async def long() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            long_cancelled.set()

    caller = asyncio.ensure_future(gather_or_cancel(fails(), long()))
    await asyncio.sleep(0.01)  # the caller waits on both
    go.set()
    await asyncio.sleep(0)  # `fails` raises; the gather hears of it only a step later ...
    caller.cancel()  # ... after the caller is cancelled
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert long_cancelled.is_set()  # and nothing of it is left running


async def test_the_first_error_is_raised_once_the_others_have_ended() -> None:
    ended: list[str] = []

    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("first")

    async def slow() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            ended.append("slow")

    with pytest.raises(ValueError, match="first"):
        await gather_or_cancel(slow(), fails())
    assert ended == ["slow"]
    assert await gather_or_cancel(asyncio.sleep(0, "a"), asyncio.sleep(0, "b")) == ["a", "b"]
    assert await gather_or_cancel() == []


async def test_the_error_raised_is_the_first_to_happen_not_the_first_listed() -> None:
    go = asyncio.Event()

    # both fail in one loop iteration, `first` a step before `second`, though listed after it
    async def second() -> None:
        await asyncio.sleep(0)  # waits on the event after `first`: woken after it
        await go.wait()
        raise ValueError("second")

    async def first() -> None:
        await go.wait()
        raise KeyError("first")

    waiting = asyncio.ensure_future(gather_or_cancel(second(), first()))
    await asyncio.sleep(0.01)
    go.set()
    with pytest.raises(KeyError):
        await waiting


async def test_a_child_cancelled_from_outside_stops_the_others_at_once() -> None:
    ended: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            ended.append("slow")

    victim = asyncio.ensure_future(asyncio.sleep(60))
    waiting = asyncio.ensure_future(gather_or_cancel(victim, slow()))
    await asyncio.sleep(0.01)
    victim.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 5)  # not the 60 s of the other child
    assert ended == ["slow"]
