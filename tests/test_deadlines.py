"""Deadlines: a wait ends at its timeout, not one call's retry budget later; a call with a
retry deadline returns by that deadline even when each attempt's timeout is longer."""

from __future__ import annotations

import time

import pytest

from sarvam_async import AsyncSarvam, RetryPolicy, errors
from sarvam_async.testing import Emulator

from .conftest import KEY, FakeTime
from .hostile import silent_server


async def test_a_wait_passes_its_remaining_time_to_each_status_call(
    client: AsyncSarvam, emulator: Emulator, fake_time: FakeTime
) -> None:
    job = await client.speech_to_text_job.create_job()
    emulator.fail_next("status", count=1000)  # 503 for every poll: each call would retry
    started = fake_time.now
    with pytest.raises(errors.JobTimeoutError):
        await job.wait_until_complete(poll_interval=1.0, timeout=3.0)
    assert fake_time.now - started <= 3.0, fake_time.sleeps


async def test_a_wait_clips_each_call_timeout(emulator: Emulator, fake_time: FakeTime) -> None:
    # a real server that never answers: only the clipped per-call timeout ends the poll
    policy = RetryPolicy(max_attempts=1, sleep=fake_time.sleep, clock=time.monotonic)
    async with silent_server() as url:
        c = AsyncSarvam(api_key=KEY, base_url=url, retry=policy, adaptive_rate=False, timeout=60)
        async with c:
            job = await c.speech_to_text_job.get_job("j")
            began = time.monotonic()
            with pytest.raises(errors.JobTimeoutError):
                await job.wait_until_complete(poll_interval=0.05, timeout=0.3)
            assert time.monotonic() - began < 5.0  # not the 60 s per-attempt timeout


async def test_a_retry_deadline_clips_the_attempt_timeout() -> None:
    # attempt 1 times out at 0.5 s; attempt 2 has 0.25 s left, not a fresh 0.5 s
    policy = RetryPolicy(deadline=0.75, jitter=lambda: 0.0)
    async with silent_server() as url:
        c = AsyncSarvam(api_key=KEY, base_url=url, retry=policy, adaptive_rate=False, timeout=0.5)
        async with c:
            began = time.monotonic()
            with pytest.raises(errors.APITimeoutError):
                await c.speech_to_text_job.get_status("j")
            assert time.monotonic() - began < 0.9


class _LateTurns:
    """A shared limiter whose turns end just past the time they were given (a late timer)."""

    joined = True
    pace_per_minute = None
    hold_seconds = 0.0

    def __init__(self, time: FakeTime) -> None:
        self.time = time

    def attach(self, api_key: str) -> None:
        pass

    async def turn(self, timeout: float, ahead: bool = False) -> None:
        self.time.now += timeout + 0.01

    def on_answer(self, signal: object, retry_after: float | None) -> None:
        pass


async def test_a_call_let_go_past_its_deadline_is_not_sent(
    emulator: Emulator, fake_time: FakeTime
) -> None:
    policy = RetryPolicy(deadline=1.0, sleep=fake_time.sleep, clock=fake_time.clock)
    late = _LateTurns(fake_time)
    url = emulator.url
    async with AsyncSarvam(api_key=KEY, base_url=url, retry=policy, rate_limiter=late) as c:
        with pytest.raises(errors.APITimeoutError) as info:
            await c.speech_to_text_job.get_status("job-1")
    # nothing went: a start or an initiate may be sent again
    assert info.value.request_sent is False
    assert emulator.calls("status") == []
