"""Waiting for a job on its callback: sleep until it calls back, confirm with one status call.

A callback is a prompt, never the truth: on arrival the job's status is fetched once and
only a terminal status ends the wait. A slow safety poll (``CallbackConfig.safety_poll``)
covers a lost callback. A job the receiver did not watch from its start may have called
back before anyone listened, so its status is checked once first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from . import _constants as C
from ._callback_receiver import CallbackConfig, CallbackReceiver
from ._retry import RetryPolicy
from .errors import APIConnectionError, APIStatusError, JobTimeoutError
from .models import JobStatusResponse

__all__ = ["look_budget", "pause_before_next_look", "timed_out", "wait_for_callback"]

logger = logging.getLogger("sarvam_async")

Status = Callable[[RetryPolicy | None], Awaitable[JobStatusResponse]]
"""Fetches the job's status with the given retry policy (None: the client's)."""


def timed_out(
    job_id: str, timeout: float | None, last: JobStatusResponse | None
) -> JobTimeoutError:
    """The error of a wait on ``job_id`` that ran out of its ``timeout``."""
    state = last.job_state.value if last is not None else "unknown"
    return JobTimeoutError(
        f"job {job_id} still {state} when its {timeout:g}s wait ran out; it keeps running: "
        "call get_job(job_id) later to wait again",
        job_id=job_id,
        last_status=last,
    )


def look_budget(
    policy: RetryPolicy, deadline: float | None, clock: Callable[[], float]
) -> RetryPolicy | None:
    """The retry policy of a wait's next status call: ``None`` (the client's own) for a wait
    without a ``deadline``, else ``policy`` with what is left of it as its retry deadline,
    so that the call never outlives the wait."""
    if deadline is None:
        return None
    return dataclasses.replace(policy, deadline=max(deadline - clock(), C.MIN_CALL_TIME))


def pause_before_next_look(
    pause: float,
    deadline: float | None,
    clock: Callable[[], float],
    job_id: str,
    timeout: float | None,
    last: JobStatusResponse | None,
    *,
    looked: bool = True,
) -> float:
    """Seconds until a wait's next status call: ``pause``, cut for a wait with a ``deadline``.

    The last call goes ``WAIT_LAST_LOOK`` before the deadline, so that it has time to
    answer; once it is made, raises JobTimeoutError. A wait that has not ``looked`` at the
    status yet (a callback wait, or a timeout of a second or less) looks at once instead.
    A wait never outlives its timeout.
    """
    if deadline is None:
        return pause
    remaining = deadline - clock()
    if remaining <= C.WAIT_LAST_LOOK:
        if looked:
            raise timed_out(job_id, timeout, last)
        return 0.0
    return min(pause, remaining - C.WAIT_LAST_LOOK)


async def wait_for_callback(
    job_id: str,
    config: CallbackConfig,
    status: Status,
    *,
    policy: RetryPolicy,
    timeout: float | None,
    transient: Callable[[BaseException], bool],
) -> JobStatusResponse:
    """Wait until ``job_id`` is terminal, woken by its callbacks; returns the final status.

    Transient status errors (``transient``) are logged and the status asked again after
    a short pause; others raise. With ``timeout``, the last status call goes a second
    before it (at once, if none was made yet), then JobTimeoutError is raised.
    """
    receiver = config.receiver
    clock = policy.clock
    deadline = None if timeout is None else clock() + timeout
    check = not receiver.watching(job_id)  # not watched from its start: it may have called
    receiver.watch(job_id)
    last: JobStatusResponse | None = None
    looked = False  # a status call was made in this wait
    pause = config.safety_poll
    try:
        while True:
            if check:
                looked = True
                try:
                    last = await status(look_budget(policy, deadline, clock))
                except (APIStatusError, APIConnectionError) as exc:
                    if not transient(exc):
                        raise
                    logger.info("status of job %s: %s; will ask again", job_id, exc)
                    pause = min(config.safety_poll, C.CALLBACK_RETRY_PAUSE)
                else:
                    if last.job_state.is_terminal:
                        return last
                    pause = config.safety_poll
            delay = pause_before_next_look(
                pause, deadline, clock, job_id, timeout, last, looked=looked
            )
            await _arrival_or_pause(receiver, job_id, delay, policy.sleep)
            check = True
    finally:
        receiver.release(job_id)


async def _arrival_or_pause(
    receiver: CallbackReceiver,
    job_id: str,
    delay: float,
    sleep: Callable[[float], Awaitable[None]],
) -> None:
    """Return when ``job_id``'s next callback arrives or ``delay`` seconds have passed."""
    arrival = receiver.arrival(job_id)
    if arrival.done():
        return
    pause: asyncio.Future[None] = asyncio.ensure_future(sleep(delay))
    waits: set[asyncio.Future[Any]] = {arrival, pause}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        arrival.cancel()  # an event handed over meanwhile stays pending for the next wait
        pause.cancel()
        await asyncio.gather(pause, return_exceptions=True)
