"""The rate controller: decides when the next API call may go. Pure logic, no I/O.

The account's limit is unknown and shared; the controller learns what it accepts from what
it accepted, and costs nothing while nothing is refused::

     START ───────────── rate refusals beyond chance in a round ──────────────▶ PACED
     unpaced; at most `window` calls in flight,      pace = what the account accepted, never
     doubling per round trip of accepted answers     under the bound its refusals prove; each
                                                     refusal cuts it; busy calm rounds grow it
       ▲                                                   │ demand never filled the window
       │ refusals still come: background                   │ (quick test), or refusals went
       └────────────── TEST: 0.7 of the accepted rate ◀────┘ on through three cuts (10 s test)
                         for a while; refusals still coming are background: restore the
                         pace (or the start), discount their share; none: the cut stands

* **START**: calls go unpaced, at most ``window`` in flight. The window starts at
  ``RATE_START_WINDOW`` and grows by one per accepted answer while calls find it full, so
  it doubles every round trip while demand presses on it (TCP's slow start).
* **Rounds**: a round is at least ``RATE_ROUND_SECONDS`` and ``RATE_ROUND_ANSWERS`` answers
  (or ``RATE_ROUND_MAX_SECONDS``). Only answers to calls sent in the current round count.
  A call that goes at once after ``RATE_IDLE_SECONDS`` in which the pace and any hold
  would have let calls go starts the round afresh (and ends a test or a run of cuts the gap
  split): time that held no calls says nothing of what the account accepts.
* **Leaving START**: a round with ``RATE_MIN_REFUSALS`` rate refusals, more than chance and
  the background explain (``RATE_EXCESS_SIGMAS``). The pace starts at half the accepted
  rate (the burst that met the limit also drained the account's bucket), or half what was
  sent. A client whose demand never filled its window, refused no more than background
  could be, first gets a quick test: paced at ``RATE_TEST_FACTOR`` of the accepted rate,
  it counts only calls sent once ``RATE_ROUND_SECONDS`` have let the bucket refill, and ends
  at the first refusal of one (background: back to the unpaced start, that share counted,
  never above ``RATE_MAX_BACKGROUND``) or after ``RATE_TEST_ANSWERS`` answers to them
  without one (a limit: the pace stands). It holds nothing meanwhile, since it asks
  whether a limit is there at all.
* **PACED**: once pacing with no background known, one refusal of a call sent since the
  last cut cuts at once: to ``RATE_CUT_HEADROOM`` of the rate accepted over the last
  ``RATE_MEASURE_ROUNDS`` rounds, never below ``RATE_MAX_CUT`` of what was sent. A busy round
  (calls queued for the pace) without excess refusals grows the pace by
  ``RATE_CATCH_UP_GAIN`` per second back to the accepted rate, then by ``RATE_PROBE_GAIN``
  per second past it: per second, not per round, because a slow pace's rounds are long, and
  several processes on one account must grow alike for a cut to even their shares. A
  known plan (``rate_limit=``) starts here and is never probed past.
* **Bound**: the account's bucket was empty when each refused call went, so the calls it
  accepted between two refusals were paid for by refill: they bound its rate from below
  (``_bound``, over the refusals of the last ``RATE_FLOOR_REFUSALS`` cuts, pairs at least
  ``RATE_FLOOR_MIN_SECONDS`` apart). While the newest cycle agrees with the best bound
  (``RATE_FLOOR_AGREEMENT``: the limit stands where it stood), a cut never paces under
  ``RATE_FLOOR_MARGIN`` above it, and growth there is ``RATE_PLATEAU_GAIN`` instead of the
  probe's, for ``RATE_PLATEAU_CYCLES`` of the last cycles: the bucket drains slowly, and
  the refusal that ends it comes late and measures the bound again. No cut by then means
  room (a neighbour finished): the usual probe finds it. There is no bound at the start's
  cut, while a background share is known, or when the pace the last cut set was refused
  again within ``RATE_FLOOR_MIN_SECONDS`` (the limit moved).
* **TEST**: after ``RATE_TRIAL_AFTER_CUTS`` cuts with refusals going on, at no more than
  ``RATE_MAX_BACKGROUND`` of answers and some answers accepted (a run of nothing but
  refusals is neighbours holding the account's bucket, and a share of nothing accepted would
  be a pace of one call a minute held for the whole test), the client paces at
  ``RATE_TEST_FACTOR`` of the accepted rate for ``RATE_TEST_SECONDS`` and
  ``RATE_TEST_ANSWERS`` answers. A limit this client caused refuses nothing there, and
  neighbours sharing the account have time to back off; refusals still coming in the second
  half come whatever the pace. Then the best pace lately held without refusals is restored
  and that share becomes ``background``: refusals up to it (give or take
  ``RATE_EXCESS_SIGMAS`` standard deviations) no longer cut, and it fades
  (``RATE_BACKGROUND_DECAY``) as rounds show fewer. A test without late refusals confirms
  the limit: the pace it reached is the new best.
* **Hold**: once pacing with no background known (and not in a quick test), a
  ``Retry-After`` on a rate refusal holds every call until it has passed. Before that, only
  the refused call waits for it (the retry policy's business): one refusal proves no limit.

Refusals that say nothing about the pace never move it: a 429 for exhausted credits, a 503
without the rate-limit code, or a dropped connection (``Signal.NO_SIGNAL``,
``Signal.UNAVAILABLE``).
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import enum
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import _constants as C

__all__ = ["Phase", "RateController", "Signal", "Ticket"]


class Signal(enum.Enum):
    """What one answer says about the pace."""

    ACCEPTED = "accepted"
    """The server took the call at this pace (2xx, or a 4xx other than 429)."""
    RATE_LIMITED = "rate_limited"
    """A 429 for the rate limit (or without a code), or a 503 with a rate-limit code."""
    UNAVAILABLE = "unavailable"
    """A 5xx without a rate-limit code, or a dropped connection: an outage, not the pace."""
    NO_SIGNAL = "no_signal"
    """Says nothing about pace: exhausted credits, or the call never reached the server."""


class Phase(enum.Enum):
    """The controller's state (see the module docstring)."""

    START = "start"
    PACED = "paced"


