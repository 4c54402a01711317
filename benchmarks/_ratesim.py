"""A deterministic discrete-event simulator of the rate controller on a fake clock.

The engine behind ``python -m benchmarks.ratesim`` (run that; this module has no command).
One run (:func:`simulate`) plays a :class:`Scenario` to its end in simulated time:

* **Server**: one account-wide token bucket (the emulator's own ``TokenBucket``; rate
  ``plan / 60`` per second, capacity ``burst``, by default one second's worth and at least
  1; no bucket for an unlimited plan) and a fixed latency per call. The token is taken at
  ``send + latency / 2``; the answer arrives at ``send + latency``. A refusal is a 429 whose
  ``Retry-After`` is the time until the next token in whole seconds, rounded up (as the
  live API sends it), or with ``precise_retry_after`` a ``retry-after-ms`` as well.
  Pace-independent faults are drawn per call before the bucket (a refused call takes no
  token): equal thirds of 429 + ``retry-after-ms`` 10-100, 429 + ``Retry-After: 1`` and a
  bare 503. Hints go through the client's own ``parse_retry_after``.
* **Process**: its own controller on the simulated clock, at most ``max_in_flight`` calls
  in flight (the connection pool), and a FIFO queue driven as the asyncio limiter drives
  it: ask ``next_send(in_flight)`` for the head; 0 sends it now, a finite wait arms one
  timer, ``math.inf`` waits for the next answer; every answer re-checks. A call ``waited``
  when it found calls queued ahead of it or ``next_send`` held it at the head
  (waiting only for the pool is not pacing). Retries mirror ``RetryPolicy``'s defaults.
* **Demand**: ``fanout`` (``transcribe_files``: jobs of 20 files, 8 jobs at once, each job
  initiate, upload links, storage upload, start, status polls on ``wait_until_complete``'s
  schedule, download links, storage download) or ``storm`` (``callers`` concurrent callers
  making calls back to back, as ``asyncio.gather`` does). All processes start together
  (at seeded offsets within ``start_spread``, 10 ms by default).

Randomness comes from ``random.Random`` streams seeded from the scenario's seed, one per
process and purpose (and one per job for poll jitter), so a run is a pure function of its
scenario and controller, and two controllers on the same scenario meet the same jobs.
"""

from __future__ import annotations

import heapq
import inspect
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sarvam_async import _constants as C
from sarvam_async._ratecontrol import RateController, Signal
from sarvam_async._retry import parse_retry_after
from sarvam_async.testing._ratelimit import TokenBucket, retry_headers

__all__ = [
    "Controller",
    "ControllerFactory",
    "PacingOff",
    "RunResult",
    "Scenario",
    "SimAbort",
    "adaptive",
    "pacing_off",
    "poll_schedule",
    "simulate",
]

FILES_PER_JOB = 20
"""The API's limit of files per job; ``transcribe_files`` fills jobs to it."""
JOB_SLOTS = 8
"""``transcribe_files``' default ``max_concurrent_jobs``."""
JOB_TRIES = 3
"""Extra goes ``transcribe_files`` gives a job whose call ran out of retries."""
JOB_RETRY_PAUSE = 5.0
"""Seconds before such an extra go, times the number of goes."""

# What the server answered one attempt (an index into _SIGNALS).
OK, PACE_429, FAULT_429_MS, FAULT_429_S, FAULT_503 = range(5)
_SIGNALS = (
    Signal.ACCEPTED,
    Signal.RATE_LIMITED,
    Signal.RATE_LIMITED,
    Signal.RATE_LIMITED,
    Signal.UNAVAILABLE,
)


class Controller(Protocol):
    """What the simulator needs of a rate controller (``RateController`` has it)."""

    def next_send(self, in_flight: int) -> float: ...

    def on_send(self, *, waited: bool) -> Any: ...

    def on_answer(self, ticket: Any, signal: Signal, retry_after: float | None) -> None: ...


ControllerFactory = Callable[[Callable[[], float], "float | None"], Controller]
"""Builds one process's controller from the simulated clock and its ``rate_limit``."""


