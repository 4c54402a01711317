"""A hostile API server: deep JSON, bodies too large to read, secrets in error text.

Every class of answer ends in a typed error from ``sarvam_async.errors`` with no secret in
its message, body, repr or chained causes, and reading stops at the configured cap.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path

import pytest
from aiohttp import web

from sarvam_async import AsyncSarvam, RetryPolicy, errors
from sarvam_async._manifest import Manifest
from sarvam_async.testing import Emulator

from .conftest import KEY
from .hostile import Handler, deep_json, gzip_bomb, serve

STATUS = "/speech-to-text/job/v1/j/status"


def _client(url: str, **kw: object) -> AsyncSarvam:
    return AsyncSarvam(
        api_key=KEY, base_url=url, retry=RetryPolicy.disabled(), adaptive_rate=False, **kw
    )  # type: ignore[arg-type]


# -- 1. deep nesting ------------------------------------------------------------------------


async def test_deep_json_in_a_2xx_body_is_a_validation_error(
    client: AsyncSarvam, emulator: Emulator
) -> None:
    emulator.fail_next("status", status=200, body=deep_json())
    with pytest.raises(errors.ResponseValidationError) as info:
        await client.speech_to_text_job.get_status("j")
    assert "nested too deeply" in str(info.value)
    assert info.value.__cause__ is None


async def test_deep_json_in_an_error_body_keeps_the_status_error(
    client: AsyncSarvam, emulator: Emulator
) -> None:
    emulator.fail_next("status", status=500, body=deep_json())
    with pytest.raises(errors.InternalServerError) as info:
        await client.speech_to_text_job.get_status("j")
    assert info.value.status_code == 500


def test_deep_json_in_a_manifest_line_is_a_manifest_error(tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    journal.write_bytes(deep_json() + b"\n" + b'{"event":"started","job_id":"j"}\n')
    with pytest.raises(errors.ManifestError, match="line 1 is unreadable"):
        Manifest(journal).load()


async def test_deep_json_as_a_downloaded_transcript_fails_that_file_only(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF" + b"\0" * 100)
    job = await client.speech_to_text_job.create_job()
    await job.upload_files([audio])
    await job.start()
    status = await job.wait_until_complete(poll_interval=0.01)
    emulator.fail_next("storage-get", status=200, body=deep_json())
    [outcome] = await job.download_outputs(tmp_path / "out", status=status)
    assert not outcome.ok and outcome.error is not None and "nested too deeply" in outcome.error


# -- 2. bodies over the cap -----------------------------------------------------------------


def _bomb_handler(status: int, decoded: int) -> Handler:
    body = gzip_bomb(decoded)

    async def handler(request: web.Request) -> web.Response:
        return web.Response(
            status=status,
            body=body,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    return handler


@pytest.mark.parametrize("status", [200, 500])
async def test_a_gzip_bomb_is_cut_at_the_cap_and_memory_stays_flat(status: int) -> None:
    cap = 1024 * 1024
    async with (
        serve(_bomb_handler(status, 64 * 1024 * 1024)) as url,
        _client(url, max_response_bytes=cap) as client,
    ):
        tracemalloc.start()
        try:
            with pytest.raises(errors.APIError) as info:
                await client.speech_to_text_job.get_status("j")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    expected = errors.ResponseTooLargeError if status == 200 else errors.InternalServerError
    assert type(info.value) is expected
    assert peak < 16 * cap, f"peak {peak / 2**20:.1f} MiB for a {cap / 2**20:.0f} MiB cap"


async def test_a_plain_body_over_the_cap_is_refused_unread() -> None:
    chunk = b" " * (1024 * 1024)

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        for _ in range(32):
            await resp.write(chunk)
        return resp

    async with serve(handler) as url, _client(url, max_response_bytes=256 * 1024) as client:
        with pytest.raises(errors.ResponseTooLargeError, match="max_response_bytes"):
            await client.speech_to_text_job.get_status("j")


# -- 7. secrets in error text ---------------------------------------------------------------

SIGNED = "https://acct.blob.core.windows.net/c/a.wav?sv=2024&se=2030&sig=SECRETSIG"


async def test_a_signed_url_in_the_error_message_is_redacted(
    client: AsyncSarvam, emulator: Emulator
) -> None:
    for status in (400, 500):
        emulator.fail_next("status", status=status, message=f"cannot fetch {SIGNED}")
        with pytest.raises(errors.APIStatusError) as info:
            await client.speech_to_text_job.get_status("j")
        exc = info.value
        for text in (str(exc), exc.message, exc.body, repr(exc)):
            assert "SECRETSIG" not in text
        assert "a.wav?<redacted>" in exc.message


async def test_no_chained_exception_carries_the_key() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: nonsense\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        async with _client(url) as client:
            with pytest.raises(errors.APIConnectionError) as info:
                await client.speech_to_text_job.get_status("j")
    finally:
        server.close()
        await server.wait_closed()
    seen: BaseException | None = info.value
    chain = []
    while seen is not None:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    assert all(KEY not in repr(e) and KEY not in str(e) for e in chain), chain
