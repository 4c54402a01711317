"""The client's gate against the emulator: start window, holds, deadlines, signals."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from sarvam_async import AsyncSarvam, RetryPolicy, errors
from sarvam_async import _constants as C
from sarvam_async.testing import Emulator

from .conftest import KEY


async def _status_calls(client: AsyncSarvam, n: int) -> None:
    async def one() -> None:
        with contextlib.suppress(errors.NotFoundError):
            await client.speech_to_text_job.get_status("j")

    await asyncio.gather(*(one() for _ in range(n)))


async def test_first_burst_is_the_start_window_and_nothing_is_paced(emulator: Emulator) -> None:
    emulator.latency = 0.05
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url) as c:
        await _status_calls(c, 3 * C.RATE_START_WINDOW)
        stats = c.stats
    times = [r.time for r in emulator.calls("status")]
    first = times[0]
    # the window's calls go at once; the next only after answers came back
    assert max(times[: C.RATE_START_WINDOW]) - first < 0.04
    assert times[C.RATE_START_WINDOW] - first >= 0.04
    assert stats.phase == "start" and stats.rate_per_minute is None
    assert stats.window is not None and stats.window > C.RATE_START_WINDOW  # it grew
    assert stats.requests == 3 * C.RATE_START_WINDOW and stats.throttled == 0


async def test_stats_show_the_bound_the_refusals_prove(emulator: Emulator) -> None:
    # reaching a bound takes two refusals 5 s apart; here the controller is set as a cut
    # at a measured bound leaves it, and the client's stats must show it
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url) as c:
        assert c.stats.bound_per_minute is None  # unpaced: no bound
        control = c._limiter.control
        assert control is not None
        control._pace(2.0, control._clock())
        control._floor = 1.9
        assert c.stats.phase == "paced" and c.stats.bound_per_minute == pytest.approx(114.0)
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, adaptive_rate=False) as c:
        assert c.stats.bound_per_minute is None


async def test_a_known_plan_paces_from_the_first_call(emulator: Emulator) -> None:
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, rate_limit=1200) as c:
        assert c.stats.phase == "paced" and c.stats.rate_per_minute == 1200
        await _status_calls(c, 6)
    times = sorted(r.time for r in emulator.calls("status"))
    # 20 per second from the first call: five intervals between six calls (a late timer
    # may bring one call closer to the next, never the average above the plan)
    assert times[-1] - times[0] >= 5 * 0.05 * 0.95
    assert all(c - a >= 0.05 for a, c in zip(times, times[2:], strict=False))


async def test_retry_after_is_waited_exactly_by_the_refused_call(emulator: Emulator) -> None:
    emulator.fail_next("status", count=1, status=429, retry_after_ms=300)
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url) as c:
        await _status_calls(c, 1)
        assert c.stats.retries == 1 and c.stats.throttled == 1
    first, second = (r.time for r in emulator.calls("status"))
    # the hint, not a pace the cut would have set (a second, before); slack for a busy machine
    assert 0.29 <= second - first < 0.6


async def test_a_paced_client_holds_every_call_for_the_hint(emulator: Emulator) -> None:
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, rate_limit=60_000) as c:
        emulator.fail_next("status", count=1, status=429, retry_after_ms=300)
        refused = asyncio.ensure_future(_status_calls(c, 1))
        while c.stats.throttled == 0:
            await asyncio.sleep(0.002)
        seen = emulator.calls("status")[0].time
        assert c.stats.hold_seconds > 0.2
        await _status_calls(c, 5)  # other calls of the same client, after the refusal
        await refused
    later = emulator.calls("status")[1:]
    assert len(later) == 6 and min(r.time for r in later) - seen >= 0.29


async def test_a_queued_call_never_outlives_its_timeout(emulator: Emulator) -> None:
    emulator.latency = 0.5
    once = RetryPolicy(max_attempts=1)
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, max_connections=1) as c:
        busy = asyncio.ensure_future(_status_calls(c, 1))
        await asyncio.sleep(0.05)
        with pytest.raises(errors.APITimeoutError) as info:
            await c.speech_to_text_job.get_status("j", timeout=0.1, retry=once)
        await busy
    assert not info.value.request_sent and "rate limiter" in str(info.value)
    assert len(emulator.calls("status")) == 1  # the queued call never reached the server


async def test_a_wait_past_the_retry_deadline_fails_at_once(emulator: Emulator) -> None:
    policy = RetryPolicy(deadline=5.0)
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, rate_limit=1, retry=policy) as c:
        await _status_calls(c, 1)
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(errors.APITimeoutError) as info:
            await c.speech_to_text_job.get_status("j")
        assert info.value.attempts == 1
        assert loop.time() - start < 2.5  # not the 5 s, let alone the 60 s pace
    assert len(emulator.calls("status")) == 1


async def test_the_retry_deadline_bounds_repeated_hints(emulator: Emulator) -> None:
    emulator.fail_next("status", count=10, status=429, retry_after_ms=400)
    policy = RetryPolicy(deadline=1.0)
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, retry=policy) as c:
        with pytest.raises(errors.TooManyRequestsError) as info:
            await c.speech_to_text_job.get_status("j")
    # attempts at 0, 0.4 and 0.8 s; a fourth at 1.2 s would cross the deadline
    assert info.value.attempts == 3 and len(emulator.calls("status")) == 3


async def test_quota_and_outages_move_no_pace(emulator: Emulator) -> None:
    emulator.fail_next("status", count=4, status=429, code="insufficient_quota_error")
    emulator.fail_next("initiate", count=4, status=503, retry_after=1)
    policy = RetryPolicy(max_attempts=1)
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, retry=policy) as c:
        for _ in range(4):
            with pytest.raises(errors.TooManyRequestsError):
                await c.speech_to_text_job.get_status("j")
            with pytest.raises(errors.ServiceUnavailableError):
                await c.speech_to_text_job.initialise(job_parameters={})
        stats = c.stats
    assert stats.phase == "start" and stats.hold_seconds == 0.0 and stats.throttled == 8


async def test_pacing_off_keeps_only_the_bound_on_calls_in_flight(emulator: Emulator) -> None:
    emulator.fail_next("status", count=1, status=429, retry_after=30)
    policy = RetryPolicy(max_attempts=1)
    async with AsyncSarvam(
        api_key=KEY, base_url=emulator.url, adaptive_rate=False, retry=policy
    ) as c:
        with pytest.raises(errors.TooManyRequestsError):
            await c.speech_to_text_job.get_status("j")
        await _status_calls(c, 20)  # no hold, no pace
        assert c.stats.phase == "off" and c.stats.hold_seconds == 0.0


async def test_closing_fails_queued_calls(emulator: Emulator) -> None:
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, rate_limit=1) as c:
        await _status_calls(c, 1)
        queued = asyncio.ensure_future(c.speech_to_text_job.get_status("j"))
        await asyncio.sleep(0.05)
        assert c.stats.queued == 1
    with pytest.raises(errors.ClientClosedError):
        await queued


async def test_finishing_calls_go_ahead_of_new_work_when_paced(emulator: Emulator) -> None:
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, rate_limit=600) as c:
        starts = [
            asyncio.ensure_future(c.speech_to_text_job.initialise(job_parameters={}))
            for _ in range(4)
        ]
        await asyncio.sleep(0)  # the four are queued behind the pace, in order
        await _status_calls(c, 1)
        await asyncio.gather(*starts)
    routes = [r.route for r in emulator.requests]
    # the first initiate took the free slot; the status call, queued last, went next
    assert routes[:2] == ["initiate", "status"] and routes.count("initiate") == 4


async def test_a_paced_fan_out_starts_its_first_job_before_initiating_the_last(
    emulator: Emulator, tmp_path: Path
) -> None:
    paths = []
    for i in range(160):
        p = tmp_path / f"clip{i}.wav"
        p.write_bytes(b"RIFF" + bytes(40))
        paths.append(p)
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, rate_limit=1200) as c:
        run = c.transcribe_files(paths, output_dir=tmp_path / "out", poll_interval=0.01)
        assert all([o.ok async for o in run])
    routes = [r.route for r in emulator.requests if not r.route.startswith("storage")]
    # eight jobs in flight, paced: upload links and start of the first job go ahead of the
    # initiates still queued, so its processing begins while the others are being created
    # (the seven initiates after its own take 0.35 s of slots: time for its 20 uploads on a
    # loaded machine)
    assert routes.count("initiate") == 8
    last_initiate = len(routes) - 1 - routes[::-1].index("initiate")
    assert routes.index("start") < last_initiate
