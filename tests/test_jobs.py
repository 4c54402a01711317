"""One job end to end: streaming upload, start, wait, atomic download, failures kept."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import pytest

from sarvam_async import AsyncSarvam, JobState, RetryPolicy, SpeechToTextJobParameters, errors
from sarvam_async.jobs import ProgressEvent
from sarvam_async.testing import Emulator

from .conftest import KEY, FakeTime

AZURE_403 = b'<?xml version="1.0"?><Error><Code>AuthenticationFailed</Code></Error>'


def _audio(tmp: Path, *names: str, size: int = 2000) -> list[Path]:
    paths = []
    for i, name in enumerate(names):
        p = tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"RIFF" + bytes([i % 256]) * size)
        paths.append(p)
    return paths


async def test_full_job_with_progress(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    paths = _audio(tmp_path / "in", "meeting.wav", "call.mp3")
    events: list[ProgressEvent] = []
    job = await client.speech_to_text_job.create_job(
        SpeechToTextJobParameters(with_timestamps=True, with_diarization=True, num_speakers=2)
    )
    assert await job.upload_files(paths, progress=events.append) == ["meeting.wav", "call.mp3"]
    status = await job.start()
    assert status.job_state is JobState.PENDING
    final = await job.wait_until_complete(poll_interval=0.01)
    assert final.job_state is JobState.COMPLETED
    outcomes = await job.download_outputs(tmp_path / "out", status=final, progress=events.append)
    by_name = {o.name: o for o in outcomes}
    assert set(by_name) == {"meeting.wav", "call.mp3"}
    for name, o in by_name.items():
        assert o.ok and o.output_path == tmp_path / "out" / f"{name}.json"
        assert o.result is not None and o.result.transcript
        assert o.result.timestamps is not None
        assert len(o.result.timestamps.words) == len(o.result.timestamps.start_time_seconds)
        assert o.result.diarized_transcript is not None
        assert json.loads(o.output_path.read_bytes())["transcript"] == o.result.transcript
    assert sorted(os.listdir(tmp_path / "out")) == ["call.mp3.json", "meeting.wav.json"]
    puts = emulator.calls("storage-put")
    ctypes = {r.path.rsplit("/", 1)[1]: r.headers["content-type"] for r in puts}
    assert ctypes == {"meeting.wav": "audio/wav", "call.mp3": "audio/mpeg"}
    assert all(r.headers["x-ms-blob-type"] == "BlockBlob" for r in puts)
    assert all(r.headers["content-length"] == "2004" for r in puts)
    kinds = [e.kind for e in events]
    assert kinds.count("file_uploaded") == 2 and kinds.count("file_downloaded") == 2
    assert sum(e.nbytes for e in events if e.kind == "bytes_sent") == 4008


async def test_no_azure_header_for_google_storage(tmp_path: Path, policy: RetryPolicy) -> None:
    async with (
        Emulator(api_key=KEY, storage_container_type="Google") as emu,
        AsyncSarvam(api_key=KEY, base_url=emu.url, retry=policy) as c,
    ):
        job = await c.speech_to_text_job.create_job()
        await job.upload_files(_audio(tmp_path, "a.flac"))
        [put] = emu.calls("storage-put")
        assert "x-ms-blob-type" not in put.headers
        assert put.headers["content-type"] == "audio/flac"


async def test_partially_completed_is_terminal_and_failures_are_kept(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    emulator.fail_file("bad.wav", state="API Error", message="Audio could not be decoded")
    job = await client.speech_to_text_job.create_job()
    await job.upload_files(_audio(tmp_path, "good.wav", "bad.wav"))
    await job.start()
    status = await job.wait_until_complete(poll_interval=0.01)
    assert status.job_state == "PartiallyCompleted" and status.job_state.is_terminal
    results = {r.name: r for r in await job.get_file_results(status)}
    assert results["good.wav"].ok and not results["bad.wav"].ok
    outcomes = {o.name: o for o in await job.download_outputs(tmp_path / "out", status=status)}
    assert outcomes["good.wav"].ok
    bad = outcomes["bad.wav"]
    assert not bad.ok and bad.state == "API Error" and bad.error == "Audio could not be decoded"
    assert not (tmp_path / "out" / "bad.wav.json").exists()


async def test_wait_backs_off_and_times_out_on_fake_time(tmp_path: Path) -> None:
    ft = FakeTime()
    policy = RetryPolicy(sleep=ft.sleep, clock=ft.clock, jitter=lambda: 0.5)
    async with (
        # answers take 20 ms of real time, as any network's do: the last look needs them
        Emulator(api_key=KEY, clock=ft.clock, job_duration=200.0, latency=0.02) as emu,
        AsyncSarvam(api_key=KEY, base_url=emu.url, retry=policy, adaptive_rate=False) as c,
    ):
        job = await c.speech_to_text_job.create_job()
        await job.upload_files(_audio(tmp_path, "a.wav"))
        await job.start()
        with pytest.raises(errors.JobTimeoutError) as info:
            await job.wait_until_complete(poll_interval=5.0, max_interval=30.0, timeout=41.5)
        # the job runs from 40 s on (Pending for a fifth of its 200 s): the last look, a
        # second before the deadline, saw it; a look at the deadline itself had no time
        assert info.value.last_status is not None
        assert info.value.last_status.job_state == "Running"
        assert info.value.job_id == job.job_id
        # 5, 7.5, 11.25, then cut to end a second before the 41.5 s deadline
        assert ft.sleeps == [5.0, 7.5, 11.25, 16.75]
        assert len(emu.calls("status")) == 5
        status = await job.wait_until_complete(poll_interval=5.0, max_interval=30.0)
        assert status.job_state is JobState.COMPLETED
        assert max(ft.sleeps) == 30.0  # capped


async def test_transient_errors_while_polling_are_not_fatal(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path, fake_time: FakeTime
) -> None:
    job = await client.speech_to_text_job.create_job()
    await job.upload_files(_audio(tmp_path, "a.wav"))
    await job.start()
    emulator.fail_next("status", count=10, status=503)  # more than one call's 8 attempts
    status = await job.wait_until_complete(poll_interval=1.0)
    assert status.job_state is JobState.COMPLETED
    assert len(emulator.calls("status")) == 11
    emulator.fail_next("status", status=404)
    with pytest.raises(errors.NotFoundError):
        await job.wait_until_complete()


async def test_expired_upload_and_download_urls_are_refreshed_once(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    job = await client.speech_to_text_job.create_job()
    emulator.fail_next("storage-put", status=403, body=AZURE_403, content_type="application/xml")
    await job.upload_files(_audio(tmp_path, "a.wav"))
    assert len(emulator.calls("upload-files")) == 2
    assert [r.status for r in emulator.calls("storage-put")] == [403, 201]
    await job.start()
    status = await job.wait_until_complete(poll_interval=0.01)
    emulator.fail_next("storage-get", status=403, body=AZURE_403, content_type="application/xml")
    [outcome] = await job.download_outputs(tmp_path / "out", status=status)
    assert outcome.ok
    assert len(emulator.calls("download-files")) == 2


async def test_revoked_url_is_refused_and_the_error_hides_the_signature(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    job = await client.speech_to_text_job.create_job()
    links = await client.speech_to_text_job.get_upload_links(job_id=job.job_id, files=["a.wav"])
    emulator.expire_urls()
    from sarvam_async._storage import upload_from

    with pytest.raises(errors.StorageError) as info:
        await upload_from(
            client._get_session(),
            links.upload_urls["a.wav"].file_url,
            _audio(tmp_path, "a.wav")[0],
            name="a.wav",
            storage=links.storage_container_type,
            policy=RetryPolicy.disabled(),
        )
    assert info.value.status_code == 403
    text = str(info.value) + repr(info.value)
    assert "sig=" not in text and "?" not in text and info.value.__cause__ is None


async def test_interrupted_download_never_replaces_the_final_file(tmp_path: Path) -> None:
    from aiohttp import web

    from sarvam_async._storage import download_to

    async def truncated(request: web.BaseRequest) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Length": "100000"})
        await resp.prepare(request)
        await resp.write(b"{" * 1000)
        assert request.transport is not None
        request.transport.close()  # the connection dies mid-body
        return resp

    runner = web.ServerRunner(web.Server(truncated))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    dest = tmp_path / "a.wav.json"
    dest.write_text("previous good result")
    try:
        async with AsyncSarvam(api_key=KEY, base_url=f"http://127.0.0.1:{port}") as c:
            with pytest.raises(errors.StorageError):
                await download_to(
                    c._get_session(),
                    f"http://127.0.0.1:{port}/out/0.json?sig=s",
                    dest,
                    name="a.wav",
                    policy=RetryPolicy.disabled(),
                )
    finally:
        await runner.cleanup()
    assert dest.read_text() == "previous good result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav.json"]  # no .part left


async def test_unwritable_output_is_a_failed_outcome_not_an_oserror(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    job = await client.speech_to_text_job.create_job()
    await job.upload_files(_audio(tmp_path, "a.wav", "b.wav"))
    await job.start()
    status = await job.wait_until_complete(poll_interval=0.01)
    out = tmp_path / "out"
    (out / "a.wav.json").mkdir(parents=True)  # a directory where the output should go
    outcomes = {o.name: o for o in await job.download_outputs(out, status=status)}
    assert outcomes["b.wav"].ok
    assert not outcomes["a.wav"].ok and "cannot write" in (outcomes["a.wav"].error or "")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(errors.InvalidParameterError, match="is a file, not a folder"):
        await job.download_outputs(blocker / "sub", status=status)  # before asking for links


async def test_storage_retries_and_errors_name_the_file_not_the_url(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path, fake_time: FakeTime
) -> None:
    job = await client.speech_to_text_job.create_job()
    emulator.fail_next("storage-put", count=2, status=500)
    await job.upload_files(_audio(tmp_path, "a.wav"))
    assert [r.status for r in emulator.calls("storage-put")] == [500, 500, 201]
    emulator.fail_next("storage-put", count=20, status=503)
    with pytest.raises(errors.StorageError) as info:
        await job.upload_files([tmp_path / "a.wav"])
    assert info.value.file_name == "a.wav" and info.value.status_code == 503
    assert "a.wav" in str(info.value) and "8 attempts" in str(info.value)
    assert "sig" not in str(info.value) and emulator.url not in str(info.value)


def _completed(*files: tuple[str, str]) -> bytes:
    """A Completed status of job ``j`` whose details pair each input with an output name."""
    details = [
        {
            "inputs": [{"file_name": name, "file_id": str(i)}],
            "outputs": [{"file_name": output, "file_id": str(i)}],
            "state": "Success",
        }
        for i, (name, output) in enumerate(files)
    ]
    body = {"job_id": "j", "job_state": "Completed", "storage_container_type": "Azure"}
    return json.dumps({**body, "job_details": details}).encode()


@pytest.mark.parametrize(
    "evil", ["../evil.wav", "/etc/passwd", "a/../../b.wav", "a\\b.wav", "nul\x00.wav", ".."]
)
async def test_unsafe_names_from_the_server_are_never_written(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path, evil: str
) -> None:
    emulator.fail_next("status", status=200, body=_completed((evil, "0.json"), ("ok.wav", evil)))
    job = await client.speech_to_text_job.get_job("j")
    out = tmp_path / "deep" / "out"
    outcomes = await job.download_outputs(out)
    assert [o.ok for o in outcomes] == [False, False]
    assert all("refusing output file name" in (o.error or "") for o in outcomes)
    assert emulator.calls("download-files") == []
    assert sorted(p.name for p in tmp_path.rglob("*")) == []


async def test_download_before_finish_is_a_job_error(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    job = await client.speech_to_text_job.create_job()
    with pytest.raises(errors.JobError):
        await job.download_outputs(tmp_path)
    assert await job.exists()
    assert not await (await client.speech_to_text_job.get_job("nope")).exists()


async def test_upload_rejects_bad_input_before_sending(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    job = await client.speech_to_text_job.get_job("j")
    with pytest.raises(errors.InvalidParameterError):
        await job.upload_files([tmp_path / "missing.wav"])
    a, b = _audio(tmp_path, "x/a.wav", "y/a.wav")
    with pytest.raises(errors.InvalidParameterError):
        await job.upload_files([a, b])
    assert emulator.requests == []


async def test_start_is_safe_to_repeat(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    job = await client.speech_to_text_job.create_job()
    await job.upload_files(_audio(tmp_path, "a.wav"))
    await job.start()
    again = await job.start()  # the API says 400 "already started"; the handle checks
    assert again.job_state != JobState.ACCEPTED


async def test_large_upload_streams_in_constant_memory(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    size = 256 * 1024 * 1024
    big = tmp_path / "big.wav"
    with big.open("wb") as f:  # sparse: costs no disk
        f.truncate(size)
    job = await client.speech_to_text_job.create_job()
    tracemalloc.start()
    try:
        await job.upload_files([big])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [put] = emulator.calls("storage-put")
    assert put.body_size == size and put.status == 201
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.0f} MB file"


@pytest.mark.parametrize("evil", ["C:evil", "c:evil.wav", "con", "NUL.wav", "COM1"])
async def test_input_names_unsafe_on_windows_are_never_written(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path, evil: str
) -> None:
    """``out / "C:evil.json"`` leaves ``out`` on Windows; refused on every system alike."""
    emulator.fail_next("status", status=200, body=_completed((evil, "0.json")))
    job = await client.speech_to_text_job.get_job("j")
    outcomes = await job.download_outputs(tmp_path / "out")
    assert [o.ok for o in outcomes] == [False]
    assert "refusing output file name" in (outcomes[0].error or "")
    assert emulator.calls("download-files") == []
    assert list(tmp_path.rglob("*")) == []
