"""Waiting out download-files' lag behind the status endpoint.

Right after a job's status turns terminal, the live download-files call can still answer
400 ``Job <id> is not in COMPLETED state. Current state: Pending`` for a few seconds. That
one refusal means "not yet": :func:`wait_out_lag` checks the job's status once, and if the
job has finished asks again with backoff until ``timeout`` seconds have passed, then raises
:class:`~sarvam_async.errors.OutputsNotReadyError`. No other 400 is retried.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from . import _constants as C
from ._retry import RetryPolicy
from .errors import APIStatusError, BadRequestError, OutputsNotReadyError
from .models import JobStatusResponse

__all__ = ["not_ready_state", "wait_out_lag"]

T = TypeVar("T")
logger = logging.getLogger("sarvam_async")

_NOT_READY = re.compile(r"\bnot in completed state\b", re.IGNORECASE)
_STATE = re.compile(r"current state:\s*([A-Za-z][A-Za-z _]*)", re.IGNORECASE)


def not_ready_state(exc: APIStatusError) -> str | None:
    """The state a download-files "not in COMPLETED state" 400 names, or None for any other."""
    if exc.status_code != 400 or not _NOT_READY.search(exc.message):
        return None
    match = _STATE.search(exc.message)
    return match.group(1).strip() if match else "unknown"


async def wait_out_lag(
    ask: Callable[[], Awaitable[T]],
    *,
    job_id: str,
    status: Callable[[], Awaitable[JobStatusResponse]],
    timeout: float,
    policy: RetryPolicy,
) -> T:
    """Return ``ask()``, asking again while download-files lags behind a terminal status.

    ``status`` fetches the job's status (called once, on the first refusal). The pauses
    use ``policy``'s sleep, clock and jitter. Raises OutputsNotReadyError at once if the job
    has not finished, or once ``timeout`` seconds have passed; any other error as is.
    """
    started = policy.clock()
    try:
        return await ask()
    except BadRequestError as exc:
        said = not_ready_state(exc)
        if said is None:
            raise
        refusal = exc
    current = (await status()).job_state
    if not current.is_terminal:
        raise OutputsNotReadyError(
            f"job {job_id} is {current.value}: its outputs can be downloaded once it has "
            "finished; call wait_until_complete() first",
            job_id=job_id,
            state=current.value,
        ) from refusal
    delay = C.DOWNLOAD_LAG_FIRST_DELAY
    while True:
        waited = policy.clock() - started
        remaining = timeout - waited
        if remaining <= 0:
            raise OutputsNotReadyError(
                f"job {job_id} is {current.value}, but download-files still says it is "
                f"{said} after {waited:.1f}s. Its outputs are not lost: download them again "
                "in a minute (download_lag_timeout= on the client waits longer)",
                job_id=job_id,
                state=current.value,
                waited=waited,
            ) from refusal
        pause = min(remaining, delay * (0.5 + 0.5 * policy.jitter()))
        logger.info(
            "download-files says job %s is %s although it is %s; asking again in %.2fs",
            job_id,
            said,
            current.value,
            pause,
        )
        await policy.sleep(pause)
        delay = min(C.DOWNLOAD_LAG_MAX_DELAY, delay * 2)
        try:
            return await ask()
        except BadRequestError as exc:
            again = not_ready_state(exc)
            if again is None:
                raise
            said, refusal = again, exc
