"""The retry policy (built on tenacity) and ``Retry-After`` parsing.

The happy path never touches tenacity: the transport makes a first attempt on its own and
only hands the call to :meth:`RetryPolicy.run` once that attempt has failed in a retryable
way. The first failure is replayed into tenacity as attempt 1, so attempt numbering, the
backoff schedule and the deadline all count from the real first attempt.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from . import _constants as C
from . import _options
from .errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    ConfigurationError,
)

__all__ = ["DeadlineReached", "RetryPolicy", "parse_retry_after"]


class DeadlineReached(APITimeoutError):
    """The call's retry deadline passed, or would pass, before it could be sent: final."""


T = TypeVar("T")
logger = logging.getLogger("sarvam_async")


def parse_retry_after(
    headers: Mapping[str, str], now: Callable[[], float] = time.time
) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``retry-after-ms`` (milliseconds) wins when both are present. ``Retry-After`` may be
    seconds (integer or decimal) or an HTTP-date. Unparseable or negative values are ignored.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            ms = float(raw_ms)
        except ValueError:
            ms = -1.0
        if 0 <= ms < math.inf:
            return ms / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now()
        return max(seconds, 0.0)
    return seconds if 0 <= seconds < math.inf else None  # also rejects NaN


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to retry a failed API call.

    Retried: the statuses in ``retry_statuses`` (429 and 503 by default) and connection
    failures. Never retried: other statuses (400, 403, 404, 422 ...), a 429 whose code is
    ``insufficient_quota_error`` (waiting will not bring credits back), and, for calls that
    are not idempotent (initiate, start), a connection failure after the request was sent:
    the server may have acted on it.

    Delays: the server's ``retry-after-ms`` / ``Retry-After`` exactly, when it sends one; if
    it asks for more than ``max_retry_after`` the error surfaces at once with
    ``retry_after`` set rather than sleeping. Otherwise full-jitter exponential backoff: a
    uniform draw in ``[0, min(max_delay, initial_delay * 2**(n-1))]`` before retry ``n``, so
    a fleet of clients refused together does not retry together.

    Bounds: ``max_attempts`` attempts in all, and ``deadline`` seconds from the first
    attempt; a retry whose delay would cross the deadline is not made (the call never
    overshoots it). The final failure is the typed error, with ``attempts`` set.

    ``sleep``, ``clock`` and ``jitter`` are injectable so that tests never wait.
    """

    max_attempts: int = C.RETRY_MAX_ATTEMPTS
    initial_delay: float = C.RETRY_INITIAL_DELAY
    max_delay: float = C.RETRY_MAX_DELAY
    deadline: float = C.RETRY_DEADLINE
    max_retry_after: float = C.RETRY_MAX_RETRY_AFTER
    retry_statuses: frozenset[int] = C.RETRY_STATUSES
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    jitter: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        # the checked values are kept: a Decimal or an int past float's range as a float
        attempts = _options.count(self.max_attempts, "RetryPolicy.max_attempts", infinite=True)
        object.__setattr__(self, "max_attempts", attempts)  # inf: until the deadline
        for name in ("initial_delay", "max_delay", "deadline", "max_retry_after"):
            value = _options.seconds(getattr(self, name), f"RetryPolicy.{name}", zero=True)
            object.__setattr__(self, name, value)
        statuses = self.retry_statuses
        if isinstance(statuses, str | bytes) or not isinstance(statuses, Iterable):
            raise ConfigurationError("RetryPolicy.retry_statuses must be a set of HTTP statuses")
        checked = frozenset(statuses)
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in checked):
            raise ConfigurationError("RetryPolicy.retry_statuses must hold int statuses")
        object.__setattr__(self, "retry_statuses", checked)
        for name in ("sleep", "clock", "jitter"):
            if not callable(getattr(self, name)):
                raise ConfigurationError(f"RetryPolicy.{name} must be callable")

    @classmethod
    def disabled(cls) -> RetryPolicy:
        """A policy that makes exactly one attempt."""
        return cls(max_attempts=1)

    @property
    def enabled(self) -> bool:
        """True when a failed call may be attempted again."""
        return self.max_attempts > 1

    def should_retry(self, exc: BaseException, *, idempotent: bool = True) -> bool:
        """True when ``exc`` is worth another attempt under this policy."""
        if isinstance(exc, APIStatusError):
            if exc.status_code not in self.retry_statuses:
                return False
            return not exc.quota_exhausted
        if isinstance(exc, DeadlineReached):
            return False
        if isinstance(exc, APIConnectionError):
            return idempotent or not exc.request_sent
        return False

    def backoff(self, retry_number: int) -> float:
        """Full-jitter delay before retry ``retry_number`` (1 for the first retry)."""
        ceiling = min(self.max_delay, self.initial_delay * (2.0 ** (retry_number - 1)))
        return ceiling * self.jitter()

    def delay_for(self, exc: BaseException, retry_number: int) -> float:
        """The pause before retry ``retry_number`` after ``exc``: the server's, or backoff."""
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        return self.backoff(retry_number)

    async def run(
        self,
        fn: Callable[[], Awaitable[T]],
        first_failure: BaseException,
        *,
        started: float,
        idempotent: bool = True,
        describe: str = "",
    ) -> T:
        """Retry ``fn`` after ``first_failure`` (attempt 1, already made at ``started``).

        Returns ``fn``'s result, or raises the last failure with ``attempts`` set.
        """
        replay: list[BaseException] = [first_failure]
        attempts = 0

        async def attempt() -> T:
            nonlocal attempts
            attempts += 1
            if replay:
                raise replay.pop()
            return await fn()

        def wait(state: RetryCallState) -> float:
            return self.delay_for(_failure(state), state.attempt_number)

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= self.max_attempts:
                return True
            retry_after = getattr(_failure(state), "retry_after", None)
            if retry_after is not None and retry_after > self.max_retry_after:
                return True
            return self.clock() - started + state.upcoming_sleep > self.deadline

        def log_retry(state: RetryCallState) -> None:
            if logger.isEnabledFor(logging.INFO):
                exc = _failure(state)
                status = getattr(exc, "status_code", None) or type(exc).__name__
                logger.info(
                    "retrying %s: %s on attempt %d/%s, next in %.3fs (request_id=%s)",
                    describe,
                    status,
                    state.attempt_number,
                    self.max_attempts,
                    state.upcoming_sleep,
                    getattr(exc, "request_id", None),
                    extra={"retry_cause": status},  # for tools that count retries by cause
                )

        retrying = AsyncRetrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception(lambda e: self.should_retry(e, idempotent=idempotent)),
            sleep=self.sleep,
            before_sleep=log_retry,
            reraise=True,
        )
        try:
            return await retrying(attempt)
        except APIError as exc:
            exc.attempts = attempts
            raise


def _failure(state: RetryCallState) -> BaseException:
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    assert exc is not None  # tenacity only waits/stops after a failed attempt
    return exc
