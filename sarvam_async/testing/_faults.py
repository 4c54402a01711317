"""Scripted (``fail_next``) and random (``fault_rate``) faults, applied like a gateway would.

A fault is decided before the key check, routing and everything else. Scripted faults are
consumed FIFO per route; a route's own queue is consulted before the ``"*"`` queue. Random
faults only hit API routes and are drawn from a seeded generator, so a given sequence of
requests always meets the same faults.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from ._ratelimit import retry_headers
from ._recording import ROUTES


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected answer.

    ``status`` None means "no error": sleep ``delay`` and then handle the request normally.
    ``body`` replaces the error body entirely (with ``content_type``); ``drop`` closes the
    connection without answering (after ``delay``).
    """

    status: int | None = 503
    retry_after: str | None = None
    retry_after_ms: int | None = None
    code: str | None = None
    message: str | None = None
    body: bytes | None = None
    content_type: str | None = None
    drop: bool = False
    delay: float = 0.0

    def headers(self) -> dict[str, str]:
        """The retry headers this fault sends, if any."""
        out: dict[str, str] = {}
        if self.retry_after is not None:
            out["Retry-After"] = self.retry_after
        if self.retry_after_ms is not None:
            out["retry-after-ms"] = str(self.retry_after_ms)
        return out


def format_retry_after(value: float | str | None) -> str | None:
    """``Retry-After`` header text: strings verbatim, whole numbers without a decimal point."""
    if value is None or isinstance(value, str):
        return value
    if float(value).is_integer():
        return str(int(value))
    return str(float(value))


class FaultScript:
    """FIFO queues of scripted faults, keyed by route name or ``"*"``."""

    __slots__ = ("_queues",)

    def __init__(self) -> None:
        self._queues: dict[str, deque[Fault]] = {}

    def add(self, route: str, fault: Fault, count: int) -> None:
        """Queue ``fault`` for the next ``count`` requests to ``route``."""
        if route != "*" and route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; expected '*' or one of {sorted(ROUTES)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        self._queues.setdefault(route, deque()).extend([fault] * count)

    def take(self, route: str) -> Fault | None:
        """Consume the next fault for ``route`` (own queue first, then ``"*"``), if any."""
        queues = self._queues
        if not queues:
            return None
        for name in (route, "*"):
            queue = queues.get(name)
            if queue:
                fault = queue.popleft()
                if not queue:
                    del queues[name]
                return fault
        return None

    def pending(self, route: str | None = None) -> int:
        """How many scripted faults are still queued (for ``route``, or in total)."""
        if route is None:
            return sum(len(q) for q in self._queues.values())
        queue = self._queues.get(route)
        return len(queue) if queue else 0

    def clear(self) -> None:
        """Drop every queued fault."""
        self._queues.clear()


class RandomFaults:
    """Faults with probability ``rate`` per API call, reproducible from ``seed``.

    429 and 503 faults ask for a wait of 10-100 ms: as ``Retry-After: 1`` (whole seconds, as
    the live API sends), plus the precise ``retry-after-ms`` with ``with_ms``. With ``drop``,
    half of the faults drop the connection instead of answering.
    """

    __slots__ = ("_drop", "_rate", "_rng", "_statuses", "with_ms")

    def __init__(
        self, rate: float, statuses: Sequence[int], drop: bool, seed: int, *, with_ms: bool = False
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("fault_rate must be between 0 and 1")
        if rate > 0 and not statuses and not drop:
            raise ValueError("fault_statuses must not be empty")
        self._rate = rate
        self._statuses = tuple(statuses) or (503,)
        self._drop = drop
        self._rng = random.Random(seed)
        self.with_ms = with_ms

    def draw(self) -> Fault | None:
        """Decide whether the current request fails, and how."""
        if self._rate <= 0.0:
            return None
        rng = self._rng
        if rng.random() >= self._rate:
            return None
        # Always draw the same number of values per fault, for reproducibility.
        status = self._statuses[int(rng.random() * len(self._statuses))]
        drop_roll = rng.random()
        wait_ms = 10 + int(rng.random() * 91)
        if self._drop and drop_roll < 0.5:
            return Fault(status=None, drop=True)
        if status not in (429, 503):
            return Fault(status=status)
        headers = retry_headers(wait_ms / 1000.0, with_ms=self.with_ms)
        ms = headers.get("retry-after-ms")
        return Fault(
            status=status,
            retry_after=headers["Retry-After"],
            retry_after_ms=int(ms) if ms is not None else None,
        )
