"""Token-bucket rate limiting with continuous refill, per account or per key.

The docs describe Sarvam's limits as per account (shared by all its keys), expressed in
requests per minute, enforced by a token bucket with continuous refill. Only API calls are
counted; presigned storage traffic never is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

_EPSILON = 1e-9


class TokenBucket:
    """A bucket of ``capacity`` tokens refilled at ``rate`` tokens per second; starts full."""

    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = now

    def take(self, now: float) -> float:
        """Take one token: 0.0 if granted, else the seconds until one is available."""
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
            self.stamp = now
        if self.tokens >= 1.0 - _EPSILON:
            self.tokens = max(0.0, self.tokens - 1.0)
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    """Admits API calls; ``check`` returns 0.0 or the wait before the next call is admitted.

    ``per_minute`` None disables limiting. ``burst`` is the bucket capacity (default: one
    second's worth of tokens, at least 1).
    """

    __slots__ = ("_buckets", "_capacity", "_clock", "_rate", "_scope", "enabled")

    def __init__(
        self,
        per_minute: float | None,
        *,
        scope: Literal["account", "key"],
        burst: float | None,
        clock: Callable[[], float],
    ) -> None:
        if per_minute is not None and not per_minute > 0:
            raise ValueError("rate_limit must be a positive number of requests per minute")
        if scope not in ("account", "key"):
            raise ValueError("rate_limit_scope must be 'account' or 'key'")
        rate = (per_minute or 0.0) / 60.0
        capacity = burst if burst is not None else max(1.0, rate)
        if capacity < 1:
            raise ValueError("burst must be at least 1")
        self.enabled = per_minute is not None
        self._rate = rate
        self._capacity = float(capacity)
        self._scope = scope
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, key: str) -> float:
        """Take a token for ``key`` (or for the account): 0.0 if admitted, else seconds to wait."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        name = key if self._scope == "key" else ""
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = TokenBucket(self._rate, self._capacity, now)
        return bucket.take(now)


def retry_headers(wait: float, *, with_ms: bool = False) -> dict[str, str]:
    """``Retry-After`` in whole seconds (rounded up, at least 1), as the live API sends it.

    ``with_ms`` adds the precise ``retry-after-ms``, which no Sarvam document mentions (only
    the generated SDK reads it); clients that honour it wait milliseconds, not seconds.
    """
    headers = {"Retry-After": str(max(1, math.ceil(wait - _EPSILON)))}
    if with_ms:
        headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000.0 - _EPSILON)))
    return headers