@dataclass(slots=True)
class Ticket:
    """One sent call, handed back with its answer."""

    round: int
    waited: bool
    sent: float  # clock time it went
    refilled: bool = False  # sent once the running test's first stretch had passed


@dataclass(slots=True)
class _Trial:
    """A test of whether refusals depend on the pace: the pace to restore if they do not."""

    phase: Phase
    rate: float
    ends: float  # clock time before which it does not end
    answers: int  # answers it waits for
    first_half: int = 0  # refusals among the first half of them (a full test counts only
    # those of the second half: neighbours had time to react)
    refilled_answers: int = 0  # answers to calls sent once ``ends`` had passed
    refilled_refused: int = 0  # refusals among them


class RateController:
    """Decides when the next API call may go, from the answers to earlier ones.

    ``rate_limit`` (requests per minute) starts pacing there and never probes past it.
    ``clock`` is monotonic seconds, injectable for tests and the simulator.
    """

    def __init__(
        self,
        *,
        rate_limit: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        now = clock()
        self._ceiling = math.inf if rate_limit is None else rate_limit / 60.0
        self.phase = Phase.START if rate_limit is None else Phase.PACED
        self.rate = self._ceiling  # requests per second; meaningful when PACED
        self.window = C.RATE_START_WINDOW
        self.background = 0.0  # share of refusals that come whatever the pace
        self._measured = 0.0  # the background share the last test measured: a ceiling
        self._pressed = False  # calls found the window full: it binds, so it may grow
        self._hold_until = -math.inf
        self._next_at = now  # when the pace lets the next call go
        self._round = 0
        self._round_start = now
        self._last_send = now  # when the last call went (or the controller was made)
        self._sent = self._answers = self._refused = self._accepted_in = 0
        self._waited = False  # a call of this round had to wait for the pace
        self._trial: _Trial | None = None
        # a run of cuts: how many, over how many answers, from what pace
        self._run_cuts = self._run_answers = self._run_refused = 0
        self._run_from = math.inf
        self._calm = 0  # rounds in a row without a refusal
        self._healthy = 0.0  # the best pace lately held without refusals: restored after a test
        self._history: collections.deque[tuple[float, int]] = collections.deque(
            maxlen=C.RATE_MEASURE_ROUNDS - 1
        )
        self._target = 0.0  # the accepted rate at the last cut: growth is quick below it
        # when accepted and refused calls went: the bound on the account's rate (``_floor``)
        self._accepted_sends: collections.deque[float] = collections.deque(
            maxlen=C.RATE_FLOOR_CALLS
        )
        self._refused_sends: collections.deque[float] = collections.deque(
            maxlen=C.RATE_FLOOR_REFUSALS
        )
        self._unanswered: collections.deque[float] = collections.deque(maxlen=C.RATE_FLOOR_CALLS)
        self._floor = 0.0  # the bound the last cut found standing (``_bound``), or 0.0
        self._plateau_until = -math.inf  # growth stays slow at the bound until then

    # ------------------------------------------------------------------ sending

    def next_send(self, in_flight: int) -> float:
        """Seconds until a call may go: 0.0 now, ``math.inf`` not before an answer arrives."""
        if self.phase is Phase.START:
            if in_flight >= self.window:
                self._pressed = True
                return math.inf
            if 2 * in_flight < self.window:
                self._pressed = False  # demand under half the window: it does not bind
            gate = self._hold_until
        else:
            gate = max(self._hold_until, self._next_at)
        if gate == -math.inf:
            return 0.0
        return max(0.0, gate - self._clock())

    def on_send(self, *, waited: bool) -> Ticket:
        """Record that a call goes now; ``waited``: it had to wait for ``next_send``."""
        refilled = False
        now = self._clock()
        # idle: time in which the pace and any hold would have let a call go, and none came
        free_since = max(self._last_send, self._hold_until)
        if self.phase is Phase.PACED:
            free_since = max(free_since, self._next_at)
        if not waited and now - free_since > C.RATE_IDLE_SECONDS:
            # the round's idle time would read as an account that accepts almost nothing; it
            # starts again, and is not kept among the rounds the accepted rate is measured
            # over. A test or a run of cuts that the idle time split says nothing either.
            self._new_round(now, keep=False)
            self._trial = None
            self._end_run()
        self._last_send = now
        if self._refused_sends:  # only calls after a kept refusal can fall between two
            self._unanswered.append(now)
        if self.phase is Phase.PACED:
            refilled = self._trial is not None and now >= self._trial.ends
            interval = 1.0 / self.rate
            if now - self._next_at > interval:  # idle: no burst is earned
                self._next_at = now + interval
            else:  # on time, or a late timer: the average pace holds
                self._next_at = max(self._next_at, now - interval) + interval
        self._sent += 1
        if waited:
            self._waited = True
        return Ticket(self._round, waited, now, refilled)

    # ------------------------------------------------------------------ learning

    def on_answer(self, ticket: Ticket, signal: Signal, retry_after: float | None) -> None:
        """Learn from one answer; ``retry_after`` is the server's hint in seconds, if any."""
        if self._unanswered:
            with contextlib.suppress(ValueError):  # a few in flight: cheap
                self._unanswered.remove(ticket.sent)
        if signal is Signal.ACCEPTED:
            if self._refused_sends:  # as above: nothing to keep while nothing is refused
                self._accepted_sends.append(ticket.sent)
            self._accepted_in += 1
            if self.phase is Phase.START and self._pressed:
                self.window += 1
        elif signal is not Signal.RATE_LIMITED:
            return  # an outage, or exhausted credits: nothing about the pace
        now = self._clock()
        refused = signal is Signal.RATE_LIMITED
        current = ticket.round == self._round  # sent since the last decision
        if refused and self._in_evidence():
            # once a limit is in evidence the hint holds every call; before, only the
            # refused call waits for it (the retry policy's business)
            hint = retry_after or 0.0
            if 0.0 < hint <= C.RETRY_MAX_RETRY_AFTER:
                self._hold_until = max(self._hold_until, now + hint)
        if not current:
            return
        self._answers += 1
        self._refused += refused
        trial = self._trial
        if trial is not None:
            if 2 * self._answers <= trial.answers:
                trial.first_half += refused
            if ticket.refilled:
                trial.refilled_answers += 1
                trial.refilled_refused += refused
            if trial.phase is Phase.START:
                # quick: of calls sent once the bucket had its time to refill, one refusal
                # (background) or all its answers without one (a limit)
                done = trial.refilled_refused > 0 or trial.refilled_answers >= trial.answers
            else:
                done = now >= trial.ends and self._answers >= trial.answers
            if done:
                self._judge(trial, now)
            return
        if refused and self.phase is Phase.PACED and self._excess():
            if self.background == 0.0:  # one refusal per cut bounds the rate (``_bound``)
                self._refused_sends.append(ticket.sent)
            self._cut(now)  # at once: every call sent meanwhile would be refused too
            return
        elapsed = now - self._round_start
        if elapsed >= C.RATE_ROUND_SECONDS and (
            self._answers >= C.RATE_ROUND_ANSWERS or elapsed >= C.RATE_ROUND_MAX_SECONDS
        ):
            self._end_round(now)

    def _in_evidence(self) -> bool:
        """Whether a limit is in evidence: pacing, no background share known, and not in the
        quick test of a modest caller (which asks exactly that)."""
        trial = self._trial
        quick = trial is not None and trial.phase is Phase.START
        return self.phase is Phase.PACED and self.background == 0.0 and not quick

    def _delivered(self, now: float) -> float:
        """Accepted answers per second over this round and the last few, holds included.

        A window of several rounds spans whole cycles of refusal and hold, so what it counts
        is what the account gives, not a burst from its bucket or a gap of a hold.
        """
        seconds = now - self._round_start
        accepted = self._accepted_in
        for duration, count in self._history:
            seconds += duration
            accepted += count
        return accepted / max(seconds, C.RATE_ROUND_SECONDS)

    def _bound(self) -> tuple[float, float]:
        """The least rate the account surely accepts, and the last cycle between refusals.

        The account's bucket was empty when each refused call went, so every call it
        accepted in between was paid for by refill: over two refusals ``span`` seconds
        apart, the rate is at least (accepted - 1) / span (the one: a bucket refuses with
        less than a whole token, not none). The refusals kept are those that cut while
        paced with no background share known, one per cut. The best bound over pairs of
        them at least ``RATE_FLOOR_MIN_SECONDS`` apart counts only when the newest cycle
        (the newest refusal and the one before) agrees with it within
        ``RATE_FLOOR_AGREEMENT``: the limit still stands where it stood. The newest cycle
        is taken at the most it could show, (accepted + 1) / cycle, with its calls still
        unanswered counted as accepted: only a cycle that shows less even so is a sign of
        a lower limit (a short cycle's least differs from its most by two calls). When the
        newest refusal came within ``RATE_FLOOR_MIN_SECONDS`` of the one before (the pace
        the last cut set was refused again: the limit moved), or no cycle agrees: 0.0, no
        bound.
        """
        refused = sorted(self._refused_sends)
        if len(refused) < 2:
            return 0.0, 0.0
        last, before = refused[-1], refused[-2]
        cycle = last - before
        if cycle < C.RATE_FLOOR_MIN_SECONDS:
            return 0.0, 0.0
        sends = sorted(self._accepted_sends)

        def accepted(earlier: float, later: float) -> int:
            return bisect.bisect_left(sends, later) - bisect.bisect_right(sends, earlier)

        best = 0.0
        for i, earlier in enumerate(refused):
            for later in refused[i + 1 :]:
                if later - earlier >= C.RATE_FLOOR_MIN_SECONDS:
                    best = max(best, (accepted(earlier, later) - 1) / (later - earlier))
        on_their_way = sum(1 for t in self._unanswered if before < t < last)
        newest = (accepted(before, last) + on_their_way + 1) / cycle  # its most, not least
        return (best if newest >= C.RATE_FLOOR_AGREEMENT * best else 0.0), cycle

    def _pace(self, rate: float, now: float) -> None:
        self.phase = Phase.PACED
        self.rate = max(C.RATE_MIN, min(self._ceiling, rate))
        self._next_at = max(self._next_at, now)

    def _new_round(self, now: float, *, keep: bool = True) -> None:
        """Start a round; ``keep``: the one ending counts toward the accepted rate."""
        if keep:
            self._history.append((now - self._round_start, self._accepted_in))
        self._round += 1
        self._round_start = now
        self._sent = self._answers = self._refused = self._accepted_in = 0
        self._waited = False

    def _beyond_background(self, refused: int | None = None, answers: int | None = None) -> bool:
        """More refusals (this round's, by default) than ``RATE_MAX_BACKGROUND`` could be,
        beyond chance: only a limit explains so many."""
        refused = self._refused if refused is None else refused
        answers = self._answers if answers is None else answers
        allowed = C.RATE_MAX_BACKGROUND * answers
        noise = C.RATE_EXCESS_SIGMAS * math.sqrt(allowed * (1.0 - C.RATE_MAX_BACKGROUND))
        return refused > allowed + noise

    def _excess(self) -> bool:
        """More rate refusals this round than the background share explains.

        Before any limit is in evidence it takes ``RATE_MIN_REFUSALS``: one or two may be
        luck. Once pacing with no background known, one refusal is enough.
        """
        least = 1 if self.phase is Phase.PACED and self.background == 0.0 else C.RATE_MIN_REFUSALS
        if self._refused < least:
            return False
        expected = self.background * self._answers
        noise = C.RATE_EXCESS_SIGMAS * math.sqrt(expected * (1.0 - self.background))
        return self._refused > expected + noise

    def _cut(self, now: float) -> None:
        """Pace at what the account accepted; if refusals go on regardless, test them."""
        elapsed = max(now - self._round_start, 1e-9)
        delivered = self._delivered(now)
        sending = min(self.rate, self._sent / elapsed) if self._sent else self.rate
        if self._run_answers == 0:
            self._run_from = self.rate  # the pace this run of refusals began at
        self._run_cuts += 1
        self._run_answers += self._answers
        self._run_refused += self._refused
        # the start's overshoot is halved, whatever bound its refusals show
        self._floor, cycle = (0.0, 0.0) if self.phase is Phase.START else self._bound()
        self._plateau_until = now + C.RATE_PLATEAU_CYCLES * cycle
        self._target = min(self._ceiling, max(delivered / (1.0 - self.background), self._floor))
        factor = C.RATE_EXIT_FACTOR if self.phase is Phase.START else C.RATE_CUT_HEADROOM
        # never below what was sent, halved: a process that lost one round (the first
        # burst went to its neighbours) keeps a share to learn from; never below just over
        # the bound, where the account's bucket drains slowly and the next refusal comes
        # late, to measure the bound again
        rate = max(
            self._target * factor,
            sending * C.RATE_MAX_CUT,
            self._floor * (1.0 + C.RATE_FLOOR_MARGIN),
        )
        persisting = self._run_cuts >= C.RATE_TRIAL_AFTER_CUTS
        leaving_start = self.phase is Phase.START
        # all refused is no background share: neighbours hold the bucket (module docstring)
        background = self._run_refused < self._run_answers and not self._beyond_background(
            self._run_refused, self._run_answers
        )
        modest = leaving_start and not self._pressed and background
        self._pace(min(self.rate, rate), now)
        self._new_round(now)
        if modest:
            # Demand that never filled the window, refused no more than background could
            # be: a short test under the accepted rate. If refusals still come, go back
            # to the unpaced start and count them as background.
            self._test(Phase.START, math.inf, now, C.RATE_ROUND_SECONDS)
        elif leaving_start:  # the start's overshoot says nothing about what comes after
            self._end_run()
        elif persisting and background and self._run_from < math.inf:
            # Refusals went on through cuts, and not so often that only a limit explains
            # them: pace under what the account accepts, for long enough that neighbours
            # sharing the account back off too. Refusals still coming all along do not
            # depend on this client's pace.
            restore = max(self._run_from, self._healthy)
            self._test(Phase.PACED, restore, now, C.RATE_TEST_SECONDS)

    def _test(self, phase: Phase, rate: float, now: float, seconds: float) -> None:
        """Pace at ``RATE_TEST_FACTOR`` of the accepted rate; ``phase``/``rate`` to restore."""
        self._pace(min(self.rate, self._target * C.RATE_TEST_FACTOR), now)
        self._trial = _Trial(phase, rate, now + seconds, C.RATE_TEST_ANSWERS)

    def _judge(self, trial: _Trial, now: float) -> None:
        self._trial = None
        share = self._refused / max(self._answers, 1)
        if trial.phase is Phase.START:  # quick: what came once the bucket had refilled
            share = trial.refilled_refused / max(trial.refilled_answers, 1)
            counted = trial.refilled_refused
        else:
            counted = self._refused - trial.first_half
        if counted > 0 and not self._beyond_background():
            # a few answers can show any share: never more than background may be
            share = min(share, C.RATE_MAX_BACKGROUND)
            self.background = self._measured = max(self.background, share)
            self._refused_sends.clear()  # refusals that come at random prove no empty bucket
            self.phase = trial.phase
            self.rate = min(self._ceiling, trial.rate)
            self._hold_until = -math.inf
        else:  # the pace mattered: what was held before is no guide any more
            self._healthy = self.rate
        self._end_run()
        self._new_round(now)

    def _end_run(self) -> None:
        self._run_cuts = self._run_answers = self._run_refused = 0
        self._run_from = math.inf

    def _leave_start(self) -> bool:
        """Whether this round's refusals end the unpaced start: more than chance explains."""
        return self._excess()

    def _end_round(self, now: float) -> None:
        share = self._refused / self._answers if self._answers else 0.0
        if self.phase is Phase.START:
            if self._leave_start():
                self._cut(now)
                return
        elif self._excess():
            self._cut(now)
            return
        if self._refused:
            self._calm = 0
        else:
            self._calm += 1
            if self.phase is Phase.PACED and self._waited:
                self._healthy = max(self._healthy, self.rate)
            if self._calm >= C.RATE_CALM_ROUNDS or self.rate >= self._run_from:
                self._end_run()  # calm again, or back to where the run began
        if self.background > 0.0:  # follow it, never above what the last test measured
            self.background += C.RATE_BACKGROUND_DECAY * (share - self.background)
            self.background = min(self.background, self._measured)
            if self.background < 0.01:
                self.background = self._measured = 0.0
                self._refused_sends.clear()
        if self.phase is Phase.PACED and self._waited:
            # per second, not per round (see the module docstring)
            seconds = min(now - self._round_start, C.RATE_ROUND_MAX_SECONDS)
            steps = seconds / C.RATE_ROUND_SECONDS
            if self.rate < self._target:  # back to what the account accepted, quickly
                grown = self.rate * (1.0 + C.RATE_CATCH_UP_GAIN) ** steps
                self.rate = min(self._target, grown)
            else:  # then probe past it, slowly; at the bound, slower still for a while
                at_bound = self._floor > 0.0 and now < self._plateau_until
                gain = C.RATE_PLATEAU_GAIN if at_bound else C.RATE_PROBE_GAIN
                grown = self.rate * (1.0 + gain) ** steps
                self.rate = min(self._ceiling, grown)
        self._new_round(now)

    # ------------------------------------------------------------------ reading

    @property
    def hold_until(self) -> float:
        """The clock time before which no call may go (``-inf``: no hold)."""
        return self._hold_until

    @property
    def bound_per_minute(self) -> float | None:
        """The rate the account surely gives, per minute, that the last cut paced just above
        (see the module docstring), or None while no bound stands."""
        if self.phase is not Phase.PACED or self._floor <= 0.0:
            return None
        return self._floor * 60.0

    @property
    def pace_per_minute(self) -> float | None:
        """The pace in requests per minute, or None while calls go unpaced."""
        return self.rate * 60.0 if self.phase is Phase.PACED else None
