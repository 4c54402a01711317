"""The retry policy: counted on the server, delays on a fake clock, bounds and exceptions."""

from __future__ import annotations

import email.utils
import logging
import time

import pytest

from sarvam_async import AsyncSarvam, RetryPolicy, errors
from sarvam_async._retry import parse_retry_after
from sarvam_async.testing import Emulator

from .conftest import KEY, FakeTime


async def test_503_then_success_is_retried(
    client: AsyncSarvam, emulator: Emulator, fake_time: FakeTime
) -> None:
    emulator.fail_next("download-files", count=2, status=503)
    with pytest.raises(errors.NotFoundError) as info:  # after the faults, the real 404
        await client.speech_to_text_job.get_download_links(job_id="nope", files=["0.json"])
    assert len(emulator.calls("download-files")) == 3
    assert info.value.attempts == 3
    # full jitter at 0.5 of [0, 0.5 * 2**(n-1)]
    assert fake_time.sleeps == [0.25, 0.5]
    assert client.stats.retries == 2


async def test_retry_after_seconds_is_honoured_exactly(
    client: AsyncSarvam, emulator: Emulator, fake_time: FakeTime
) -> None:
    emulator.fail_next("status", status=429, retry_after=7)
    emulator.fail_next("status", status=503, retry_after="2.5")
    with pytest.raises(errors.NotFoundError):
        await client.speech_to_text_job.get_status("nope")
    assert fake_time.sleeps == [7.0, 2.5]
    assert len(emulator.calls("status")) == 3


async def test_retry_after_ms_wins_and_http_date_works(
    client: AsyncSarvam, emulator: Emulator, fake_time: FakeTime
) -> None:
    emulator.fail_next("status", status=429, retry_after=30, retry_after_ms=120)
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    emulator.fail_next("status", status=429, retry_after=when)
    with pytest.raises(errors.NotFoundError):
        await client.speech_to_text_job.get_status("nope")
    assert fake_time.sleeps[0] == pytest.approx(0.12)
    assert 17 < fake_time.sleeps[1] <= 20


def test_parse_retry_after_edge_cases() -> None:
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "junk"}) is None
    assert parse_retry_after({"retry-after": "-3"}) is None
    assert parse_retry_after({"retry-after-ms": "x", "retry-after": "2"}) == 2.0
    past = email.utils.formatdate(time.time() - 100, usegmt=True)
    assert parse_retry_after({"retry-after": past}) == 0.0


async def test_retry_after_above_cap_surfaces_at_once(
    client: AsyncSarvam, emulator: Emulator, fake_time: FakeTime
) -> None:
    emulator.fail_next("status", status=429, retry_after=3600)
    with pytest.raises(errors.TooManyRequestsError) as info:
        await client.speech_to_text_job.get_status("j")
    assert info.value.retry_after == 3600
    assert fake_time.sleeps == []
    assert len(emulator.calls("status")) == 1
    assert "3600" in str(info.value)


async def test_quota_exhausted_is_not_retried(
    client: AsyncSarvam, emulator: Emulator, fake_time: FakeTime
) -> None:
    emulator.fail_next("status", status=429, code="insufficient_quota_error", retry_after=1)
    with pytest.raises(errors.TooManyRequestsError) as info:
        await client.speech_to_text_job.get_status("j")
    assert info.value.quota_exhausted
    assert "credits" in str(info.value)
    assert len(emulator.calls("status")) == 1
    assert fake_time.sleeps == []


@pytest.mark.parametrize("status", [400, 403, 404, 422, 500])
async def test_non_retryable_statuses(
    client: AsyncSarvam, emulator: Emulator, fake_time: FakeTime, status: int
) -> None:
    emulator.fail_next("status", status=status)
    with pytest.raises(errors.APIStatusError) as info:
        await client.speech_to_text_job.get_status("j")
    assert info.value.status_code == status
    assert len(emulator.calls("status")) == 1


async def test_attempts_are_bounded(
    client: AsyncSarvam, emulator: Emulator, fake_time: FakeTime
) -> None:
    emulator.fail_next("status", count=20, status=503)
    with pytest.raises(errors.ServiceUnavailableError) as info:
        await client.speech_to_text_job.get_status("j")
    assert info.value.attempts == client.retry.max_attempts == 8
    assert len(emulator.calls("status")) == 8
    # backoff doubles up to the cap: 0.5 * [0.5, 1, 2, 4, 8, 16, 30]
    assert fake_time.sleeps == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0]


