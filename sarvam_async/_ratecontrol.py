"""The rate controller: decides when the next API call may go. Pure logic, no I/O.

The account's limit is unknown and shared; the controller learns what it accepts from what
it accepted, and costs nothing while nothing is refused::

             rate refusals above the background share
    START ───────────────────────────────────────────────▶ PACED
    no pace; a window of calls in flight,                  pace = the rate the account
    doubling per round trip of accepted answers            accepted, x (1 + probe) each
      ▲                                                    busy round without excess
      │   the cut did not lower the refusal share:         refusals, back to that rate
      └──────── the refusals are background noise ◀─────── when there are
                (undo the cut, remember their share)

* **START**: calls go unpaced, at most ``window`` in flight. The window starts at
  ``RATE_START_WINDOW`` and grows by one per accepted answer while calls find it full, so
  it doubles every round trip while demand presses on it, and stops growing when demand
  uses less than half of it (the way TCP's slow start grows its congestion window).
* **Rounds**: the controller judges the account once per round (at least
  ``RATE_ROUND_SECONDS`` and ``RATE_ROUND_ANSWERS`` answers): of the answers to calls sent in
  the round, which share was refused for the rate? A share no higher than the background
  share of refusals (those that come whatever the pace), give or take its statistical
  noise, is no evidence of a limit.
* **Leaving START**: a round with excess refusals (at least ``RATE_MIN_REFUSALS``, and
  more than the background explains) switches to pacing at the rate the account accepted
  over the last ``RATE_MEASURE_ROUNDS`` rounds, halved once as TCP halves after slow start
  (the burst that met the limit also drained the account's bucket).
* **PACED**: a round with excess refusals sets the pace to the accepted rate (scaled up for
  the background share) times ``RATE_CUT_HEADROOM``, and never below ``RATE_MAX_CUT`` of
  what was sent. A busy round (calls queued for the pace) without excess refusals grows
  it: by ``RATE_CATCH_UP_GAIN`` back to the accepted rate, then by ``RATE_PROBE_GAIN`` past
  it. A known plan (``rate_limit=``) starts here and is never probed past.
* **A cut is an experiment**: after it, a limit at the old accepted rate predicts
  ``1 - accepted / sent`` refused; background refusals predict the same share as before.
  If the second prediction is the closer one (and the share is at most
  ``RATE_MAX_BACKGROUND``), the cut is undone and that share becomes the background, which
  then decays by ``RATE_BACKGROUND_DECAY`` as rounds show less of it.
* **Hold**: once pacing (a limit is in evidence, no background known), a ``Retry-After``
  on a rate refusal holds every call until it has passed. Before that, only the refused
  call waits for it (the retry policy's business): one refusal proves no limit.

Refusals that say nothing about the pace never move it: a 429 for exhausted credits, a 503
or a dropped connection (``Signal.NO_SIGNAL`` and ``Signal.UNAVAILABLE``).
"""

from __future__ import annotations

import collections
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


