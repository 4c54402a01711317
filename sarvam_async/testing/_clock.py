"""Maps the emulator's (possibly fake) clock onto wall-clock time.

Timestamps in answers (``created_at``, URL expiry ``se``) are derived from the injected clock:
``wall(t) = wall_at_start + (t - clock_at_start)``, so advancing a fake clock advances them too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone


class WallClock:
    """Converts readings of ``clock`` into Unix time and ISO-8601 strings (UTC, ``+00:00``)."""

    __slots__ = ("_offset", "clock")

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._offset = time.time() - clock()

    def now(self) -> float:
        """Current reading of the emulator clock."""
        return self.clock()

    def unix(self, t: float | None = None) -> float:
        """Unix time of clock reading ``t`` (default: now)."""
        return (self.clock() if t is None else t) + self._offset

    def iso(self, t: float | None = None) -> str:
        """ISO-8601 with ``+00:00`` offset for clock reading ``t`` (default: now)."""
        return datetime.fromtimestamp(self.unix(t), timezone.utc).isoformat()

    def http_date(self, t: float | None = None) -> str:
        """RFC 7231 date (as used by ``Last-Modified``) for clock reading ``t``."""
        return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(self.unix(t)))


class ManualClock:
    """A clock that only moves when told to; pass it as ``Emulator(clock=...)``.

    ``advance(seconds)`` moves it forward; calling it returns the current reading.
    """

    __slots__ = ("t",)

    def __init__(self, start: float = 1000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (must not be negative)."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self.t += seconds
