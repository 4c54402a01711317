"""Run awaitables together; on the first failure, cancel the rest and wait for them.

``asyncio.gather`` leaves the others running when one raises: downloads whose journal had
failed went on writing after the caller had moved on. ``asyncio.TaskGroup`` does this from
Python 3.11; the package still supports 3.10.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["gather_or_cancel"]

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
