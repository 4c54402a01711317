"""The adaptive limiter: slow start, multiplicative cut, client-wide hold, recovery."""

from __future__ import annotations

import asyncio
import contextlib

from sarvam_async import AsyncSarvam, RetryPolicy, errors
from sarvam_async._limiter import AdaptiveLimiter
from sarvam_async.testing import Emulator

from .conftest import KEY


async def _status_calls(client: AsyncSarvam, n: int) -> None:
    async def one() -> None:
        with contextlib.suppress(errors.NotFoundError):
            await client.speech_to_text_job.get_status("j")

    await asyncio.gather(*(one() for _ in range(n)))


async def test_slow_start_ramps_then_costs_nothing(emulator: Emulator) -> None:
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url) as c:
        assert c.stats.slow_start and c.stats.rate_per_minute == 120.0
        await _status_calls(c, 400)
        stats = c.stats
    assert stats.requests == 400 and stats.throttled == 0
    # each success adds 4 req/s while no refusal was seen
    assert stats.slow_start and stats.rate_per_minute >= 60 * (2 + 4 * 399)


async def test_429_cuts_rate_holds_client_wide_and_recovers(emulator: Emulator) -> None:
    policy = RetryPolicy(jitter=lambda: 0.0)
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, retry=policy) as c:
        await _status_calls(c, 50)  # ramp up a little
        before = c.stats.rate_per_minute
        emulator.reset_requests()
        emulator.fail_next("status", count=3, status=429, retry_after_ms=300)
        await _status_calls(c, 30)
        stats = c.stats
        assert stats.throttled == 3 and not stats.slow_start
        assert stats.retries == 3
        # one cut for the burst of refusals (not three): 0.7x, then a few slow increases
        assert stats.rate_per_minute < before * 0.75
        calls = emulator.calls("status")
        refused = [r for r in calls if r.status == 429]
        last_refusal = max(r.time for r in refused)
        later = [r for r in calls if r.time > last_refusal]
        # every call of the client, not only the refused ones, waited out Retry-After
        assert later and min(r.time for r in later) - min(r.time for r in refused) >= 0.29
        cut = stats.rate_per_minute
        await _status_calls(c, 100)
        assert c.stats.rate_per_minute > cut  # additive recovery on success


async def test_known_plan_rate_paces_from_the_start(emulator: Emulator) -> None:
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, rate_limit=600.0) as c:
        assert not c.stats.slow_start
        await _status_calls(c, 6)
    times = [r.time for r in emulator.calls("status")]
    # 10 req/s: the sixth call waits for about half a second of tokens
    assert times[-1] - times[0] >= 0.4


async def test_limiter_bounds_in_flight_and_releases_on_cancel() -> None:
    lim = AdaptiveLimiter(max_in_flight=2, adaptive=False)
    t1 = await lim.acquire()
    await lim.acquire()
    waiter = asyncio.ensure_future(lim.acquire())
    await asyncio.sleep(0.01)
    assert not waiter.done() and lim.stats().in_flight == 2
    waiter.cancel()
    lim.release(t1, 200, None)
    assert lim.stats().in_flight == 1
    await asyncio.wait_for(lim.acquire(), 1)


async def test_pacing_wakes_waiters_in_order() -> None:
    lim = AdaptiveLimiter(max_in_flight=100, rate_limit=60 * 200)  # 200 req/s
    order: list[int] = []

    async def one(i: int) -> None:
        ticket = await lim.acquire()
        order.append(i)
        lim.release(ticket, 200, None)

    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.gather(*(one(i) for i in range(40)))
    assert order == list(range(40))
    assert loop.time() - start >= 0.15  # ~40 / 200 s, minus the initial token


async def test_fanout_under_rate_limit_has_no_429_storm(tmp_path: object) -> None:
    from pathlib import Path

    tmp = Path(str(tmp_path))
    paths = []
    for i in range(60):
        p = tmp / f"f{i}.wav"
        p.write_bytes(b"RIFF" + bytes(20))
        paths.append(p)
    async with (
        Emulator(api_key=KEY, rate_limit=1200.0) as emu,  # 20 req/s, burst 20
        AsyncSarvam(api_key=KEY, base_url=emu.url) as c,
    ):
        outcomes = [
            o
            async for o in c.transcribe_files(
                paths, output_dir=tmp / "out", max_concurrent_jobs=3, poll_interval=0.05
            )
        ]
        api = [r for r in emu.requests if r.flow != "storage"]
        refused = [r for r in api if r.status == 429]
    assert len(outcomes) == 60 and all(o.ok for o in outcomes)
    assert len(refused) <= max(3, len(api) // 10)
