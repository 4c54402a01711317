"""Task helpers that keep cancellation intact on Python 3.10 and 3.11.

``gather_or_cancel``: run awaitables together; on the first failure, cancel the rest and
wait for them. ``asyncio.gather`` leaves the others running when one raises: downloads whose
journal had failed went on writing after the caller had moved on. ``asyncio.TaskGroup`` does
this from Python 3.11; the package still supports 3.10. It also never trades the caller's
cancellation for a child's error: a gather cancelled in the loop iteration in which one child
failed raises that error instead (its cancel() still found a child to cancel), and a fan-out
worker that took it for a job's failure went back to its empty queue and hung the run.

``wait_through_cancel``: wait for work that must not be abandoned (a journal write in a
thread, children being cancelled), and report a cancellation that came meanwhile.

``close_at_loop_end``: close a connection owned by the library when its loop shuts down, so
one used under ``asyncio.run`` without ``async with`` leaves no socket open behind it.

``within``: ``asyncio.wait_for`` without its race. Before Python 3.12, a ``wait_for`` that is
cancelled just as what it waits for completes returns the result and drops the
cancellation: a cancelled call then went on, and a loop around it never ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

__all__ = ["close_at_loop_end", "gather_or_cancel", "wait_through_cancel", "within"]

T = TypeVar("T")


async def gather_or_cancel(*aws: Awaitable[T]) -> list[T]:
    """The results of ``aws`` in order; the first error is raised once all have ended.

    A cancellation of the caller cancels them all and raises CancelledError once they have
    ended, whatever they raised meanwhile.
    """
    tasks = [asyncio.ensure_future(a) for a in aws]
    if not tasks:
        return []
    failures: list[asyncio.Future[T]] = []  # in the order they ended

    def note(task: asyncio.Future[T]) -> None:
        if task.cancelled() or task.exception() is not None:
            failures.append(task)

    for task in tasks:
        task.add_done_callback(note)
    pending: set[asyncio.Future[T]] = set(tasks)
    try:
        while pending and not failures:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # the caller was cancelled
        await _cancel_all(tasks)
        raise
    if not failures:
        return [task.result() for task in tasks]
    if await _cancel_all(tasks):
        raise asyncio.CancelledError
    return [failures[0].result()]  # raises the first error (a cancelled child: CancelledError)


async def _cancel_all(tasks: Sequence[asyncio.Future[Any]]) -> bool:
    """Cancel ``tasks`` and wait until every one has ended; True if the caller was cancelled
    meanwhile (the caller then raises CancelledError itself)."""
    for task in tasks:
        task.cancel()
    cancelled = await wait_through_cancel(*tasks)
    for task in tasks:  # retrieved: nothing is logged as "never retrieved"
        if not task.cancelled():
            task.exception()
    return cancelled


async def wait_through_cancel(*futures: asyncio.Future[Any]) -> bool:
    """Wait until every one of ``futures`` has ended, even if the caller is cancelled
    meanwhile; True if it was (the caller then raises CancelledError itself, once what it
    must not abandon is over)."""
    cancelled = False
    while not all(future.done() for future in futures):
        try:
            await asyncio.wait(futures)
        except asyncio.CancelledError:
            cancelled = True
    return cancelled


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


def close_at_loop_end(close: Callable[[], Awaitable[object]]) -> AsyncGenerator[None, None]:
    """An async generator, started on the running loop, that awaits ``close()`` when the loop
    shuts its generators down (``asyncio.run`` does, before closing the loop).

    The caller keeps a reference to it for as long as the connection lives; ``close`` must
    be safe to call on what is already closed. Advancing the generator to its ``yield`` here
    registers it with the loop.
    """

    async def keep() -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await close()

    gen = keep()
    with contextlib.suppress(StopIteration):  # raised once it is suspended at its yield
        gen.__anext__().send(None)
    return gen
