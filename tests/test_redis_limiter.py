"""The shared account limiter against a real redis-server and the emulator, both on loopback.

Two clients with their own ``RedisRateLimiter`` stand for two processes: they share nothing
but the Redis server. Time bounds here are lower bounds set by pacing (a broken limiter goes
faster), or the limiter's own Redis timeout as an upper bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from sarvam_async import (
    AsyncSarvam,
    RedisRateLimiter,
    RetryPolicy,
    SpeechToTextJobParameters,
)
from sarvam_async._redis_limiter import account_key
from sarvam_async.errors import APITimeoutError, TooManyRequestsError
from sarvam_async.testing import Emulator

from .conftest import KEY
from .redis_server import RedisServer
from .test_event_loops import emulator_thread

PARAMS = SpeechToTextJobParameters(language_code="hi-IN")


@pytest.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A plain Redis client for looking at what the limiter stored."""
    r = Redis.from_url(redis_server.url)
    try:
        yield r
    finally:
        await r.aclose()


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_key=KEY) as e:
        yield e


async def _job(client: AsyncSarvam) -> str:
    return (await client.speech_to_text_job.initialise(job_parameters=PARAMS)).job_id


async def _rates_until_the_first_cut(client: AsyncSarvam) -> list[float]:
    """The learned rates one client saw, 16 callers polling, until one came lower (or 15 s)."""
    job = await _job(client)
    rates: list[float] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + 15.0

    async def poll() -> None:
        while loop.time() < end and not (len(rates) > 1 and rates[-1] < rates[-2]):
            await client.speech_to_text_job.get_status(job)
            rate = client.stats.rate_per_minute
            if rate is not None and (not rates or rate != rates[-1]):
                rates.append(rate)

    await asyncio.gather(*(poll() for _ in range(16)))
    return rates


async def test_two_clients_share_one_budget(
    redis_server: RedisServer, emu: Emulator, store: Redis
) -> None:
    plan = 3000.0  # requests a minute for the account: one call per 20 ms
    async with (
        RedisRateLimiter(redis_server.url, rate_limit=plan) as one,
        RedisRateLimiter(redis_server.url, rate_limit=plan) as two,
        AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=one) as a,
        AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=two) as b,
    ):
        job = await _job(a)
        calls = [c.speech_to_text_job.get_status(job) for c in (a, b) for _ in range(10)]
        await asyncio.gather(*calls)
        assert a.stats.phase == b.stats.phase == "shared"
        assert a.stats.rate_per_minute == pytest.approx(plan * 0.98)
    times = sorted(c.time for c in emu.calls("status"))
    assert len(times) == 20
    # 20 calls of one budget need 19 intervals; each client alone would allow twice the pace
    assert times[-1] - times[0] >= 19 * 60.0 / (plan * 0.98) * 0.9
    keys = [k async for k in store.scan_iter()]
    assert keys == [account_key(KEY).encode()]


async def test_a_retry_after_seen_by_one_client_holds_the_other(
    redis_server: RedisServer, emu: Emulator, store: Redis
) -> None:
    async with (
        RedisRateLimiter(redis_server.url, rate_limit=6000) as one,
        RedisRateLimiter(redis_server.url, rate_limit=6000) as two,
        AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=one) as a,
        AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=two) as b,
    ):
        job = await _job(a)
        emu.fail_next("status", status=429, retry_after_ms=400)
        with pytest.raises(TooManyRequestsError):
            await a.speech_to_text_job.get_status(job, retry=RetryPolicy.disabled())
        for _ in range(200):  # the refusal reaches Redis in the background
            if await store.hget(account_key(KEY), "hold"):
                break
            await asyncio.sleep(0.01)
        assert await store.hget(account_key(KEY), "hold")
        await b.speech_to_text_job.get_status(job)
        assert b.stats.hold_seconds == 0.0
    refused, held = emu.calls("status")
    assert refused.status == 429 and held.status == 200
    assert held.time - refused.time >= 0.4 * 0.9  # b, which was never refused, waited too