class PacingOff:
    """The client with ``adaptive_rate=False``: never waits, holds nothing."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    def next_send(self, in_flight: int) -> float:
        return 0.0

    def on_send(self, *, waited: bool) -> None:
        return None

    def on_answer(self, ticket: Any, signal: Signal, retry_after: float | None) -> None:
        return None


class _PacedKeyword:
    """Adapts a controller whose ``on_send`` still names its flag ``paced``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.next_send = inner.next_send
        self.on_answer = inner.on_answer

    def on_send(self, *, waited: bool) -> Any:
        return self.inner.on_send(paced=waited)


def adaptive(clock: Callable[[], float], rate_limit: float | None) -> Controller:
    """The client's controller, as the transport builds it."""
    controller = RateController(rate_limit=rate_limit, clock=clock)
    if "waited" in inspect.signature(controller.on_send).parameters:
        return controller
    return _PacedKeyword(controller)


def pacing_off(clock: Callable[[], float], rate_limit: float | None) -> Controller:
    """The baseline: ``adaptive_rate=False``."""
    return PacingOff(clock)


@dataclass(frozen=True)
class Scenario:
    """One simulated run: the server, the processes and what they have to do."""

    demand: Literal["fanout", "storm"]
    plan: float | None
    """Account limit in requests per minute; None: unlimited."""
    latency: float
    """Seconds from send to answer, for every API call."""
    processes: int
    fault_share: float
    """Share of calls refused whatever the pace (429 small ms / 429 1 s / 503, in thirds)."""
    shares: tuple[int, ...]
    """Per process: jobs (fanout) or calls (storm)."""
    job_duration: float = 1.0
    """Fanout: seconds from a job's start until a status poll sees it completed."""
    callers: int = 64
    """Storm: concurrent callers per process."""
    burst: float | None = None
    """Bucket capacity in calls; None: the emulator's default (one second's worth, >= 1)."""
    precise_retry_after: bool = False
    """Send ``retry-after-ms`` with each rate-limit 429, not only whole-second Retry-After."""
    storage_time: float = 0.05
    """Fanout: seconds for one job's storage upload, and again for its download."""
    start_spread: float = 0.01
    """Processes start at seeded random offsets in [0, this): who wins the first burst varies."""
    known_limit: bool = False
    """Give each process ``rate_limit = plan / processes`` (its fair share) up front."""
    max_in_flight: int = C.DEFAULT_MAX_CONNECTIONS
    seed: int = 0
    max_events: int = 5_000_000
    max_time: float = 6 * 3600.0


@dataclass
class RunResult:
    """What one run measured; ``error`` says why it stopped early, if it did."""

    finish: list[float]
    """Per process: when its last call or job ended (simulated seconds from the start)."""
    answers_sent_at: list[float]
    """Per answer, in arrival order: when its attempt was sent."""
    answers_kind: bytearray
    """Per answer: OK, PACE_429, FAULT_429_MS, FAULT_429_S or FAULT_503."""
    answers_proc: list[int]
    """Per answer: the process that sent the attempt."""
    failed_calls: int = 0
    failed_jobs: int = 0
    events: int = 0
    ended_at: float = 0.0
    """When the last event ran (the wall time of a run that stopped early)."""
    error: str | None = None

    @property
    def wall(self) -> float:
        """When the last process finished (or the run stopped)."""
        return self.ended_at if self.error else max(self.finish, default=0.0)

    def count(self, kinds: tuple[int, ...], since: float = -math.inf) -> int:
        """Answers of these kinds to attempts sent at or after ``since``."""
        return sum(
            1
            for t, k in zip(self.answers_sent_at, self.answers_kind, strict=True)
            if k in kinds and t >= since
        )

    def answered(self, since: float = -math.inf) -> int:
        return sum(1 for t in self.answers_sent_at if t >= since)


class SimAbort(Exception):
    """The run cannot go on: a controller stalled, or an event or time budget ran out."""


