"""What the shared limiter costs per API attempt, next to the local controller.

    python -m benchmarks.shared_limiter [--calls 5000]

Starts a throwaway ``redis-server`` on a free loopback port, then times ``calls``
sequential acquire/release pairs of the client's gate: with the local controller only, and
with a ``RedisRateLimiter`` at a plan far above the pace reached (so the figure is the
round trip and the script, not waiting). Reported: wall and CPU microseconds per call, and
the 50th/99th percentile of one acquire.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from sarvam_async._limiter import Limiter
from sarvam_async._ratecontrol import Signal
from sarvam_async._redis_limiter import RedisRateLimiter

from ._redis import RedisUnavailable, local_redis


async def _measure(limiter: Limiter, calls: int) -> tuple[float, float, float, float]:
    lat: list[float] = []
    cpu0, t0 = time.process_time(), time.perf_counter()
    for _ in range(calls):
        a = time.perf_counter()
        ticket = await limiter.acquire(timeout=10.0)
        lat.append(time.perf_counter() - a)
        limiter.release(ticket, Signal.ACCEPTED, None, status=200)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    lat.sort()
    return wall / calls, cpu / calls, lat[len(lat) // 2], lat[int(len(lat) * 0.99)]


async def _run(url: str, calls: int) -> None:
    local = Limiter(max_in_flight=100)
    async with RedisRateLimiter(url, account="bench", rate_limit=60e6) as shared:
        shared.attach("unused")
        remote = Limiter(max_in_flight=100, shared=shared)
        await _measure(remote, 200)  # warm: connection, script cache
        rows = [("local controller", await _measure(local, calls))]
        rows.append(("shared (Redis on loopback)", await _measure(remote, calls)))
    print(f"{calls:,} sequential acquire+release pairs\n")
    print("| gate | wall us/call | CPU us/call | acquire p50 us | acquire p99 us |")
    print("|---|---|---|---|---|")
    for name, (wall, cpu, p50, p99) in rows:
        figures = " | ".join(f"{x * 1e6:.1f}" for x in (wall, cpu, p50, p99))
        print(f"| {name} | {figures} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=5000)
    args = ap.parse_args()
    try:
        with local_redis() as (url, _):
            asyncio.run(_run(url, args.calls))
    except RedisUnavailable as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
