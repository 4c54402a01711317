"""Client options and lifecycle: env fallbacks, lazy session, closing, no leaks."""

from __future__ import annotations

import asyncio
import gc
import warnings

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


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_url": "ftp://x"},
        {"base_url": "api.sarvam.ai"},
        {"timeout": 0},
        {"max_connections": 0},
        {"rate_limit": -5},
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


async def test_no_unclosed_session_warning_on_cancellation(emulator: Emulator) -> None:
    emulator.fail_next("status", delay=5.0)

    async def use() -> None:
        async with AsyncSarvam(api_key=KEY, base_url=emulator.url) as c:
            await c.speech_to_text_job.get_status("j")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = asyncio.ensure_future(use())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gc.collect()
        await asyncio.sleep(0)
    assert not [w for w in caught if "Unclosed" in str(w.message)]


def test_public_surface_is_exported() -> None:
    for name in sarvam_async.__all__:
        assert hasattr(sarvam_async, name), name
    assert sarvam_async.AsyncSarvam.__module__ == "sarvam_async._client"