class _Loop:
    """The event loop: a heap of (time, sequence, callback, argument) on a fake clock."""

    __slots__ = ("_heap", "_seq", "events", "max_events", "max_time", "now")

    def __init__(self, max_events: int, max_time: float) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, Callable[[Any], None], Any]] = []
        self._seq = 0
        self.events = 0
        self.max_events = max_events
        self.max_time = max_time

    def clock(self) -> float:
        return self.now

    def at(self, when: float, fn: Callable[[Any], None], arg: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, fn, arg))

    def run(self) -> None:
        heap, pop = self._heap, heapq.heappop
        while heap:
            when, _, fn, arg = pop(heap)
            if when > self.max_time:
                raise SimAbort(f"still busy at {self.max_time:g} simulated seconds")
            self.now = when
            fn(arg)
            self.events += 1
            if self.events > self.max_events:
                raise SimAbort(f"more than {self.max_events:,} events")


class _Server:
    """The account: one token bucket for every process, and the pace-independent faults."""

    def __init__(self, loop: _Loop, sc: Scenario) -> None:
        self._bucket: TokenBucket | None = None
        if sc.plan is not None:
            rate = sc.plan / 60.0
            capacity = sc.burst if sc.burst is not None else max(1.0, rate)
            self._bucket = TokenBucket(rate, capacity, loop.now)
        self._loop = loop
        self._faults = sc.fault_share
        self._precise = sc.precise_retry_after

    def decide(self, rng: random.Random) -> tuple[int, float | None]:
        """The answer to an attempt reaching the server now: (kind, hint in seconds)."""
        if self._faults and rng.random() < self._faults:
            kind = rng.randrange(3)
            if kind == 0:
                return FAULT_429_MS, parse_retry_after(
                    {"retry-after-ms": str(rng.randint(10, 100))}
                )
            if kind == 1:
                return FAULT_429_S, parse_retry_after({"retry-after": "1"})
            return FAULT_503, None
        if self._bucket is None:
            return OK, None
        wait = self._bucket.take(self._loop.now)
        if wait == 0.0:
            return OK, None
        headers = {k.lower(): v for k, v in retry_headers(wait, with_ms=self._precise).items()}
        return PACE_429, parse_retry_after(headers)


class _Call:
    """One API call across its attempts."""

    __slots__ = (
        "attempts",
        "blocked",
        "checked_at",
        "done",
        "hint",
        "kind",
        "sent_at",
        "started",
        "ticket",
    )

    def __init__(self, done: Callable[[bool, _Call], None], started: float) -> None:
        self.done = done
        self.started = started
        self.attempts = 0
        self.blocked = False
        self.ticket: Any = None
        self.sent_at = 0.0
        self.checked_at = 0.0
        self.kind = OK
        self.hint: float | None = None


