"""The client-wide adaptive limiter: bounds requests in flight and paces their rate.

Every API attempt of a client passes through one :class:`AdaptiveLimiter`:

* **In flight**: a semaphore sized to the connection pool, so thousands of waiting calls
  queue here, cheaply, instead of in aiohttp's pool where waiting burns the connect timeout.
* **Rate**: a token bucket whose rate is learned the way TCP learns a congestion window.
  *Slow start*: from a modest 5 requests/s, each answer the server accepted adds
  ``slow_start_gain`` (4) requests/second, or a tenth of the rate past 40/s. At full
  demand the rate grows exponentially (thousands a second within a second); near a server's
  limit it climbs by at most 4 times the accepted rate per second, which keeps the
  overshoot, and the 429s it costs, small.
  *Congestion avoidance* begins at the first 429/503: the rate is cut to ``decrease`` of
  itself, and to under the rate the server was accepting, once per burst of refusals and
  at most once per ``cut_interval`` (refusals of requests sent before the cut do not cut
  again, and isolated refusals cannot grind the rate down). Then each accepted answer adds
  ``increase`` requests/second plus ``increase_share`` of the rate (at full demand, +5 %/s
  at 1 request/s, +7 %/s at 10), the share growing with the square of the time since the
  last cut (up to tenfold), so that a client whose neighbours went quiet soon finds the
  room they left. Several processes sharing an account each back off on their own
  refusals and settle near the account's limit without talking to each other.
* **Hold**: a ``Retry-After`` (up to ``max_hold`` seconds) holds every call of the client,
  not only the refused one, until it has passed.

Waiters are woken in FIFO order by a single timer, never as a herd. When tokens are plenty
(a server that never refuses) an acquire is a semaphore, a clock read and some arithmetic.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import _constants as C
from .errors import ClientClosedError

__all__ = ["AdaptiveLimiter", "ClientStats"]

_THROTTLE_STATUSES = frozenset({429, 503})
_GOODPUT_WINDOW = 1.0  # seconds per bucket of the accepted-rate estimate
_FAST_START_SHARE = 0.1  # slow start's step above 40 requests/s: a tenth of the rate
_BELOW_ACCEPTED = 0.75  # a cut lands under the rate the server was accepting
_PROBE_AFTER = 5.0  # seconds without a cut after which probing speeds up (quadratically)
_PROBE_MAX = 3.0  # ... up to (1 + 3**2) = 10 times its share, 15 s after a cut


@dataclass(frozen=True)
class ClientStats:
    """A snapshot of a client's traffic and limiter, from ``client.stats``.

    ``rate_per_minute`` is the pace the limiter currently allows; ``in_flight`` and
    ``queued`` count API attempts; ``throttled`` counts 429/503 answers; ``retries`` counts
    retry attempts; ``slow_start`` is True until the first refusal.
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
    no hold), for tests on a fake clock or when something outside paces the calls.
    """

    def __init__(
        self,
        *,
        max_in_flight: int,
        rate_limit: float | None = None,
        initial_rate: float = 5.0,
        min_rate: float = 1.0 / 60.0,
        max_rate: float = 1e6,
        slow_start_gain: float = 4.0,
        increase: float = 0.05,
        increase_share: float = 0.002,
        decrease: float = 0.7,
        cut_interval: float = 1.0,
        burst_seconds: float = 0.05,
        max_hold: float = C.RETRY_MAX_RETRY_AFTER,
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
        self._increase_share = increase_share
        self._decrease = decrease
        self._cut_interval = cut_interval
        self._burst_seconds = burst_seconds
        self._max_hold = max_hold
        self._clock = clock
        self._tokens = 1.0  # no opening burst: processes starting together would collide
        self._last = clock()
        self._last_cut = -1e18  # a first refusal may always cut
        self._calm_since = self._last  # the probing clock: since the last cut, or the start
        self._blocked_until = 0.0
        self._epoch = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._in_flight = 0
        self._window_start = self._last
        self._window_accepted = 0
        self._accepted_rate = 0.0
        self.requests = 0
        self.successes = 0
        self.throttled = 0
        self.retries = 0

    # ---------------------------------------------------------------- acquiring

    async def acquire(self) -> int:
        """Wait for a slot and a token; returns the ticket to hand back to ``release``.

        Raises ClientClosedError once ``close()`` has run.
        """
        await self._sem.acquire()
        try:
            if self._closed:
                raise ClientClosedError("the client was closed while this call waited")
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
                self._tokens += 1.0  # handed a token we will not use: give it back
            else:
                with contextlib.suppress(ValueError):  # the wake-up may have dropped it
                    self._waiters.remove(fut)
            self._arm()
            raise

    def _arm(self, *, rearm: bool = False) -> None:
        """Schedule the one wake-up timer for when the head waiter can go."""
        if rearm and self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._timer is not None or not self._waiters or self._closed:
            return
        now = self._clock()
        delay = max(self._blocked_until - now, (1.0 - self._tokens) / self.rate, 0.0)
        self._timer = asyncio.get_running_loop().call_later(delay, self._wake)

    def _wake(self) -> None:
        self._timer = None
        while self._waiters and self._take():
            fut = self._waiters.popleft()
            if fut.done():  # cancelled while queued
                self._tokens += 1.0
                continue
            fut.set_result(None)
        self._arm()

    # ---------------------------------------------------------------- feedback

    def release(self, ticket: int, status: int, retry_after: float | None) -> None:
        """Hand back a slot with the server's answer (``status`` 0: none, or not a signal).

        A 429/503 cuts the rate and, with ``retry_after`` up to ``max_hold``, holds every
        call; the caller passes no status for refusals that say nothing about pace
        (exhausted credits).
        """
        self._sem.release()
        self._in_flight -= 1
        if 200 <= status < 300:
            self.successes += 1
        if 200 <= status < 500 and status != 429:  # the server took the request at this pace
            self._accepted()
        elif status in _THROTTLE_STATUSES:
            self.throttled += 1
            if self.adaptive:
                self._refused(ticket, retry_after)

    def _accepted(self) -> None:
        now = self._clock()
        self._window_accepted += 1
        elapsed = now - self._window_start
        if elapsed >= _GOODPUT_WINDOW:
            self._accepted_rate = self._window_accepted / elapsed
            self._window_start = now
            self._window_accepted = 0
        old = self.rate
        if self.slow_start:  # per accepted answer, so the climb slows at the server's limit
            step = max(self._slow_start_gain, _FAST_START_SHARE * old)  # quicker past 40/s
            self.rate = min(self._max_rate, old + step)
        else:  # a little per accepted answer, more at higher rates and long after a cut
            calm = min((now - self._calm_since) / _PROBE_AFTER, _PROBE_MAX)
            share = self._increase_share * (1.0 + calm * calm)
            self.rate = min(self._max_rate, old + self._increase + share * old)
        if self._waiters and self.rate >= 1.5 * old:
            self._arm(rearm=True)  # the timer was set for a slower pace

    def _refused(self, ticket: int, retry_after: float | None) -> None:
        now = self._clock()
        if retry_after is not None and 0 < retry_after <= self._max_hold:
            self._blocked_until = max(self._blocked_until, now + retry_after)
        # First refusal of a request sent since the last cut, and not within a second of
        # it: one cut per burst of refusals, and isolated refusals cannot grind it down.
        if ticket == self._epoch and now - self._last_cut >= self._cut_interval:
            self._epoch += 1
            self._last_cut = self._calm_since = now
            self._cut(now)
        self._arm(rearm=True)

    def _cut(self, now: float) -> None:
        self.slow_start = False
        cut = self.rate * self._decrease
        elapsed = max(now - self._window_start, 0.05)
        accepted = max(self._accepted_rate, self._window_accepted / elapsed)
        if accepted > 0:  # no faster than the server was accepting
            cut = min(cut, _BELOW_ACCEPTED * accepted)
        self.rate = max(self._min_rate, cut)
        self._tokens = min(self._tokens, 0.0)

    def close(self) -> None:
        """Fail every queued call with ClientClosedError and drop the timer."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(ClientClosedError("the client was closed while this call waited"))

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
