"""The client-wide gate every API attempt passes: calls in flight, the pace, deadlines.

One FIFO queue and one timer serve every waiting call: a call goes when fewer than
``max_in_flight`` are in flight and the :class:`~._ratecontrol.RateController` lets it
(``adaptive=False`` keeps only the bound on calls in flight). Retries join the head of the
queue, so a refused call goes again as soon as the server's hint has passed, not behind the
whole fan-out. A call waits no later than its deadline: past it, ``acquire`` raises
:class:`Overdue` and the transport turns that into a typed timeout.

When nothing waits, an acquire is a comparison, a clock read and a small object; the queue
is only built when calls must wait. Futures are made on the loop that awaits them, so the
gate binds to no event loop.

A :class:`SharedLimiter` (``AsyncSarvam(rate_limiter=...)``) paces the calls of many
processes from one budget. While it is ``joined``, the gate keeps only the bound on calls in
flight and asks it for each call's turn; the local controller still hears every answer, and
paces again whenever the shared limiter has left (its store is down).
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from . import _options
from ._ratecontrol import Phase, RateController, Signal, Ticket
from .errors import ClientClosedError, ConfigurationError

__all__ = ["CLOSED", "ClientStats", "Limiter", "Overdue", "SharedLimiter", "check_plan"]


CLOSED = (
    "this AsyncSarvam client is closed; create a new one (or keep it open in an "
    "'async with' block for as long as you use it)"
)
"""The message of every call made on a closed client (ClientClosedError)."""


class Overdue(Exception):
    """The call's deadline passed, or would pass, before the gate let it go."""

    def __init__(self, waited: float) -> None:
        super().__init__(f"waited {waited:.3f}s")
        self.waited = waited


def check_plan(value: object, name: str) -> float | None:
    """A plan in requests per minute: None, or a positive finite number; else
    ConfigurationError naming ``name``."""
    if value is None:
        return None
    try:  # a positive finite real number, as a float
        return _options.seconds(value, name, finite=True)
    except ConfigurationError:
        raise ConfigurationError(f"{name} is requests per minute and must be positive") from None


class SharedLimiter(Protocol):
    """A rate budget shared with other processes: the gate's one seam to it.

    ``turn`` never raises for a failure of the shared store: it leaves (``joined`` turns
    False, the local controller paces) and lets the call go. An implementation may also
    have ``rate_limit``, the account's plan in requests per minute (or None): the client
    then paces itself no faster while the shared budget is out of reach.
    """

    def attach(self, api_key: str) -> None:
        """Called once by the client with its API key (to hash, never to keep)."""
        ...

    @property
    def joined(self) -> bool:
        """True while the shared budget paces calls (cheap: read on every acquire)."""
        ...

    async def turn(self, timeout: float, ahead: bool = False) -> None:
        """Wait for this call's turn, ``ahead`` ones (retries, work already begun) first;
        raises Overdue when it would come after ``timeout``."""
        ...

    def on_answer(self, signal: Signal, retry_after: float | None) -> None:
        """Hear what one answer said; a rate refusal and its hint reach every process."""
        ...

    @property
    def pace_per_minute(self) -> float | None:
        """The shared pace, as last seen (None: not known yet)."""
        ...

    @property
    def hold_seconds(self) -> float:
        """How long a shared ``Retry-After`` still holds calls."""
        ...


@dataclass(frozen=True)
class ClientStats:
    """A snapshot of a client's traffic and rate control, from ``client.stats``.

    ``requests`` counts API attempts sent, ``successes`` 2xx answers, ``throttled`` 429 and
    503 answers, ``retries`` attempts beyond a call's first; ``in_flight`` and ``queued``
    are attempts now. ``phase`` is ``"start"`` (unpaced, at most ``window`` calls in
    flight), ``"paced"`` (``rate_per_minute`` is the pace), ``"shared"`` (a shared
    ``rate_limiter`` paces; ``rate_per_minute`` is the account's shared pace) or ``"off"``
    (``adaptive_rate=False``). ``background_refusals`` is the share of refusals judged to
    come whatever the pace; ``hold_seconds`` how long a ``Retry-After`` still holds calls;
    ``bound_per_minute`` the rate the account's refusals prove it gives, which the last cut
    paced just above (None while no bound stands; see the README's rate-limit section).
    """

    requests: int
    successes: int
    throttled: int
    retries: int
    in_flight: int
    queued: int
    phase: str
    rate_per_minute: float | None
    window: int | None
    background_refusals: float
    hold_seconds: float
    bound_per_minute: float | None = None

    @property
    def slow_start(self) -> bool:
        """True while calls go unpaced (the ``"start"`` phase)."""
        return self.phase == "start"


class _Waiter:
    __slots__ = ("expiry", "future", "since")

    def __init__(self, future: asyncio.Future[Ticket | None], since: float) -> None:
        self.future = future
        self.since = since
        self.expiry: asyncio.TimerHandle | None = None