class _Process:
    """One client process: its controller, its limiter queue and its retry policy."""

    def __init__(
        self,
        loop: _Loop,
        server: _Server,
        result: RunResult,
        controller: Controller,
        sc: Scenario,
        index: int,
    ) -> None:
        self.loop = loop
        self.index = index
        self._server = server
        self._result = result
        self._ctl = controller
        self._latency = sc.latency
        self._half = sc.latency / 2.0
        self._max_in_flight = sc.max_in_flight
        self._queue: deque[_Call] = deque()
        self._in_flight = 0
        self._wake_at: float | None = None
        self._faults = random.Random(f"{sc.seed}:{index}:faults")
        self._jitter = random.Random(f"{sc.seed}:{index}:backoff")

    def call(self, done: Callable[[bool, _Call], None]) -> None:
        """Make one API call; ``done(ok, call)`` runs once it succeeded or ran out of retries."""
        self._enqueue(_Call(done, self.loop.now))

    def finished(self) -> None:
        self._result.finish[self.index] = self.loop.now

    def _enqueue(self, call: _Call) -> None:
        call.blocked = bool(self._queue)
        self._queue.append(call)
        self._pump()

    def _pump(self) -> None:
        queue = self._queue
        while queue:
            if self._in_flight >= self._max_in_flight:
                return  # the pool is full: the next answer pumps again
            wait = self._ctl.next_send(self._in_flight)
            head = queue[0]
            if not wait > 0.0:  # 0.0 (or a negative or NaN answer): go now
                queue.popleft()
                self._send(head)
                continue
            head.blocked = True
            if wait == math.inf:
                if self._in_flight == 0:
                    raise SimAbort(f"process {self.index}: next_send is inf with nothing in flight")
                return
            now = self.loop.now
            when = now + wait
            if when <= now:  # a wait below the clock's resolution
                when = math.nextafter(now, math.inf)
            if self._wake_at is None or when < self._wake_at:
                self._wake_at = when
                self.loop.at(when, self._wake)
            return

    def _wake(self, _: object) -> None:
        if self._wake_at is not None and self.loop.now >= self._wake_at:
            self._wake_at = None
            self._pump()

    def _send(self, call: _Call) -> None:
        self._in_flight += 1
        call.attempts += 1
        call.sent_at = self.loop.now
        call.ticket = self._ctl.on_send(waited=call.blocked)
        self.loop.at(call.sent_at + self._half, self._check, call)

    def _check(self, call: _Call) -> None:
        call.kind, call.hint = self._server.decide(self._faults)
        call.checked_at = self.loop.now
        self.loop.at(call.sent_at + self._latency, self._answer, call)

    def _answer(self, call: _Call) -> None:
        self._in_flight -= 1
        result = self._result
        result.answers_sent_at.append(call.sent_at)
        result.answers_kind.append(call.kind)
        result.answers_proc.append(self.index)
        self._ctl.on_answer(call.ticket, _SIGNALS[call.kind], call.hint)
        self._pump()
        if call.kind == OK:
            call.done(True, call)
            return
        delay = self._retry_delay(call)
        if delay is None:
            result.failed_calls += 1
            call.done(False, call)
        else:
            self.loop.at(self.loop.now + delay, self._enqueue, call)

    def _retry_delay(self, call: _Call) -> float | None:
        """The pause before the next attempt, or None when RetryPolicy would stop."""
        if call.attempts >= C.RETRY_MAX_ATTEMPTS:
            return None
        if call.hint is not None:
            if call.hint > C.RETRY_MAX_RETRY_AFTER:
                return None
            delay = call.hint
        else:
            ceiling = min(C.RETRY_MAX_DELAY, C.RETRY_INITIAL_DELAY * 2.0 ** (call.attempts - 1))
            delay = ceiling * self._jitter.random()
        if self.loop.now - call.started + delay > C.RETRY_DEADLINE:
            return None
        return delay


def poll_schedule(duration: float) -> tuple[int, float]:
    """Polls ``wait_until_complete`` makes on a job of ``duration``, and when the last goes.

    Without jitter and latency: the first poll goes as the job starts, then 5 s, 7.5 s ...
    """
    t, interval, polls = 0.0, C.POLL_INTERVAL, 1
    while t < duration:
        t += interval
        interval = min(C.POLL_MAX_INTERVAL, interval * 1.5)
        polls += 1
    return polls, t


@dataclass
class _Job:
    index: int
    rng: random.Random
    step: int = 0
    tries: int = 0
    started_at: float = 0.0
    interval: float = C.POLL_INTERVAL


# Fanout job steps, in order.
_INITIATE, _UPLOAD_LINKS, _UPLOAD, _START, _POLL, _DOWNLOAD_LINKS, _DOWNLOAD, _DONE = range(8)