async def test_one_learned_rate_for_every_client_settles_under_the_account_limit(
    redis_server: RedisServer, store: Redis
) -> None:
    plan = 900.0  # requests/min: 15/s, bucket of one second's worth
    key = account_key(KEY)
    async with (
        Emulator(api_key=KEY, rate_limit=plan) as emu,
        RedisRateLimiter(redis_server.url) as one,
        RedisRateLimiter(redis_server.url) as two,
        AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=one) as a,
        AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=two) as b,
    ):
        job = await _job(a)
        loop = asyncio.get_running_loop()
        end = loop.time() + 20.0  # (a failing start must not hang the suite)

        async def poll(client: AsyncSarvam) -> None:
            while loop.time() < end:
                await client.speech_to_text_job.get_status(job)

        async def watch() -> None:
            nonlocal end
            # the start doubles to the limit (about 8 s); then three seconds of the rate cut
            while not await store.hget(key, "ceil") and loop.time() < end:
                await asyncio.sleep(0.1)
            end = min(end, loop.time() + 3.0)

        await asyncio.gather(watch(), *(poll(c) for c in (a, b) for _ in range(8)))
        assert a.stats.phase == b.stats.phase == "shared"
        shared_rate = a.stats.rate_per_minute
    state = await store.hgetall(key)
    # one rate for both, learned from the account's refusals: about the plan (up to a few
    # probes over it: the bucket's second of credit refuses them only after a while)
    assert shared_rate is not None and float(state[b"rate"]) * 60 == pytest.approx(shared_rate)
    assert 0.8 * plan <= shared_rate <= 1.1 * plan
    assert 0.8 * plan <= float(state[b"ceil"]) * 60 <= 1.1 * plan
    # the start's overshoot and a probe or two: a few dozen refusals, not a share of the run
    stats = emu.stats
    assert 0 < stats.rate_limited <= 0.1 * stats.api_requests


async def test_the_first_cut_never_lands_above_the_last_calm_pace(
    redis_server: RedisServer,
) -> None:
    # The start runs calm at 960/min on a 900/min plan (its bucket holds a second's credit)
    # and 1,920/min draws the first refusals, with holds of a few milliseconds: over those
    # two rounds the account "accepted" about 1,300/min, and the cut went to 97 % of that,
    # 1,250/min. It lands at most at half the refused pace, the last that drew no refusal;
    # the next refusals take it the rest of the way.
    plan = 900.0
    async with (
        Emulator(api_key=KEY, rate_limit=plan, retry_after_ms=True) as emu,
        RedisRateLimiter(redis_server.url) as limiter,
        AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=limiter) as client,
    ):
        rates = await _rates_until_the_first_cut(client)
    cut = next((i for i in range(1, len(rates)) if rates[i] < rates[i - 1]), None)
    assert cut is not None and emu.stats.rate_limited > 0, rates
    assert rates[cut] <= rates[cut - 1] / 2 * 1.001, rates


async def test_the_start_lands_at_the_plan_it_overshot(redis_server: RedisServer) -> None:
    plan = 1200.0  # requests/min: the start doubles from 120/min past it
    async with (
        Emulator(api_key=KEY, rate_limit=plan) as emu,
        RedisRateLimiter(redis_server.url) as limiter,
        AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=limiter) as client,
    ):
        rates = await _rates_until_the_first_cut(client)
    cut = next((i for i in range(1, len(rates)) if rates[i] < rates[i - 1]), None)
    assert cut is not None, rates  # the start met the limit and cut
    assert rates[cut - 1] > plan
    # measured over the last calm round and the refused one, the bucket's credit and the
    # hold spread over both: about the plan (the refused round alone, hold and all, read
    # about half of it)
    assert 0.7 * plan <= rates[cut] <= 1.1 * plan


async def test_the_start_grows_only_on_rounds_that_used_its_pace(
    redis_server: RedisServer, emu: Emulator
) -> None:
    # Two calls arrive together every 1.5 s: 80/min against the start's 120/min. The second
    # waits half a second for its slot on any pace, but a third of the pace goes unused: the
    # rate stays. Growing on the wait alone doubled it every round (240/min by now).
    async with (
        RedisRateLimiter(redis_server.url) as limiter,
        AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=limiter) as client,
    ):
        job = await _job(client)
        await asyncio.sleep(1.5)
        for _ in range(2):
            await asyncio.gather(*(client.speech_to_text_job.get_status(job) for _ in range(2)))
            await asyncio.sleep(1.5)
        assert client.stats.rate_per_minute == pytest.approx(120.0)