async def test_deadline_is_never_overshot(emulator: Emulator, fake_time: FakeTime) -> None:
    policy = RetryPolicy(
        max_attempts=50,
        deadline=10.0,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        jitter=lambda: 1.0,
    )
    emulator.fail_next("status", count=50, status=503)
    async with AsyncSarvam(
        api_key=KEY, base_url=emulator.url, retry=policy, adaptive_rate=False
    ) as c:
        start = fake_time.now
        with pytest.raises(errors.ServiceUnavailableError) as info:
            await c.speech_to_text_job.get_status("j")
    # 0.5 + 1 + 2 + 4 = 7.5; the next 8 s would cross 10 s, so it stops
    assert fake_time.sleeps == [0.5, 1.0, 2.0, 4.0]
    assert fake_time.now - start <= 10.0
    assert info.value.attempts == 5


async def test_connection_drop_retried_for_idempotent_calls(
    client: AsyncSarvam, emulator: Emulator
) -> None:
    # download-files is a POST, so aiohttp itself never re-sends it: the retry is ours
    emulator.fail_next("download-files", drop=True)
    with pytest.raises(errors.NotFoundError):
        await client.speech_to_text_job.get_download_links(job_id="j", files=["0.json"])
    assert len(emulator.calls("download-files")) == 2
    assert client.stats.retries == 1


async def test_initiate_not_retried_after_drop_but_retried_on_429(
    client: AsyncSarvam, emulator: Emulator
) -> None:
    emulator.fail_next("initiate", drop=True)
    with pytest.raises(errors.APIConnectionError) as info:
        await client.speech_to_text_job.initialise(job_parameters={})
    assert info.value.request_sent
    assert len(emulator.calls("initiate")) == 1
    emulator.fail_next("initiate", count=2, status=429, retry_after_ms=10)
    init = await client.speech_to_text_job.initialise(job_parameters={})
    assert init.job_id
    assert len(emulator.calls("initiate")) == 4


async def test_initiate_not_retried_after_read_timeout(
    client: AsyncSarvam, emulator: Emulator
) -> None:
    emulator.fail_next("initiate", delay=1.0)
    with pytest.raises(errors.APITimeoutError):
        await client.speech_to_text_job.initialise(job_parameters={}, timeout=0.2)
    assert len(emulator.calls("initiate")) == 1


async def test_retry_statuses_are_configurable(emulator: Emulator, fake_time: FakeTime) -> None:
    policy = RetryPolicy(
        retry_statuses=frozenset({500}), sleep=fake_time.sleep, clock=fake_time.clock
    )
    async with AsyncSarvam(
        api_key=KEY, base_url=emulator.url, retry=policy, adaptive_rate=False
    ) as c:
        emulator.fail_next("status", status=500)
        with pytest.raises(errors.NotFoundError):
            await c.speech_to_text_job.get_status("j")
        emulator.fail_next("status", status=503)
        with pytest.raises(errors.ServiceUnavailableError):
            await c.speech_to_text_job.get_status("j")
    assert len(emulator.calls("status")) == 3


async def test_disabled_policy_makes_one_attempt(client: AsyncSarvam, emulator: Emulator) -> None:
    emulator.fail_next("status", status=503)
    with pytest.raises(errors.ServiceUnavailableError):
        await client.speech_to_text_job.get_status("j", retry=RetryPolicy.disabled())
    assert len(emulator.calls("status")) == 1
    assert RetryPolicy.disabled().max_attempts == 1


async def test_each_retry_logs_one_info_line(
    client: AsyncSarvam, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sarvam_async")
    emulator.fail_next("status", count=2, status=429, retry_after=1)
    with pytest.raises(errors.NotFoundError):
        await client.speech_to_text_job.get_status("j")
    lines = [r.getMessage() for r in caplog.records if r.name == "sarvam_async"]
    assert len(lines) == 2
    assert "GET /speech-to-text/job/v1/{job_id}/status" in lines[0]
    assert "429" in lines[0] and "attempt 1/8" in lines[0] and "request_id=" in lines[0]


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(errors.ConfigurationError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(errors.ConfigurationError):
        RetryPolicy(initial_delay=-1)
