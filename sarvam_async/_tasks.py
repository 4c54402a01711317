"""Task helpers that keep cancellation intact on Python 3.10 and 3.11.

``gather_or_cancel``: run awaitables together; on the first failure, cancel the rest and
wait for them. ``asyncio.gather`` leaves the others running when one raises: downloads whose
journal had failed went on writing after the caller had moved on. ``asyncio.TaskGroup`` does
this from Python 3.11; the package still supports 3.10.

``within``: ``asyncio.wait_for`` without its race. Before Python 3.12, a ``wait_for`` that is
cancelled just as what it waits for completes returns the result and drops the
cancellation: a cancelled call then went on, and a loop around it never ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["gather_or_cancel", "within"]

T = TypeVar("T")


async def gather_or_cancel(*aws: Awaitable[T]) -> list[T]:
    """The results of ``aws`` in order; the first error is raised once all have ended."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def within(aw: Awaitable[T], timeout: float) -> T:
    """``aw``'s result; raises asyncio.TimeoutError after ``timeout`` seconds (``math.inf``:
    never; ``aw`` is then cancelled), and a cancellation of the caller always propagates (and
    cancels ``aw``)."""
    task = asyncio.ensure_future(aw)
    try:
        done, _ = await asyncio.wait((task,), timeout=None if timeout == math.inf else timeout)
    except BaseException:  # the caller was cancelled: so is the work, whatever its state
        task.cancel()
        raise
    if not done:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise asyncio.TimeoutError
    return task.result()