@dataclass
class _Fanout:
    """``transcribe_files`` in one process: a work queue of jobs and JOB_SLOTS workers."""

    proc: _Process
    jobs: int
    duration: float
    storage_time: float
    seed: int
    result: RunResult
    queue: deque[_Job] = field(default_factory=deque)
    ended: int = 0

    def start(self) -> None:
        for j in range(self.jobs):
            rng = random.Random(f"{self.seed}:{self.proc.index}:job{j}")
            self.queue.append(_Job(j, rng))
        if not self.jobs:
            self.proc.finished()
        for _ in range(min(JOB_SLOTS, self.jobs)):
            self._take(None)

    def _take(self, _: object) -> None:
        if self.queue:
            self._step(self.queue.popleft())

    def _step(self, job: _Job) -> None:
        loop, step = self.proc.loop, job.step
        if step in (_UPLOAD, _DOWNLOAD):
            loop.at(loop.now + self.storage_time, self._advance, job)
        elif step == _DONE:
            self._end()
        elif step == _POLL:
            self.proc.call(lambda ok, call: self._polled(job, ok, call))
        else:
            self.proc.call(lambda ok, call: self._called(job, ok, call))

    def _advance(self, job: _Job) -> None:
        job.step += 1
        self._step(job)

    def _called(self, job: _Job, ok: bool, call: _Call) -> None:
        if ok:
            if job.step == _START:
                job.started_at = call.checked_at
            self._advance(job)
            return
        job.tries += 1
        if job.tries > JOB_TRIES:
            self.result.failed_jobs += 1
            self._end()
            return
        loop = self.proc.loop  # the worker sleeps, then queues the job again and takes the next
        loop.at(loop.now + JOB_RETRY_PAUSE * job.tries, self._requeue, job)

    def _requeue(self, job: _Job) -> None:
        self.queue.append(job)
        self._take(None)

    def _polled(self, job: _Job, ok: bool, call: _Call) -> None:
        if ok and call.checked_at >= job.started_at + self.duration:
            self._advance(job)
            return
        # wait_until_complete: +-20 % jitter, interval x1.5 up to the maximum.
        delay = job.interval * (0.8 + 0.4 * job.rng.random())
        job.interval = min(C.POLL_MAX_INTERVAL, job.interval * 1.5)
        loop = self.proc.loop
        loop.at(loop.now + delay, self._step, job)

    def _end(self) -> None:
        self.ended += 1
        if self.ended == self.jobs:
            self.proc.finished()
        else:
            self._take(None)


@dataclass
class _Storm:
    """``callers`` coroutines in one process making ``calls`` calls between them."""

    proc: _Process
    calls: int
    callers: int
    remaining: int = 0
    ended: int = 0

    def start(self) -> None:
        self.remaining = self.calls
        if not self.calls:
            self.proc.finished()
        for _ in range(min(self.callers, self.calls)):
            self._next()

    def _next(self) -> None:
        self.remaining -= 1
        self.proc.call(self._done)

    def _done(self, ok: bool, call: _Call) -> None:
        self.ended += 1
        if self.remaining > 0:
            self._next()
        elif self.ended == self.calls:
            self.proc.finished()


def _run(fn: Callable[[], None]) -> None:
    fn()


Observer = Callable[[float, int, Controller, RunResult], None]
"""Called with (time, process, its controller, the run so far) for a trace."""


def simulate(
    sc: Scenario,
    factory: ControllerFactory,
    *,
    observe: Observer | None = None,
    every: float = 1.0,
) -> RunResult:
    """Play ``sc`` to its end with one controller per process built by ``factory``.

    ``observe``, if given, is called for every unfinished process each ``every`` simulated
    seconds (it must only read: the run is the same with or without it).
    """
    loop = _Loop(sc.max_events, sc.max_time)
    result = RunResult([math.nan] * sc.processes, [], bytearray(), [])
    server = _Server(loop, sc)
    rate_limit = sc.plan / sc.processes if sc.known_limit and sc.plan is not None else None
    starters: list[Callable[[], None]] = []
    controllers: list[Controller] = []
    for p in range(sc.processes):
        controllers.append(factory(loop.clock, rate_limit))
        proc = _Process(loop, server, result, controllers[-1], sc, p)
        if sc.demand == "fanout":
            starters.append(
                _Fanout(proc, sc.shares[p], sc.job_duration, sc.storage_time, sc.seed, result).start
            )
        else:
            starters.append(_Storm(proc, sc.shares[p], sc.callers).start)
    offsets = random.Random(f"{sc.seed}:starts")
    for start in starters:  # every process starts at once: the bursty start
        loop.at(offsets.uniform(0.0, sc.start_spread), _run, start)
    if observe is not None:

        def tick(_: object) -> None:
            busy = [p for p, t in enumerate(result.finish) if math.isnan(t)]
            for p in busy:
                observe(loop.now, p, controllers[p], result)
            if busy:
                loop.at(loop.now + every, tick)

        loop.at(every, tick)
    try:
        loop.run()
    except SimAbort as exc:
        result.error = str(exc)
    result.events = loop.events
    result.ended_at = loop.now
    if result.error is None and any(math.isnan(t) for t in result.finish):
        result.error = "a process never finished"
    return result
