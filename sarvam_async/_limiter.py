"""The client-wide adaptive limiter: bounds requests in flight and paces their rate.

Every API attempt of a client passes through one :class:`AdaptiveLimiter`:

* **In flight**: a semaphore sized to the connection pool, so thousands of waiting calls
  queue here, cheaply, instead of in aiohttp's pool where waiting burns the connect timeout.
* **Rate**: a token bucket whose rate is learned the way TCP learns a congestion window.
  *Slow start*: from a modest rate, each success adds ``slow_start_gain`` requests/second,
  so the rate grows exponentially (e-folding in a quarter of a second at full demand) until
  the first refusal. *Congestion avoidance*: after a refusal, each success adds
  ``increase`` requests/second (a few per cent a second at full demand), while each 429/503
  multiplies the rate by ``decrease``, once per burst of refusals (refusals of requests sent
  before the last cut do not cut again). Several processes sharing an account each back off
  on their own refusals and settle near the account's limit without talking to each other.
* **Hold**: a ``Retry-After`` holds every call of the client, not only the refused one,
  until it has passed.

Waiters are woken in FIFO order by a single timer, never as a herd. When tokens are plenty
(a server that never refuses) an acquire is a semaphore, a clock read and some arithmetic.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["AdaptiveLimiter", "ClientStats"]

_THROTTLE_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class ClientStats:
    """A snapshot of a client's traffic and limiter, from ``client.stats``.

    ``rate_per_minute`` is the pace the limiter currently allows (``None`` while it is
    unbounded in slow start past ``max_rate``); ``in_flight`` and ``queued`` count API
    attempts; ``throttled`` counts 429/503 answers; ``retries`` counts retry attempts.
    """

    requests: int
    successes: int
    throttled: int
    retries: int
    in_flight: int
    queued: int
    rate_per_minute: float
    slow_start: bool


class AdaptiveLimiter:
    """Paces and bounds API attempts; see the module docstring.

    ``rate_limit`` (requests per minute) starts the rate there and skips slow start, for a
    user who knows their plan. ``adaptive=False`` keeps only the in-flight bound (no pacing,
    no hold), for tests on a fake clock or when something outside paces the calls. The clock
    and the loop's timer drive all waiting.
    """

    def __init__(
        self,
        *,
        max_in_flight: int,
        rate_limit: float | None = None,
        initial_rate: float = 2.0,
        min_rate: float = 1.0 / 60.0,
        max_rate: float = 1e6,
        slow_start_gain: float = 4.0,
        increase: float = 0.05,
        decrease: float = 0.7,
        burst_seconds: float = 0.05,
        adaptive: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sem = asyncio.Semaphore(max_in_flight)
        self.adaptive = adaptive
        self.slow_start = rate_limit is None
        self.rate = (rate_limit / 60.0) if rate_limit is not None else initial_rate
        self._min_rate = min_rate
        self._max_rate = max_rate
        self._slow_start_gain = slow_start_gain
        self._increase = increase
        self._decrease = decrease
        self._burst_seconds = burst_seconds
        self._clock = clock
        self._tokens = 1.0
        self._last = clock()
        self._blocked_until = 0.0
        self._epoch = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._in_flight = 0
        self.requests = 0
        self.successes = 0
        self.throttled = 0
        self.retries = 0

    # ---------------------------------------------------------------- acquiring

    async def acquire(self) -> int:
        """Wait for a slot and a token; returns the ticket to hand back to ``release``."""
        await self._sem.acquire()
        try:
            if self.adaptive and (self._waiters or not self._take()):
                await self._wait_for_token()
        except BaseException:
            self._sem.release()
            raise
        self.requests += 1
        self._in_flight += 1
        return self._epoch

    def _take(self) -> bool:
        now = self._clock()
        if now < self._blocked_until:
            return False
        capacity = max(1.0, self.rate * self._burst_seconds)
        tokens = self._tokens + (now - self._last) * self.rate
        self._last = now
        if tokens > capacity:
            tokens = capacity
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        return False

    async def _wait_for_token(self) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self._arm()
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self._tokens += 1.0  # we were handed a token we will not use: give it back
            else:
                self._waiters.remove(fut)
            self._arm()
            raise

    def _arm(self) -> None:
        """Schedule the one wake-up timer for when the head waiter can go."""
        if self._timer is not None or not self._waiters:
            return
        now = self._clock()
        delay = max(self._blocked_until - now, (1.0 - self._tokens) / self.rate, 0.0)
        self._timer = asyncio.get_running_loop().call_later(delay, self._wake)

    def _wake(self) -> None:
        self._timer = None
        while self._waiters and self._take():
            fut = self._waiters.popleft()
            if fut.cancelled():
                self._tokens += 1.0
                continue
            fut.set_result(None)
        self._arm()

    # ---------------------------------------------------------------- feedback

    def release(self, ticket: int, status: int, retry_after: float | None) -> None:
        """Hand back a slot with what the server answered (``status`` 0: no answer)."""
        self._sem.release()
        self._in_flight -= 1
        if 200 <= status < 300:
            self.successes += 1
        if 200 <= status < 500 and status != 429:  # the server took the request at this pace
            gain = self._slow_start_gain if self.slow_start else self._increase
            self.rate = min(self._max_rate, self.rate + gain)
        elif status in _THROTTLE_STATUSES:
            self.throttled += 1
            if not self.adaptive:
                return
            now = self._clock()
            if retry_after is not None and now + retry_after > self._blocked_until:
                self._blocked_until = now + retry_after
            if ticket == self._epoch:  # first refusal since the last cut
                self._epoch += 1
                self.slow_start = False
                self.rate = max(self._min_rate, self.rate * self._decrease)
                self._tokens = min(self._tokens, 0.0)
            if self._timer is not None:  # re-arm for the new rate or hold
                self._timer.cancel()
                self._timer = None
            self._arm()

    def stats(self) -> ClientStats:
        """A snapshot of the counters and the current rate."""
        return ClientStats(
            requests=self.requests,
            successes=self.successes,
            throttled=self.throttled,
            retries=self.retries,
            in_flight=self._in_flight,
            queued=len(self._waiters),
            rate_per_minute=self.rate * 60.0,
            slow_start=self.slow_start,
        )
