"""Shared fixtures: the project's emulator on loopback and clients bound to it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sarvam_async import AsyncSarvam, RetryPolicy
from sarvam_async.testing import Emulator

from .redis_server import RedisServer

KEY = "test-key-0123456789-secret"


class FakeTime:
    """A clock that only moves when the code under test sleeps: no wall-clock waiting."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay
        await asyncio.sleep(0)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def policy(fake_time: FakeTime) -> RetryPolicy:
    """The default policy, on fake time, with jitter fixed at the middle of its range."""
    return RetryPolicy(sleep=fake_time.sleep, clock=fake_time.clock, jitter=lambda: 0.5)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator(api_key=KEY) as emu:
        yield emu


@pytest.fixture
async def client(emulator: Emulator, policy: RetryPolicy) -> AsyncIterator[AsyncSarvam]:
    """A client on fake time with pacing off (limiter tests build their own)."""
    async with AsyncSarvam(
        api_key=KEY, base_url=emulator.url, retry=policy, adaptive_rate=False
    ) as c:
        yield c


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A throwaway redis-server on a free loopback port, killed after the test."""
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None:
            server.resume()  # a frozen server does not die of SIGKILL until it runs
        server.kill()
