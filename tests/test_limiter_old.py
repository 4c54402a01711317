"""The adaptive limiter: slow start, multiplicative cut, client-wide hold, recovery."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from sarvam_async import AsyncSarvam, RetryPolicy, errors
from sarvam_async._limiter import _WAITED, AdaptiveLimiter
from sarvam_async.testing import Emulator

from .conftest import KEY


async def _status_calls(client: AsyncSarvam, n: int) -> None:
    async def one() -> None:
        with contextlib.suppress(errors.NotFoundError):
            await client.speech_to_text_job.get_status("j")

    await asyncio.gather(*(one() for _ in range(n)))


async def test_slow_start_grows_the_rate_exponentially(emulator: Emulator) -> None:
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url) as c:
        assert c.stats.slow_start and c.stats.rate_per_minute == 120.0
        await _status_calls(c, 8)
        stats = c.stats
    assert stats.requests == 8 and stats.throttled == 0
    # Each accepted answer to a call that waited for the pace adds 4 requests/s while no
    # refusal was seen (a tenth past 40/s). The first call took the one starting token
    # without waiting, so seven answers count.
    assert stats.slow_start and stats.rate_per_minute == pytest.approx(60 * (2 + 4 * 7))


async def test_429_cuts_rate_holds_client_wide_and_recovers(emulator: Emulator) -> None:
    policy = RetryPolicy(jitter=lambda: 0.0)
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, retry=policy) as c:
        await _status_calls(c, 50)  # ramp up a little
        before = c.stats.rate_per_minute
        emulator.reset_requests()
        emulator.fail_next("status", count=1, status=429, retry_after_ms=300)
        refused = asyncio.ensure_future(_status_calls(c, 1))
        while c.stats.throttled == 0:  # until the client has seen the 429
            await asyncio.sleep(0.005)
        seen = emulator.calls("status")[0].time
        await _status_calls(c, 10)  # other calls of the same client, after the refusal
        await refused
        stats = c.stats
        assert stats.throttled == 1 and not stats.slow_start and stats.retries == 1
        assert stats.rate_per_minute < before  # cut
        later = emulator.calls("status")[1:]
        assert len(later) == 11
        # every call of the client, not only the refused one, waited out Retry-After
        assert min(r.time for r in later) - seen >= 0.29
        cut = stats.rate_per_minute
        await _status_calls(c, 100)
        assert c.stats.rate_per_minute > cut  # recovery on success


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _paced(lim: AdaptiveLimiter) -> int:
    """The ticket of a call sent now after waiting for the pace."""
    return lim._epoch * 2 + _WAITED


def _unpaced(lim: AdaptiveLimiter) -> int:
    """The ticket of a call sent now without waiting (demand below the pace)."""
    return lim._epoch * 2


def test_slow_start_exit_halves_what_the_server_accepted() -> None:
    clock = Clock()
    lim = AdaptiveLimiter(max_in_flight=10, clock=clock)
    for _ in range(100):  # 100 accepted answers over 2 s: 50/s accepted
        clock.now += 0.02
        lim.release(_paced(lim), 200, None)
    assert lim.slow_start and lim.rate > 1000  # slow start ran far past the server
    clock.now += 0.01
    ticket = _paced(lim)
    lim.release(ticket, 429, 2.0)
    # half of what the server accepted (50/s), not of the runaway rate
    assert lim.rate == pytest.approx(0.5 * 50, rel=0.05)
    assert not lim.slow_start and lim._blocked_until == pytest.approx(clock.now + 2.0)
    exit_rate = lim.rate
    lim.release(ticket, 429, None)  # same burst (sent before the cut): no second cut
    clock.now += 0.1
    lim.release(_paced(lim), 429, None)  # sent after the cut, but straight after it
    assert lim.rate == exit_rate
    clock.now += 0.3  # still in the exit phase: a refusal says one halving was not enough
    lim.release(_paced(lim), 503, None)
    assert lim.rate == pytest.approx(exit_rate / 2)
    clock.now += 2.0  # past the exit phase: congestion avoidance cuts gently
    before = lim.rate
    lim.release(_paced(lim), 429, None)
    assert lim.rate == pytest.approx(before * 0.85)


def test_growth_per_answer_scales_with_the_plan_and_needs_demand() -> None:
    for plan in (20.0, 100.0, 600.0, 60_000.0):  # requests per minute, tiny plan to huge
        clock = Clock()
        lim = AdaptiveLimiter(max_in_flight=10, clock=clock, rate_limit=plan)
        clock.now += 1.0
        lim.release(_paced(lim), 429, None)
        scale, low = plan / 60, lim.rate
        assert low == pytest.approx(scale * 0.85)
        lim.release(_unpaced(lim), 200, None)  # sent without waiting: no evidence
        assert lim.rate == low
        lim.release(_paced(lim), 200, None)
        # +1 % of the scale (the rate refused) per answer, a little more below it: the
        # same share of refusals (about one per 15 answers) whatever the plan; but where
        # answers come fast, winning the cut back takes 3 s at the least
        per_answer = 0.01 * scale / 0.85
        per_three_seconds = 0.15 * scale / (3.0 * low)
        assert lim.rate - low == pytest.approx(min(per_answer, per_three_seconds), rel=1e-6)
        assert (per_answer < per_three_seconds) == (plan <= 100.0)


def test_a_client_cut_more_often_regrows_faster() -> None:
    clock = Clock()
    lucky = AdaptiveLimiter(max_in_flight=10, clock=clock, rate_limit=100.0)
    unlucky = AdaptiveLimiter(max_in_flight=10, clock=clock, rate_limit=100.0)
    scale = 100.0 / 60
    clock.now += 1.0
    lucky.release(_paced(lucky), 429, None)
    for _ in range(3):  # refused in three bursts, each far enough apart to cut
        unlucky.release(_paced(unlucky), 429, None)
        clock.now += 3.0
    assert unlucky.rate == pytest.approx(scale * 0.85**3)
    steps = []
    for lim in (lucky, unlucky):
        before = lim.rate
        lim.release(_paced(lim), 200, None)
        steps.append(lim.rate - before)
    # The scale (the highest rate refused) did not shrink with the cuts, and a client
    # under it catches up faster: shares converge instead of drifting apart.
    assert steps[0] == pytest.approx(0.01 * scale / 0.85)
    assert steps[1] == pytest.approx(0.01 * scale / 0.85**3)
    assert steps[1] > steps[0]


def test_probing_speeds_up_once_past_the_last_refusal() -> None:
    clock = Clock()
    lim = AdaptiveLimiter(max_in_flight=10, clock=clock, rate_limit=100.0)
    clock.now += 1.0
    lim.release(_paced(lim), 429, None)  # refused at 100/min
    answers = 0
    while lim.rate < 100.0 / 60:  # back up to the ceiling, 1 % of the scale at a time
        clock.now += 0.1
        lim.release(_paced(lim), 200, None)
        answers += 1
    assert 10 <= answers <= 16
    clock.now += 0.1
    before = lim.rate
    lim.release(_paced(lim), 200, None)
    slow = lim.rate - before
    clock.now += 2.0  # two seconds above the old limit with no refusal: it has moved
    before = lim.rate
    lim.release(_paced(lim), 200, None)
    assert lim.rate - before > 3 * slow


def test_a_known_plan_is_not_probed_past_until_refused() -> None:
    clock = Clock()
    lim = AdaptiveLimiter(max_in_flight=10, clock=clock, rate_limit=600.0)
    for _ in range(50):  # five seconds of paced answers, none refused
        clock.now += 0.1
        lim.release(_paced(lim), 200, None)
    # a gentle climb of at most 5 % a second; probing that speeds up would be far past
    assert 10.0 < lim.rate < 10.0 * 1.3


async def test_burst_of_429s_cuts_once(emulator: Emulator) -> None:
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url) as c:
        await _status_calls(c, 200)
        emulator.fail_next("status", count=20, status=503)  # no Retry-After: backoff only
        await _status_calls(c, 20)
        stats = c.stats
    assert stats.throttled == 20 and not stats.slow_start
    # Twenty refusals of requests sent in one epoch cut the rate once (to what the server
    # was accepting, hundreds a second here), not twenty times (0.7**20 of that, < 1/s).
    assert stats.rate_per_minute > 60 * 20


async def test_long_retry_after_and_quota_do_not_freeze_the_client(emulator: Emulator) -> None:
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url) as c:
        emulator.fail_next("status", status=429, retry_after=3600)
        with pytest.raises(errors.TooManyRequestsError):
            await c.speech_to_text_job.get_status("j")
        emulator.fail_next("status", status=429, code="insufficient_quota_error", retry_after=30)
        with pytest.raises(errors.TooManyRequestsError):
            await c.speech_to_text_job.get_status("j")
        rate = c.stats.rate_per_minute
        with pytest.raises(errors.NotFoundError):
            await asyncio.wait_for(c.speech_to_text_job.get_status("j"), 2.0)  # not held
        assert c.stats.rate_per_minute >= rate  # quota says nothing about pace: no cut


async def test_close_fails_queued_calls_instead_of_leaving_them(emulator: Emulator) -> None:
    c = AsyncSarvam(api_key=KEY, base_url=emulator.url, rate_limit=6.0)  # 1 every 10 s
    async with c:
        with pytest.raises(errors.NotFoundError):
            await c.speech_to_text_job.get_status("j")  # takes the only token
        queued = asyncio.ensure_future(c.speech_to_text_job.get_status("j"))
        await asyncio.sleep(0.05)
        assert c.stats.queued == 1
    with pytest.raises(errors.ClientClosedError):
        await asyncio.wait_for(queued, 1.0)


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


async def test_cancel_while_paced_gives_the_slot_back() -> None:
    lim = AdaptiveLimiter(max_in_flight=1, rate_limit=6.0)  # one token per 10 s
    ticket = await lim.acquire()
    lim.release(ticket, 200, None)  # the slot is free again, the token is spent
    waiter = asyncio.ensure_future(lim.acquire())
    await asyncio.sleep(0.01)
    assert lim.stats().queued == 1  # holds the slot, waits for a token
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert lim.stats().queued == 0 and lim.stats().in_flight == 0
    assert lim._sem._value == 1  # the slot came back


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