async def test_the_starts_refused_round_ends_after_a_second(redis_server: RedisServer) -> None:
    # The start doubles past a 120/min plan (the bucket's credit hides it for a round). The
    # round that meets the refusals ends at its first second, as soon as a call is granted
    # after the hold: its refusals were drawn by the doubling, and more calls at that pace
    # would only draw more. Holding it open for ten calls drew twice as many.
    async with (
        Emulator(api_key=KEY, rate_limit=120.0) as emu,
        RedisRateLimiter(redis_server.url) as limiter,
        AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=limiter) as client,
    ):
        job = await _job(client)
        rates: list[float] = []

        async def poll() -> None:
            while True:
                await client.speech_to_text_job.get_status(job)
                rate = client.stats.rate_per_minute
                if rate is not None and (not rates or rate != rates[-1]):
                    rates.append(rate)

        pollers = [asyncio.ensure_future(poll()) for _ in range(16)]
        await asyncio.sleep(5.5)
        for task in pollers:
            task.cancel()
        await asyncio.gather(*pollers, return_exceptions=True)
    assert any(b < a for a, b in itertools.pairwise(rates)), rates  # the start cut
    assert emu.stats.rate_limited <= 2, rates


async def test_calls_cancelled_together_all_end(redis_server: RedisServer, emu: Emulator) -> None:
    # Calls queued for their turns, cancelled at once (a TaskGroup failing, a timeout around
    # a gather, Ctrl-C): one hands its turn to the next as both are cancelled. Waiting for
    # the turn with asyncio.wait_for lost that cancellation before Python 3.12, and the call
    # went on, its loop forever.
    async with (
        RedisRateLimiter(redis_server.url) as limiter,
        AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=limiter) as client,
    ):
        job = await _job(client)

        async def poll() -> None:
            while True:
                await client.speech_to_text_job.get_status(job)

        pollers = [asyncio.ensure_future(poll()) for _ in range(16)]
        await asyncio.sleep(3.0)
        for task in pollers:
            task.cancel()
        _, pending = await asyncio.wait(pollers, timeout=2.0)
        for task in pending:  # (a failing run must not hang the suite)
            task.cancel()
        assert not pending


async def test_a_later_run_starts_at_the_rate_learned_before_it(
    redis_server: RedisServer, store: Redis
) -> None:
    plan = 900.0  # requests/min: 15/s
    key = account_key(KEY)
    seconds, micros = await store.time()
    yesterday = seconds + micros / 1e6 - 86_000.0
    # what a run a day ago left: a rate over the plan (it changed since), its round unfinished
    await store.hset(
        key,
        mapping={
            "rate": 1.5 * plan / 60,
            "ceil": 1.5 * plan / 60,
            "tat": yesterday,
            "rs": yesterday,
            "rn": 40,
            "rx": 0,
            "rw": 1,
            "settle": 0,
            "cn": 400,
            "ct": 30,
        },
    )
    limiter = RedisRateLimiter(redis_server.url)
    async with (
        Emulator(api_key=KEY, rate_limit=plan) as emu,
        limiter,
        AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=limiter) as client,
    ):
        job = await _job(client)
        first = client.stats.rate_per_minute
        loop = asyncio.get_running_loop()
        end = loop.time() + 4.0

        async def poll() -> None:
            while loop.time() < end:
                await client.speech_to_text_job.get_status(job)

        await asyncio.gather(*(poll() for _ in range(8)))
        last = client.stats.rate_per_minute
    # it starts where yesterday's run ended, not at the cold start's 120/min ...
    assert first == pytest.approx(1.5 * plan)
    # ... and yesterday's idle hours are no round: the cut lands near the plan, not at a
    # quarter of the rate as if the account had accepted 40 calls in a day
    assert last is not None and 0.8 * plan <= last <= 1.1 * plan
    assert emu.stats.rate_limited <= 0.1 * emu.stats.api_requests
    assert await store.pttl(key) > 3_600_000  # kept for a later run


async def test_fallback_when_redis_dies_and_rejoin_after(
    redis_server: RedisServer, emu: Emulator, store: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sarvam_async")
    limiter = RedisRateLimiter(redis_server.url, rate_limit=6000, timeout=0.5, rejoin_interval=0.05)
    async with limiter, AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=limiter) as c:
        job = await _job(c)
        await asyncio.gather(*(c.speech_to_text_job.get_status(job) for _ in range(5)))
        assert c.stats.phase == "shared"

        redis_server.kill()
        for _ in range(3):  # every call succeeds; the process paces itself, at the plan
            await asyncio.gather(*(c.speech_to_text_job.get_status(job) for _ in range(5)))
            assert c.stats.phase == "paced" and c.stats.rate_per_minute == 6000
            await asyncio.sleep(0.06)  # past the rejoin interval: each round tries Redis
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "Redis failed (ConnectionError)" in warnings[0].message

        redis_server.start()  # empty, on the same port
        await asyncio.sleep(0.06)
        await asyncio.gather(*(c.speech_to_text_job.get_status(job) for _ in range(5)))
        assert c.stats.phase == "shared"
        assert any("answers again" in r.message for r in caplog.records)
        assert await store.exists(account_key(KEY))
    assert all(call.status == 200 for call in emu.calls("status"))
    assert len(emu.calls("status")) == 25


