"""Storage transfers against hostile servers and a failing disk: every transfer is bounded,
every failure typed, and no temporary ``.part`` file outlives its download."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from sarvam_async import AsyncSarvam, JobStatusResponse, RetryPolicy, errors
from sarvam_async import _storage as storage
from sarvam_async.jobs import BatchJob
from sarvam_async.testing import Emulator

from .conftest import KEY, FakeTime
from .hostile import FullDisk, job_links, serve, silent_server


@pytest.fixture
async def bounded(emulator: Emulator, fake_time: FakeTime) -> AsyncIterator[AsyncSarvam]:
    """A client whose storage transfers give up after 0.3 s without progress, 2 attempts."""
    policy = RetryPolicy(max_attempts=2, sleep=fake_time.sleep, clock=fake_time.clock)
    async with AsyncSarvam(
        api_key=KEY,
        base_url=emulator.url,
        retry=policy,
        adaptive_rate=False,
        storage_stall_timeout=0.3,
    ) as c:
        yield c


async def _finished_job(client: AsyncSarvam, tmp: Path) -> tuple[BatchJob, JobStatusResponse]:
    audio = tmp / "a.wav"
    audio.write_bytes(b"RIFF" + b"\0" * 100)
    job = await client.speech_to_text_job.create_job()
    await job.upload_files([audio])
    await job.start()
    return job, await job.wait_until_complete(poll_interval=0.01)


# -- 3. stalls and overall limits -------------------------------------------------------------


async def test_an_upload_to_a_server_that_never_reads_stalls_out(
    bounded: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    big = tmp_path / "big.wav"
    with big.open("wb") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: more than loopback's socket buffers hold
    job = await bounded.speech_to_text_job.create_job()
    async with silent_server() as url:
        links = job_links(job.job_id, "upload_urls", {"big.wav": f"{url}/c/big.wav?sig=S"})
        emulator.fail_next("upload-files", status=200, body=links)
        with pytest.raises(errors.StorageError, match="stalled") as info:
            await asyncio.wait_for(job.upload_files([big]), 30)
    assert "after 2 attempts" in str(info.value)


async def test_a_trickled_download_meets_the_overall_limit(
    emulator: Emulator, tmp_path: Path
) -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for _ in range(200):  # a byte every 20 ms: never a stall
            await resp.write(b" ")
            await asyncio.sleep(0.02)
        return resp

    async with (
        AsyncSarvam(
            api_key=KEY,
            base_url=emulator.url,
            retry=RetryPolicy.disabled(),
            adaptive_rate=False,
            storage_stall_timeout=1.0,
            storage_timeout=0.3,
        ) as client,
        serve(trickle) as url,
    ):
        job, status = await _finished_job(client, tmp_path)
        links = job_links(job.job_id, "download_urls", {"0.json": f"{url}/o/0.json?sig=S"})
        emulator.fail_next("download-files", status=200, body=links)
        [outcome] = await job.download_outputs(tmp_path / "out", status=status)
    assert not outcome.ok and outcome.error is not None and "storage_timeout" in outcome.error
    assert os.listdir(tmp_path / "out") == []


async def test_a_silent_download_stalls_out(
    bounded: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"{")
        await release.wait()
        return resp

    async with serve(hang) as url:
        job, status = await _finished_job(bounded, tmp_path)
        links = job_links(job.job_id, "download_urls", {"0.json": f"{url}/o/0.json?sig=S"})
        emulator.fail_next("download-files", status=200, body=links)
        try:
            outcomes = await asyncio.wait_for(
                job.download_outputs(tmp_path / "o", status=status), 30
            )
        finally:
            release.set()
    [outcome] = outcomes
    assert not outcome.ok and outcome.error is not None and "stalled" in outcome.error


# -- 2. transcript size ------------------------------------------------------------------------


async def test_a_transcript_over_the_cap_is_not_written(emulator: Emulator, tmp_path: Path) -> None:
    async with AsyncSarvam(
        api_key=KEY,
        base_url=emulator.url,
        retry=RetryPolicy.disabled(),
        adaptive_rate=False,
        max_transcript_bytes=64 * 1024,
    ) as client:
        job, status = await _finished_job(client, tmp_path)
        emulator.fail_next("storage-get", status=200, body=b" " * (1024 * 1024))
        [outcome] = await job.download_outputs(tmp_path / "out", status=status)
    assert not outcome.ok and outcome.error is not None
    assert "max_transcript_bytes" in outcome.error
    assert os.listdir(tmp_path / "out") == []


# -- 6. the local disk -------------------------------------------------------------------------


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    real = storage._open_binary

    def opener(path: Path, mode: Any) -> Any:
        f = real(path, mode)
        return FullDisk(f, 10) if mode == "wb" else f

    monkeypatch.setattr(storage, "_open_binary", opener)


async def test_disk_full_is_a_local_write_error_and_leaves_no_part_file(
    client: AsyncSarvam, tmp_path: Path, full_disk: None
) -> None:
    job, status = await _finished_job(client, tmp_path)
    out = tmp_path / "out"
    [outcome] = await job.download_outputs(out, status=status)
    assert not outcome.ok and outcome.error is not None
    assert "disk is full" in outcome.error and "Errno" not in outcome.error
    assert os.listdir(out) == []


async def test_leftover_part_files_are_removed_by_the_next_download(
    client: AsyncSarvam, tmp_path: Path
) -> None:
    job, status = await _finished_job(client, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    for tag in ("0badc0de", "deadbeef"):  # a kill, a full disk
        (out / f".a.wav.json.{tag}.part").write_bytes(b"{")
    (out / ".other.json.0badc0de.part").write_bytes(b"{")  # not ours to touch
    [outcome] = await job.download_outputs(out, status=status)
    assert outcome.ok
    assert sorted(os.listdir(out)) == [".other.json.0badc0de.part", "a.wav.json"]


async def test_cancelling_a_download_at_any_moment_leaves_no_part_file(
    client: AsyncSarvam, tmp_path: Path
) -> None:
    job, status = await _finished_job(client, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    for step in range(40):  # cancel after 0, 1, 2 ... loop iterations
        task = asyncio.ensure_future(job.download_outputs(out, status=status))
        for _ in range(step):
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0.01)  # a worker thread finishing its open
        assert [n for n in os.listdir(out) if n.endswith(".part")] == [], step
