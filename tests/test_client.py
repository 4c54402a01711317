"""Client options and lifecycle: env fallbacks, lazy session, closing, no leaks."""

from __future__ import annotations

import asyncio
import math

import aiohttp
import pytest

import sarvam_async
from sarvam_async import AsyncSarvam, errors
from sarvam_async.testing import Emulator

from .conftest import KEY


def test_built_outside_a_loop_and_env_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SARVAM_API_KEY", KEY)
    monkeypatch.setenv("SARVAM_BASE_URL", "http://127.0.0.1:1/")
    client = AsyncSarvam()  # no running loop needed: the session is created lazily
    assert client.base_url == "http://127.0.0.1:1"
    assert KEY not in repr(client)
    monkeypatch.delenv("SARVAM_BASE_URL")
    assert AsyncSarvam().base_url == "https://api.sarvam.ai"


class _SharedWithPlan:
    """Enough of a shared limiter for the client's checks: a plan, of any type."""

    def __init__(self, rate_limit: object) -> None:
        self.rate_limit = rate_limit

    def attach(self, api_key: str) -> None:
        pass


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_url": "ftp://x"},
        {"base_url": "api.sarvam.ai"},
        {"timeout": 0},
        {"max_connections": 0},
        {"rate_limit": -5},
        {"rate_limit": math.nan},
        {"rate_limit": math.inf},
        {"rate_limit": True},
        {"rate_limiter": _SharedWithPlan(0)},  # the plan the client falls back to
        {"rate_limiter": _SharedWithPlan("600")},
    ],
)
def test_bad_options_are_configuration_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(errors.ConfigurationError):
        AsyncSarvam(api_key=KEY, **kwargs)  # type: ignore[arg-type]


async def test_closed_client_raises_clear_error(emulator: Emulator) -> None:
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url) as c:
        pass
    assert c.closed
    with pytest.raises(errors.ClientClosedError) as info:
        await c.speech_to_text_job.get_status("j")
    assert "closed" in str(info.value)
    await c.aclose()  # idempotent


async def test_user_session_is_used_and_not_closed(emulator: Emulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with AsyncSarvam(api_key=KEY, base_url=emulator.url, session=session) as c:
            with pytest.raises(errors.NotFoundError):
                await c.speech_to_text_job.get_status("j")
        assert not session.closed
        assert emulator.calls("status")[0].headers["api-subscription-key"] == KEY


async def test_custom_headers_cannot_override_key(emulator: Emulator) -> None:
    async with AsyncSarvam(
        api_key=KEY,
        base_url=emulator.url,
        headers={"X-Trace": "abc", "api-subscription-key": "other"},
    ) as c:
        with pytest.raises(errors.NotFoundError):
            await c.speech_to_text_job.get_status("j")
    headers = emulator.calls("status")[0].headers
    assert headers["x-trace"] == "abc"
    assert headers["api-subscription-key"] == KEY
    assert headers["user-agent"].startswith("sarvam-async/")


async def test_cancellation_inside_async_with_closes_the_session(emulator: Emulator) -> None:
    emulator.fail_next("status", delay=5.0)
    client = AsyncSarvam(api_key=KEY, base_url=emulator.url)
    sessions: list[aiohttp.ClientSession] = []

    async def use() -> None:
        async with client as c:
            sessions.append(c._get_session())
            await c.speech_to_text_job.get_status("j")

    task = asyncio.ensure_future(use())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.closed and sessions[0].closed  # closed on the way out, not left to GC


async def test_closed_user_session_is_a_typed_error(emulator: Emulator) -> None:
    session = aiohttp.ClientSession()
    await session.close()
    c = AsyncSarvam(api_key=KEY, base_url=emulator.url, session=session)
    with pytest.raises(errors.ClientClosedError) as info:
        await c.speech_to_text_job.get_status("j")
    assert "session=" in str(info.value)
    assert emulator.requests == []


async def test_redirects_are_not_followed_with_the_key(emulator: Emulator) -> None:
    emulator.fail_next("status", status=307, body=b"", content_type="text/plain", message="moved")
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url) as c:
        with pytest.raises(errors.APIStatusError) as info:
            await c.speech_to_text_job.get_status("j")
    assert info.value.status_code == 307
    assert len(emulator.requests) == 1


def test_public_surface_is_exported() -> None:
    for name in sarvam_async.__all__:
        assert hasattr(sarvam_async, name), name
    assert sarvam_async.AsyncSarvam.__module__ == "sarvam_async._client"