class Limiter:
    """Bounds and paces API attempts; see the module docstring."""

    def __init__(
        self,
        *,
        max_in_flight: int,
        rate_limit: float | None = None,
        adaptive: bool = True,
        shared: SharedLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.control = RateController(rate_limit=rate_limit, clock=clock) if adaptive else None
        self.shared = shared
        self._max = max_in_flight
        self._clock = clock
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._ahead: collections.deque[_Waiter] = collections.deque()  # served first
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._in_flight = 0
        self.requests = 0
        self.successes = 0
        self.throttled = 0
        self.retries = 0

    # ---------------------------------------------------------------- acquiring

    def _delay(self) -> float:
        if self._in_flight >= self._max:
            return math.inf
        control = self.control
        if control is None or (self.shared is not None and self.shared.joined):
            return 0.0
        return control.next_send(self._in_flight)

    def _go(self, waited: bool) -> Ticket | None:
        self._in_flight += 1
        self.requests += 1
        control = self.control
        return None if control is None else control.on_send(waited=waited)

    async def acquire(
        self, *, timeout: float = math.inf, retry: bool = False, ahead: bool = False
    ) -> Ticket | None:
        """Wait until the call may go; returns the ticket to hand back to ``release``.

        Raises Overdue when the call could not go within ``timeout`` seconds.
        ``retry`` marks a repeated attempt: counted, and queued ahead of first attempts, as
        is a call with ``ahead`` (one that finishes work already paid for).
        Raises ClientClosedError once ``close()`` has run.
        """
        shared = self.shared
        if shared is None or not shared.joined:
            return await self._acquire(timeout, retry, ahead)
        started = self._clock()
        ticket = await self._acquire(timeout, retry, ahead)  # only the bound on calls in flight
        try:
            await shared.turn(timeout - (self._clock() - started), retry or ahead)
        except BaseException:
            self.requests -= 1  # it never went
            self.release(ticket, Signal.NO_SIGNAL, None)
            raise
        return ticket

    async def _acquire(self, timeout: float, retry: bool, ahead: bool) -> Ticket | None:
        if self._closed:
            raise ClientClosedError(CLOSED)
        if retry:
            self.retries += 1
        if not self._waiters and not self._ahead:
            delay = self._delay()
            if delay == 0.0:
                return self._go(False)
            if delay < math.inf and delay > timeout:  # a known wait, and too long
                raise Overdue(0.0)
        if timeout <= 0.0:
            raise Overdue(0.0)
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop.create_future(), self._clock())
        if timeout < math.inf:
            waiter.expiry = loop.call_later(timeout, self._expire, waiter)
        (self._ahead if retry or ahead else self._waiters).append(waiter)
        self._wake()
        try:
            return await waiter.future
        except asyncio.CancelledError:
            fut = waiter.future
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.release(fut.result(), Signal.NO_SIGNAL, None)  # handed a slot: give it back
            else:
                self._forget(waiter)
            raise
        finally:
            if waiter.expiry is not None:
                waiter.expiry.cancel()

    def _forget(self, waiter: _Waiter) -> None:
        for queue in (self._ahead, self._waiters):
            try:
                queue.remove(waiter)
            except ValueError:
                continue
            self._wake()
            return

    def _expire(self, waiter: _Waiter) -> None:
        waiter.expiry = None
        if not waiter.future.done():
            waiter.future.set_exception(Overdue(self._clock() - waiter.since))
            self._forget(waiter)

    def _wake(self) -> None:
        """Let go every head waiter that may go now, then set the one timer for the next."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while True:
            waiters = self._ahead or self._waiters
            if not waiters:
                return
            head = waiters[0]
            if head.future.done():  # expired or cancelled while queued
                waiters.popleft()
                continue
            delay = self._delay()
            if delay > 0.0:
                if delay < math.inf and not self._closed:
                    self._timer = asyncio.get_running_loop().call_later(delay, self._wake)
                return  # else an answer (release) wakes the queue
            waiters.popleft()
            head.future.set_result(self._go(True))

    # ---------------------------------------------------------------- feedback

    def release(
        self,
        ticket: Ticket | None,
        signal: Signal,
        retry_after: float | None,
        *,
        status: int | None = None,
    ) -> None:
        """Hand back a slot with what the answer said; ``status`` is its HTTP status, if any."""
        self._in_flight -= 1
        if status is not None:
            if 200 <= status < 300:
                self.successes += 1
            elif status in (429, 503):
                self.throttled += 1
        if ticket is not None and self.control is not None:
            self.control.on_answer(ticket, signal, retry_after)
        if self.shared is not None and signal is not Signal.NO_SIGNAL:
            self.shared.on_answer(signal, retry_after)
        if self._waiters or self._ahead:
            self._wake()

    def rebind(self) -> None:
        """Forget the timer of a finished event loop (the client calls it on moving to a new
        loop, with nothing in flight or queued); the controller's state is kept."""
        self._timer = None
        self._waiters.clear()
        self._ahead.clear()

    def close(self) -> None:
        """Fail every queued call with ClientClosedError and drop the timer."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for queue in (self._ahead, self._waiters):
            while queue:
                waiter = queue.popleft()
                if not waiter.future.done():
                    waiter.future.set_exception(
                        ClientClosedError("the client was closed while this call waited")
                    )

    def stats(self) -> ClientStats:
        """A snapshot of the counters and the rate controller's state."""
        control = self.control
        if control is None:
            phase, rate, window, background, hold = "off", None, None, 0.0, 0.0
            bound = None
        else:
            phase = control.phase.value
            rate = control.pace_per_minute
            window = control.window if control.phase is Phase.START else None
            background = control.background
            hold = max(0.0, control.hold_until - self._clock())
            bound = control.bound_per_minute
        shared = self.shared
        if shared is not None and shared.joined:
            phase, rate, window, bound = "shared", shared.pace_per_minute, None, None
            hold = shared.hold_seconds
        return ClientStats(
            requests=self.requests,
            successes=self.successes,
            throttled=self.throttled,
            retries=self.retries,
            in_flight=self._in_flight,
            queued=sum(1 for q in (self._ahead, self._waiters) for w in q if not w.future.done()),
            phase=phase,
            rate_per_minute=rate,
            window=window,
            background_refusals=background,
            hold_seconds=hold,
            bound_per_minute=bound,
        )
