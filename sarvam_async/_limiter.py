"""The client-wide adaptive limiter: bounds requests in flight and paces their rate.

Every API attempt of a client passes through one :class:`AdaptiveLimiter`:

* **In flight**: a semaphore sized to the connection pool, so thousands of waiting calls
  queue here, cheaply, instead of in aiohttp's pool where waiting burns the connect timeout.
* **Rate**: a token bucket whose rate is learned the way TCP learns a congestion window.

  *Slow start*: from a modest 2 requests/s, each accepted answer adds ``slow_start_gain``
  (4) requests/s, or a tenth of the rate past 40/s: exponential growth, thousands a
  second within a second or two against a server that never refuses.

  *Exit*: the first 429/503 halves the rate the server was accepting (slow start may have
  overshot twofold). For ``_EXIT_PHASE`` seconds after that, each further refusal of a
  request that was sent since the last cut, after queueing for the pace, halves it again:
  several processes that started together overshoot together, and one halving may not be
  enough.

  *Congestion avoidance*: afterwards a refusal cuts the rate to ``decrease`` (0.85) of
  itself, once per burst (refusals of requests sent before the cut do not cut again) and
  no sooner than a second, and two paced requests, after the previous cut. Each accepted
  answer then adds ``increase`` (1 %) of the rate's *scale*: the highest rate at which
  the server refused it, which does not shrink when the client is cut. Counting per
  answer, not per second, makes the refusal share the same at every plan size (about one
  refusal per ``(1 - decrease) / increase`` answers; above about 5 requests/s, where
  answers come fast, winning a cut back takes 3 s at the least, so refusals get rarer
  still); a scale that does not shrink lets a client that
  was unluckily refused several times win its share back as fast as the others, so
  processes sharing an account converge on equal shares. Once the rate passes the level
  at which it was last refused (the *ceiling*) with no refusal, the old limit is gone
  (neighbours left, or the plan grew): probing speeds up with the time spent above it,
  up to half the rate again each second, which lets the last busy process take the whole
  limit quickly. A ``rate_limit`` the user gave counts as no refusal: nothing probes past
  it until the server refuses.

  Only answers to calls that had to wait for the pace count as evidence: a client whose
  demand is below its pace learns nothing about a faster one, and its rate stays put.
* **Hold**: a ``Retry-After`` (up to ``max_hold`` seconds) holds every call of the client,
  not only the refused one, until it has passed.

Waiters are woken in FIFO order by a single timer, never as a herd. When tokens are plenty
(a server that never refuses) an acquire is a semaphore, a clock read and some arithmetic.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import _constants as C
from .errors import ClientClosedError

__all__ = ["AdaptiveLimiter", "ClientStats"]

_THROTTLE_STATUSES = frozenset({429, 503})
_GOODPUT_WINDOW = 1.0  # seconds per bucket of the accepted-rate estimate
_FAST_START_SHARE = 0.1  # slow start's step above 40 requests/s: a tenth of the rate
_EXIT_DECREASE = 0.5  # the first cut halves what the server was accepting
_EXIT_PHASE = 1.5  # seconds after a halving in which a new refusal halves again
_CUT_SPACING = 2.0  # congestion avoidance: at least this many paced requests between cuts
_CUT_GAP = 1.0  # ... and at least this many seconds
_CATCH_UP_MAX = 4.0  # a client far under its scale grows at most this many times faster
_RESTORE_TIME = 3.0  # seconds, at the least, to climb back from a cut to the scale
_PROBE_GAIN = 0.2  # above the ceiling: growth per answer, per second spent above it
_PROBE_MAX = 0.5  # ... up to half a request/s per answer
_WAITED = 1  # low bit of a ticket: the call waited for the pace


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
        initial_rate: float = 2.0,
        min_rate: float = 1.0 / 60.0,
        max_rate: float = 1e6,
        slow_start_gain: float = 4.0,
        increase: float = 0.01,
        decrease: float = 0.85,
        cut_interval: float = 0.3,
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
        self._decrease = decrease
        self._cut_interval = cut_interval
        self._burst_seconds = burst_seconds
        self._max_hold = max_hold
        self._clock = clock
        self._tokens = 1.0  # no opening burst: processes starting together would collide
        self._last = clock()
        self._last_cut = -1e18  # a first refusal may always cut
        self._exit_at = -1e18  # when slow start last halved the rate
        # the rate at the last refusal; a known plan is no refusal, so no probing past it
        self._ceiling = 0.0 if rate_limit is None else math.inf
        self._scale = self.rate  # the highest such rate: sets the step of growth
        self._above_since: float | None = None  # when the rate passed the ceiling
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
            waited = 0
            if self.adaptive and (self._waiters or not self._take()):
                waited = _WAITED  # demand reached the pace: its answer is evidence
                await self._wait_for_token()
        except BaseException:
            self._sem.release()
            raise
        self.requests += 1
        self._in_flight += 1
        return self._epoch * 2 + waited

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
            self._accepted(ticket)
        elif status in _THROTTLE_STATUSES:
            self.throttled += 1
            if self.adaptive:
                self._refused(ticket, retry_after)

    def _accepted(self, ticket: int) -> None:
        now = self._clock()
        self._window_accepted += 1
        elapsed = now - self._window_start
        if elapsed >= _GOODPUT_WINDOW:
            self._accepted_rate = self._window_accepted / elapsed
            self._window_start = now
            self._window_accepted = 0
        if not ticket & _WAITED:
            return  # sent without waiting: says nothing about a faster pace
        old = self.rate
        if self.slow_start:  # per accepted answer, so the climb slows at the server's limit
            step = max(self._slow_start_gain, _FAST_START_SHARE * old)  # quicker past 40/s
        else:
            scale = self._scale
            step = self._increase * scale * min(scale / old, _CATCH_UP_MAX)
            # at high rates answers come fast: take at least _RESTORE_TIME to win a cut back
            step = min(step, (1.0 - self._decrease) * scale / (_RESTORE_TIME * old))
            if old >= self._ceiling:  # past the last refusal unrefused: the limit moved
                if self._above_since is None:
                    self._above_since = now
                probe = min(_PROBE_GAIN * (now - self._above_since), _PROBE_MAX)
                step = max(step, probe * min(old, 1.0))
        self.rate = min(self._max_rate, old + step)
        if self._waiters and self.rate >= 1.5 * old:
            self._arm(rearm=True)  # the timer was set for a slower pace

    def _refused(self, ticket: int, retry_after: float | None) -> None:
        now = self._clock()
        if retry_after is not None and 0 < retry_after <= self._max_hold:
            self._blocked_until = max(self._blocked_until, now + retry_after)
        # the exit goes on halving only while calls queue for the pace: a refusal of a call
        # that did not wait says the server refused, not that the pace was too fast
        exiting = now - self._exit_at < _EXIT_PHASE and bool(ticket & _WAITED)
        spacing = self._cut_interval if exiting else max(_CUT_GAP, _CUT_SPACING / self.rate)
        # One cut per burst: only a refusal of a request sent since the last cut, and not
        # straight after it, says the cut was not enough.
        if ticket >> 1 == self._epoch and now - self._last_cut >= spacing:
            self._epoch += 1
            self._last_cut = now
            self._cut(now, exiting)
        self._arm(rearm=True)

    def _cut(self, now: float, exiting: bool) -> None:
        level = self.rate
        if self.slow_start:  # halve what the server accepted, not a runaway rate
            accepted = self._recent_accepted(now)
            if accepted > 0:
                level = min(level, accepted)
            self.slow_start = False
            exiting = True
        if exiting:  # the exit's halvings also reset the scale: the old one overshot
            cut = self._scale = level * _EXIT_DECREASE
            self._exit_at = now
        else:
            cut = level * self._decrease
            self._scale = max(self._scale, level)
        self._ceiling = level
        self._above_since = None
        self.rate = max(self._min_rate, cut)
        self._tokens = min(self._tokens, 0.0)

    def _recent_accepted(self, now: float) -> float:
        """Accepted answers per second over about the last second (a sliding estimate)."""
        elapsed = now - self._window_start
        if self._accepted_rate == 0.0:  # no full window yet: count over at least one
            return self._window_accepted / max(elapsed, _GOODPUT_WINDOW)
        weight = max(0.0, 1.0 - elapsed / _GOODPUT_WINDOW)
        return self._accepted_rate * weight + self._window_accepted / max(elapsed, _GOODPUT_WINDOW)

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