async def test_a_frozen_redis_costs_at_most_its_timeout(
    redis_server: RedisServer, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RedisRateLimiter(redis_server.url, rate_limit=6000, timeout=0.3)
    async with limiter, AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=limiter) as c:
        job = await _job(c)
        redis_server.pause()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*(c.speech_to_text_job.get_status(job) for _ in range(20)))
        # one Redis timeout (0.3 s), not one per call (6 s)
        assert loop.time() - started < 3.0
        assert c.stats.phase == "paced"
        # the limiter would wait 30 s; the call's deadline (its attempt's 2 s) comes first,
        # and a wait that long means Redis is down: the retry goes, paced locally
        slow = RedisRateLimiter(redis_server.url, rate_limit=6000, timeout=30.0)
        async with slow, AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=slow) as d:
            started = loop.time()
            await d.speech_to_text_job.get_status(job, timeout=2.0)
            assert loop.time() - started < 6.0
            assert d.stats.phase == "paced"
        redis_server.resume()
    assert "Redis failed (TimeoutError)" in caplog.text


async def test_a_call_short_of_time_leaves_its_process_on_the_shared_budget(
    redis_server: RedisServer, emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RedisRateLimiter(redis_server.url, rate_limit=6000)  # waits 0.25 s for Redis
    async with limiter, AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=limiter) as c:
        job = await _job(c)
        redis_server.pause()  # slower than the call can afford, not down
        try:
            with pytest.raises(APITimeoutError) as info:
                await c.speech_to_text_job.get_status(job, retry=RetryPolicy(deadline=0.05))
        finally:
            redis_server.resume()
        assert info.value.request_sent is False
        assert c.stats.phase == "shared" and limiter.joined
        await c.speech_to_text_job.get_status(job)
        assert c.stats.phase == "shared"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(emu.calls("status")) == 1


async def test_a_slot_due_past_the_deadline_once_redis_answers_is_given_up(
    redis_server: RedisServer, emu: Emulator
) -> None:
    class SlowAnswers(Redis):  # answers that take 0.3 s on their way back
        async def evalsha(self, *args: Any, **kwargs: Any) -> Any:
            answer = await super().evalsha(*args, **kwargs)
            await asyncio.sleep(0.3)
            return answer

    redis = SlowAnswers.from_url(redis_server.url)
    limiter = RedisRateLimiter(redis, rate_limit=60, timeout=1.0)
    try:
        async with limiter, AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=limiter) as c:
            job = await _job(c)  # takes the slot; the next is a second away
            # Redis grants it within the 1.2 s it is told of; the answer comes 0.3 s later,
            # when the slot falls due 0.1 s past the deadline
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(APITimeoutError) as info:
                await c.speech_to_text_job.get_status(job, retry=RetryPolicy(deadline=1.2))
            assert loop.time() - started < 1.0  # given up as soon as the answer came
            assert info.value.request_sent is False
    finally:
        await redis.aclose()
    assert emu.calls("status") == []


async def test_a_call_is_never_queued_past_its_deadline(
    redis_server: RedisServer, emu: Emulator
) -> None:
    limiter = RedisRateLimiter(redis_server.url, rate_limit=1)  # one call a minute
    async with limiter, AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=limiter) as c:
        job = await _job(c)
        policy = RetryPolicy(deadline=0.2)
        with pytest.raises(APITimeoutError) as info:
            await c.speech_to_text_job.get_status(job, retry=policy)
        assert info.value.request_sent is False
        assert c.stats.in_flight == 0 and c.stats.phase == "shared"
    assert emu.calls("status") == []


def test_a_limiter_built_from_a_url_leaves_no_connection_behind_asyncio_run(
    redis_server: RedisServer,
) -> None:
    limiter = RedisRateLimiter(redis_server.url, rate_limit=6000)  # never closed by the caller

    async def one_run() -> str:
        async with AsyncSarvam(api_key=KEY, base_url=server.url, rate_limiter=limiter) as c:
            await c.speech_to_text_job.get_status(await _job(c))
            return c.stats.phase

    async def connected() -> int:  # clients of the server other than this one
        async with Redis.from_url(redis_server.url) as r:
            return len(await r.client_list()) - 1

    with emulator_thread() as (server, _), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):  # each run's loop ends with the limiter's connection to Redis open
            assert asyncio.run(one_run()) == "shared"
        gc.collect()
        assert asyncio.run(connected()) == 0
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