@dataclass(slots=True)
class _Cut:
    """A cut on trial: the state to restore if the refusals turn out pace-independent."""

    share: float
    phase: Phase
    rate: float
    accepted: float


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
        self._pressed = False  # calls found the window full: it binds, so it may grow
        self._hold_until = -math.inf
        self._next_at = now  # when the pace lets the next call go
        self._round = 0
        self._round_start = now
        self._sent = self._answers = self._refused = self._accepted_in = 0
        self._waited = False  # a call of this round had to wait for the pace
        self._trial: _Cut | None = None
        self._history: collections.deque[tuple[float, int]] = collections.deque(
            maxlen=C.RATE_MEASURE_ROUNDS - 1
        )
        self._target = 0.0  # the accepted rate at the last cut: growth is quick below it

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
        if self.phase is Phase.PACED:
            now = self._clock()
            interval = 1.0 / self.rate
            if now - self._next_at > interval:  # idle: no burst is earned
                self._next_at = now + interval
            else:  # on time, or a late timer: the average pace holds
                self._next_at = max(self._next_at, now - interval) + interval
        self._sent += 1
        if waited:
            self._waited = True
        return Ticket(self._round, waited)

    # ------------------------------------------------------------------ learning

    def on_answer(self, ticket: Ticket, signal: Signal, retry_after: float | None) -> None:
        """Learn from one answer; ``retry_after`` is the server's hint in seconds, if any."""
        if signal is Signal.ACCEPTED:
            self._accepted_in += 1
            if self.phase is Phase.START and self._pressed:
                self.window += 1
        elif signal is not Signal.RATE_LIMITED:
            return
        now = self._clock()
        if ticket.round == self._round:
            self._answers += 1
            if signal is Signal.RATE_LIMITED:
                self._refused += 1
        if signal is Signal.RATE_LIMITED:
            # the hint holds every call once a limit is in evidence; before, only the
            # refused call waits for it (the retry policy's business)
            limited = self.phase is Phase.PACED and self.background == 0.0
            hint = retry_after if limited else None
            if hint is not None and 0.0 < hint <= C.RETRY_MAX_RETRY_AFTER:
                self._hold_until = max(self._hold_until, now + hint)
        elapsed = now - self._round_start
        if elapsed >= C.RATE_ROUND_SECONDS and (
            self._answers >= C.RATE_ROUND_ANSWERS or elapsed >= C.RATE_ROUND_MAX_SECONDS
        ):
            self._end_round(now)

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

    def _leave_start(self, now: float) -> None:
        share = self._refused / max(self._answers, 1)
        trial = _Cut(share, Phase.START, self.rate, self._delivered(now))
        self._target = min(self._ceiling, self._delivered(now))
        self._pace(self._target * C.RATE_EXIT_FACTOR, now)
        self._new_round(now)
        self._trial = trial

    def _pace(self, rate: float, now: float) -> None:
        self.phase = Phase.PACED
        self.rate = max(C.RATE_MIN, rate)
        self._next_at = max(self._next_at, now) if self.rate < math.inf else now

    def _new_round(self, now: float) -> None:
        self._history.append((now - self._round_start, self._accepted_in))
        self._round += 1
        self._round_start = now
        self._sent = self._answers = self._refused = self._accepted_in = 0
        self._waited = False

    def _pace_independent(self, trial: _Cut, share: float, now: float) -> bool:
        """Whether the round after a cut looks like background refusals rather than a limit.

        A limit at the rate accepted before the cut predicts ``1 - accepted / sent`` refused
        now (none, if the cut went under it); refusals that come whatever the pace predict
        the same share as before. The closer prediction wins; a share above
        ``RATE_MAX_BACKGROUND`` is always a limit.
        """
        if not self._refused or share > C.RATE_MAX_BACKGROUND:
            return False
        sending = self._sent / max(now - self._round_start, 1e-9)
        limit = max(0.0, 1.0 - trial.accepted / sending) if sending > 0 else 0.0
        return abs(share - trial.share) < abs(share - limit)

    def _excess(self) -> bool:
        """More rate refusals this round than the background share explains."""
        expected = self.background * self._answers
        noise = C.RATE_EXCESS_SIGMAS * math.sqrt(expected * (1.0 - self.background))
        return self._refused >= C.RATE_MIN_REFUSALS and self._refused > expected + noise

    def _end_round(self, now: float) -> None:
        share = self._refused / self._answers
        trial, self._trial = self._trial, None
        if trial is not None and self._pace_independent(trial, share, now):
            # the cut did not make refusals rarer: they do not depend on the pace
            self.background = max(self.background, share)
            self.phase = trial.phase
            self.rate = trial.rate
            self._hold_until = -math.inf
            self._new_round(now)
            return
        if self._excess():
            cut = _Cut(share, self.phase, self.rate, self._delivered(now))
            self._target = min(self._ceiling, self._delivered(now) / (1.0 - self.background))
            sending = min(self.rate, self._sent / max(now - self._round_start, 1e-9))
            factor = C.RATE_EXIT_FACTOR if self.phase is Phase.START else C.RATE_CUT_HEADROOM
            # at most halve what was sent: a process that was unlucky in one round keeps
            # a share to learn from
            self._pace(max(self._target * factor, sending * C.RATE_MAX_CUT), now)
            self._new_round(now)
            self._trial = cut
            return
        if share < self.background:  # follow the background down as it fades
            self.background += C.RATE_BACKGROUND_DECAY * (share - self.background)
            if self.background < 0.01:
                self.background = 0.0
        if self.phase is Phase.PACED and self._waited:
            if self.rate < self._target:  # back to what the account accepted, quickly
                self.rate = min(self._target, self.rate * (1.0 + C.RATE_CATCH_UP_GAIN))
            else:  # then probe past it, slowly
                self.rate = min(self._ceiling, self.rate * (1.0 + C.RATE_PROBE_GAIN))
        self._new_round(now)

    # ------------------------------------------------------------------ reading

    @property
    def hold_until(self) -> float:
        """The clock time before which no call may go (``-inf``: no hold)."""
        return self._hold_until

    @property
    def pace_per_minute(self) -> float | None:
        """The pace in requests per minute, or None while calls go unpaced."""
        return self.rate * 60.0 if self.phase is Phase.PACED else None
