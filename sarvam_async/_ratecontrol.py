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
  ``RATE_START_WINDOW`` and grows by one per accepted answer to a call that had to wait for
  it, so it doubles every round trip while demand presses on it and never binds a caller
  that does not (the way TCP's slow start grows its congestion window).
* **Rounds**: the controller judges the account once per round (at least
  ``RATE_ROUND_SECONDS`` and ``RATE_ROUND_ANSWERS`` answers): of the answers to calls sent in
  the round, which share was refused for the rate? A share no higher than the background
  share of refusals (those that come whatever the pace), give or take its statistical
  noise, is no evidence of a limit.
* **Leaving START**: the first rate refusal when no background is known (at once: an
  overshooting burst is costly), or a round with excess refusals, switches to pacing at the
  accepted rate, halved once as TCP halves after slow start (the burst that met the limit
  also drained the account's bucket).
* **PACED**: a round with excess refusals sets the pace to the rate the account accepted in
  it (scaled up for the background share), times ``RATE_CUT_HEADROOM``. A round in which
  calls queued for the pace and no excess refusal came raises it by ``RATE_PROBE_GAIN``.
  A known plan (``rate_limit=``) starts here and is never probed past.
* **A cut is an experiment**: if the round after a cut is refused at least
  ``RATE_NOISE_RATIO`` as often as the round before, the pace was not the cause; the cut is
  undone and that share becomes the background, which then decays as rounds show less.
* **Hold**: a ``Retry-After`` on a rate refusal holds every call until it has passed, unless
  the background share says refusals come whatever the pace; then only the refused call
  waits (the retry policy's business).

Refusals that say nothing about the pace never move it: a 429 for exhausted credits, a 503
or a dropped connection (``Signal.NO_SIGNAL`` and ``Signal.UNAVAILABLE``).
"""

from __future__ import annotations

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
        self._hold_until = -math.inf
        self._next_at = now  # when the pace lets the next call go
        self._round = 0
        self._round_start = now
        self._sent = self._answers = self._refused = self._accepted_in = 0
        self._waited = False  # a call of this round had to wait for the pace
        self._trial: _Cut | None = None

    # ------------------------------------------------------------------ sending

    def next_send(self, in_flight: int) -> float:
        """Seconds until a call may go: 0.0 now, ``math.inf`` not before an answer arrives."""
        if self.phase is Phase.START:
            if in_flight >= self.window:
                return math.inf
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
            # one interval per call; a late timer keeps a quarter interval of credit, an
            # idle spell earns no burst
            self._next_at = max(self._next_at, now - 0.25 * interval) + interval
        self._sent += 1
        if waited:
            self._waited = True
        return Ticket(self._round, waited)

    # ------------------------------------------------------------------ learning

    def on_answer(self, ticket: Ticket, signal: Signal, retry_after: float | None) -> None:
        """Learn from one answer; ``retry_after`` is the server's hint in seconds, if any."""
        if signal is Signal.ACCEPTED:
            self._accepted_in += 1
            if self.phase is Phase.START and ticket.waited:
                self.window += 1
        elif signal is not Signal.RATE_LIMITED:
            return
        now = self._clock()
        if ticket.round == self._round:
            self._answers += 1
            if signal is Signal.RATE_LIMITED:
                self._refused += 1
        if signal is Signal.RATE_LIMITED:
            hint = retry_after if self.background == 0.0 else None
            if hint is not None and 0.0 < hint <= C.RETRY_MAX_RETRY_AFTER:
                self._hold_until = max(self._hold_until, now + hint)
            if self.phase is Phase.START and self.background == 0.0:
                self._leave_start(now)
                return
        if now - self._round_start >= C.RATE_ROUND_SECONDS and (
            self._answers >= C.RATE_ROUND_ANSWERS
        ):
            self._end_round(now)

    def _delivered(self, now: float) -> float:
        """Accepted answers per second in the current round (over at least a round's time)."""
        return self._accepted_in / max(now - self._round_start, C.RATE_ROUND_SECONDS)

    def _leave_start(self, now: float) -> None:
        share = self._refused / max(self._answers, 1)
        trial = _Cut(share, Phase.START, self.rate)
        self._pace(min(self._ceiling, self._delivered(now) * C.RATE_EXIT_FACTOR), now)
        self._new_round(now)
        self._trial = trial

    def _pace(self, rate: float, now: float) -> None:
        self.phase = Phase.PACED
        self.rate = max(C.RATE_MIN, rate)
        self._next_at = max(self._next_at, now) if self.rate < math.inf else now

    def _new_round(self, now: float) -> None:
        self._round += 1
        self._round_start = now
        self._sent = self._answers = self._refused = self._accepted_in = 0
        self._waited = False

    def _excess(self) -> bool:
        """More rate refusals this round than the background share explains."""
        expected = self.background * self._answers
        noise = 2.0 * math.sqrt(expected * (1.0 - self.background))
        return self._refused >= 1 and self._refused > expected + noise

    def _end_round(self, now: float) -> None:
        share = self._refused / self._answers
        trial, self._trial = self._trial, None
        if trial is not None and self._refused and share >= C.RATE_NOISE_RATIO * trial.share:
            # the cut did not make refusals rarer: they do not depend on the pace
            self.background = max(self.background, share)
            self.phase = trial.phase
            self.rate = trial.rate
            self._hold_until = -math.inf
            self._new_round(now)
            return
        if self._excess():
            accepted = self._delivered(now) / (1.0 - self.background)
            cut = _Cut(share, self.phase, self.rate)
            if self.phase is Phase.START:
                self._pace(min(self._ceiling, accepted * C.RATE_EXIT_FACTOR), now)
            else:
                self._pace(min(self.rate, accepted * C.RATE_CUT_HEADROOM), now)
            self._new_round(now)
            self._trial = cut
            return
        if share < self.background:  # follow the background down as it fades
            self.background += C.RATE_BACKGROUND_DECAY * (share - self.background)
            if self.background < 0.01:
                self.background = 0.0
        if self.phase is Phase.PACED and self._waited:
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