async def test_keys_expire(redis_server: RedisServer, emu: Emulator, store: Redis) -> None:
    limiter = RedisRateLimiter(redis_server.url, rate_limit=6000, key_ttl=0.3)
    async with limiter, AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=limiter) as c:
        await _job(c)
        key = account_key(KEY)
        ttl = await store.pttl(key)
        assert 0 < ttl <= 400
        for _ in range(300):
            if not await store.exists(key):
                break
            await asyncio.sleep(0.01)
        assert [k async for k in store.scan_iter()] == []


async def _monitor(port: int, seen: list[bytes]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"MONITOR\r\n")
    try:
        while line := await reader.readline():
            seen.append(line)
    finally:
        writer.close()


async def test_the_api_key_never_reaches_redis(
    redis_server: RedisServer, emu: Emulator, store: Redis, tmp_path: Path
) -> None:
    seen: list[bytes] = []
    watcher = asyncio.create_task(_monitor(redis_server.port, seen))
    for _ in range(100):
        if seen:
            break
        await asyncio.sleep(0.01)
    async with (
        RedisRateLimiter(redis_server.url) as one,
        RedisRateLimiter(redis_server.url) as two,
        AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=one) as a,
        AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=two) as b,
    ):
        job = await _job(a)
        emu.fail_next("status", count=2, status=429, retry_after_ms=50)  # the refusal path too
        await asyncio.gather(*(c.speech_to_text_job.get_status(job) for c in (a, b)))
        audio = tmp_path / "a.wav"
        audio.write_bytes(b"RIFF" + bytes(100))
        async for outcome in a.transcribe_files([audio], output_dir=tmp_path, poll_interval=0.05):
            assert outcome.ok
        dumped = [
            (k, await store.hgetall(k)) async for k in store.scan_iter()
        ]  # every key and value
    await asyncio.sleep(0.05)
    watcher.cancel()
    traffic = b"".join(seen)
    assert b"evalsha" in traffic.lower() and account_key(KEY).encode() in traffic
    secret = KEY.encode()
    assert secret not in traffic and secret[-10:] not in traffic
    assert dumped and all(secret not in repr(item).encode() for item in dumped)
    assert KEY not in repr(one)


async def test_work_already_begun_goes_first_under_the_shared_budget(
    redis_server: RedisServer, emu: Emulator
) -> None:
    async with (
        RedisRateLimiter(redis_server.url, rate_limit=600) as limiter,
        AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limiter=limiter) as c,
    ):
        job = await _job(c)
        news = [asyncio.ensure_future(_job(c)) for _ in range(4)]
        await asyncio.sleep(0.02)  # the four initiates queue for their turns, in order
        await c.speech_to_text_job.get_status(job)
        await asyncio.gather(*news)
    routes = [r.route for r in emu.requests]
    # the first initiate had its turn; the status call, asked for last, went next
    assert routes[:3] == ["initiate", "initiate", "status"] and routes.count("initiate") == 5


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's parent-death signal")
def test_a_test_run_killed_from_outside_leaves_no_redis_server(tmp_path: Path) -> None:
    RedisServer(tmp_path)  # skips (or fails, in CI) without redis-server, as the fixture does
    root = Path(__file__).resolve().parent.parent
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from tests.redis_server import RedisServer\n"
        "server = RedisServer(Path(sys.argv[1]))\n"
        "server.start()\n"
        "print(server.port, server.proc.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    run = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], cwd=root, stdout=subprocess.PIPE
    )
    pid = None
    try:
        assert run.stdout is not None
        port, pid = (int(x) for x in run.stdout.readline().split())
        run.kill()  # as a CI timeout would: no fixture cleanup runs
        run.wait()
        deadline = time.monotonic() + 5.0
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            except OSError:
                pid = None  # the server died with the run: its pid is not ours to signal
                return
            assert time.monotonic() < deadline, "redis-server outlived the run that started it"
            time.sleep(0.02)
    finally:
        run.kill()
        run.wait()
        if run.stdout is not None:
            run.stdout.close()
        if pid is not None:  # it outlived the run (or the run failed): not past this test
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
