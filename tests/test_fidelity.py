"""The live API where it differs from its docs: download lag, nulls, timestamps, casing."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from sarvam_async import (
    AsyncSarvam,
    JobState,
    RetryPolicy,
    SpeechToTextJobParameters,
    StorageContainerType,
    TaskState,
    TimedText,
    TimestampGranularity,
    TranscriptionResult,
    errors,
)
from sarvam_async._redact import redact
from sarvam_async._results import file_results
from sarvam_async.testing import Emulator

from .conftest import KEY, FakeTime

LAG_MESSAGE = "Job {} is not in COMPLETED state. Current state: Pending"


def _audio(tmp: Path, *names: str) -> list[Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        path = tmp / name
        path.write_bytes(b"RIFF" + bytes([i]) * 500)
        paths.append(path)
    return paths


async def _finished_job(client: AsyncSarvam, tmp: Path, *names: str) -> tuple[str, list[str]]:
    """A finished job's id and output names."""
    job = await client.speech_to_text_job.create_job()
    await job.upload_files(_audio(tmp, *names))
    await job.start()
    status = await job.wait_until_complete(poll_interval=0.01)
    assert status.job_state is JobState.COMPLETED
    return job.job_id, [d.outputs[0].file_name for d in status.job_details]


@pytest.fixture
def ft() -> FakeTime:
    return FakeTime()


@pytest.fixture
async def lagging(ft: FakeTime) -> AsyncIterator[Emulator]:
    """An emulator on fake time whose download-files lags 3 s behind status, like the live API."""
    async with Emulator(api_key=KEY, clock=ft.clock, download_lag=3.0) as emu:
        yield emu


def _client(emu: Emulator, ft: FakeTime, **kwargs: float) -> AsyncSarvam:
    policy = RetryPolicy(sleep=ft.sleep, clock=ft.clock, jitter=lambda: 0.5)
    return AsyncSarvam(api_key=KEY, base_url=emu.url, retry=policy, adaptive_rate=False, **kwargs)


# ----------------------------------------------------------------------------- download lag


async def test_get_download_links_waits_out_the_lag(
    lagging: Emulator, ft: FakeTime, tmp_path: Path
) -> None:
    async with _client(lagging, ft) as client:
        job_id, outputs = await _finished_job(client, tmp_path, "a.wav")
        lagging.reset_requests()
        links = await client.speech_to_text_job.get_download_links(job_id=job_id, files=outputs)
    assert set(links.download_urls) == set(outputs)
    statuses = [r.status for r in lagging.calls("download-files")]
    assert statuses[-1] == 200 and set(statuses[:-1]) == {400} and len(statuses) > 1
    assert len(lagging.calls("status")) == 1  # the job's state is checked once
    assert 3.0 <= sum(ft.sleeps) <= 10.0  # waited the lag, not the whole bound
    assert lagging.stats.not_ready == len(statuses) - 1


async def test_download_outputs_and_transcribe_files_lose_nothing_to_the_lag(
    lagging: Emulator, ft: FakeTime, tmp_path: Path
) -> None:
    async with _client(lagging, ft) as client:
        job = await client.speech_to_text_job.create_job()
        await job.upload_files(_audio(tmp_path / "one", "a.wav", "b.wav"))
        await job.start()
        status = await job.wait_until_complete(poll_interval=0.01)
        outcomes = await job.download_outputs(tmp_path / "out1", status=status)
        assert [o.ok for o in outcomes] == [True, True]

        paths = _audio(tmp_path / "many", *(f"f{i}.wav" for i in range(25)))
        run = client.transcribe_files(paths, output_dir=tmp_path / "out2", poll_interval=0.01)
        fanned = [o async for o in run]
    assert len(fanned) == 25 and all(o.ok for o in fanned), [o.error for o in fanned]
    assert lagging.stats.not_ready >= 3  # every job met the lag


async def test_the_issue_scenario_scripted_with_the_live_message(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    job_id, _ = await _finished_job(client, tmp_path, "a.wav")
    emulator.fail_next("download-files", count=2, status=400, message=LAG_MESSAGE.format(job_id))
    job = await client.speech_to_text_job.get_job(job_id)
    [outcome] = await job.download_outputs(tmp_path / "out")
    assert outcome.ok and outcome.result is not None


async def test_a_lag_outlasting_the_bound_is_a_typed_error(ft: FakeTime, tmp_path: Path) -> None:
    async with (
        Emulator(api_key=KEY, clock=ft.clock, download_lag=100.0) as emu,
        _client(emu, ft, download_lag_timeout=4.0) as client,
    ):
        job_id, outputs = await _finished_job(client, tmp_path, "a.wav")
        ft.sleeps.clear()
        with pytest.raises(errors.OutputsNotReadyError) as info:
            await client.speech_to_text_job.get_download_links(job_id=job_id, files=outputs)
    err = info.value
    assert (err.job_id, err.state) == (job_id, "Completed")
    assert err.waited == pytest.approx(4.0) and sum(ft.sleeps) == pytest.approx(4.0)
    assert job_id in str(err) and "Pending" in str(err) and "again" in str(err)
    assert isinstance(err.__cause__, errors.BadRequestError)


async def test_the_default_bound_is_about_ten_seconds(ft: FakeTime, tmp_path: Path) -> None:
    async with (
        Emulator(api_key=KEY, clock=ft.clock, download_lag=100.0) as emu,
        _client(emu, ft) as client,
    ):
        assert client.download_lag_timeout == 10.0
        job_id, outputs = await _finished_job(client, tmp_path, "a.wav")
        ft.sleeps.clear()
        with pytest.raises(errors.OutputsNotReadyError):
            await client.speech_to_text_job.get_download_links(job_id=job_id, files=outputs)
        assert sum(ft.sleeps) == pytest.approx(10.0)
        # Backoff, not a tight loop: a handful of asks in the ten seconds.
        assert 3 <= len(emu.calls("download-files")) <= 8


async def test_a_fan_out_job_gets_another_go_when_the_lag_outlasts_the_bound(
    ft: FakeTime, tmp_path: Path
) -> None:
    async with (
        Emulator(api_key=KEY, clock=ft.clock, download_lag=15.0) as emu,
        _client(emu, ft) as client,
    ):
        run = client.transcribe_files(
            _audio(tmp_path, "a.wav"), output_dir=tmp_path / "out", poll_interval=0.01
        )
        [outcome] = [o async for o in run]
    assert outcome.ok, outcome.error
    assert len(emu.calls("initiate")) == 1  # the same job, downloaded on its second go


async def test_no_other_400_is_retried(
    client: AsyncSarvam, emulator: Emulator, fake_time: FakeTime, tmp_path: Path
) -> None:
    job_id, _ = await _finished_job(client, tmp_path, "a.wav")
    fake_time.sleeps.clear()
    emulator.reset_requests()
    with pytest.raises(errors.BadRequestError):
        await client.speech_to_text_job.get_download_links(job_id=job_id, files=["9.json"])
    assert len(emulator.calls("download-files")) == 1 and not emulator.calls("status")
    assert fake_time.sleeps == []


async def test_an_unfinished_job_is_refused_at_once(
    client: AsyncSarvam, emulator: Emulator, fake_time: FakeTime, tmp_path: Path
) -> None:
    emulator.job_duration = 60.0
    job = await client.speech_to_text_job.create_job()
    await job.upload_files(_audio(tmp_path, "a.wav"))
    await job.start()
    fake_time.sleeps.clear()
    with pytest.raises(errors.OutputsNotReadyError) as info:
        await client.speech_to_text_job.get_download_links(job_id=job.job_id, files=["0.json"])
    assert info.value.state in ("Pending", "Running") and info.value.waited == 0
    assert "wait_until_complete" in str(info.value) and job.job_id in str(info.value)
    assert fake_time.sleeps == []


def test_download_lag_timeout_is_validated() -> None:
    with pytest.raises(errors.ConfigurationError):
        AsyncSarvam(api_key=KEY, download_lag_timeout=-1)
    assert AsyncSarvam(api_key=KEY, download_lag_timeout=0).download_lag_timeout == 0


# ----------------------------------------------------------------------------- nulls

_STATUS = {
    "job_id": "j",
    "job_state": "Completed",
    "created_at": "2026-12-01T06:10:17.678952+00:00",
    "updated_at": "2026-12-01T06:10:19.101010+00:00",
    "storage_container_type": "Azure",
    "total_files": 1,
    "successful_files_count": 1,
    "failed_files_count": 0,
    "error_message": "",
    "job_details": [
        {
            "inputs": [{"file_name": "a.wav", "file_id": "0"}],
            "outputs": [{"file_name": "0.json", "file_id": "0"}],
            "state": "Success",
            "error_message": "",
            "exception_name": "",
        }
    ],
}


@pytest.mark.parametrize(
    ("field", "default"),
    [
        ("total_files", 0),
        ("successful_files_count", 0),
        ("failed_files_count", 0),
        ("job_details", []),
    ],
)
async def test_a_null_in_the_status_decodes_as_its_default(
    client: AsyncSarvam, emulator: Emulator, field: str, default: object
) -> None:
    body = msgspec.json.encode({**_STATUS, field: None})
    emulator.fail_next("status", status=200, body=body)
    status = await client.speech_to_text_job.get_status("j")
    assert getattr(status, field) == default


@pytest.mark.parametrize("field", ["inputs", "outputs"])
async def test_a_null_task_list_decodes_as_empty(
    client: AsyncSarvam, emulator: Emulator, field: str
) -> None:
    detail = {**_STATUS["job_details"][0], field: None}  # type: ignore[index]
    emulator.fail_next(
        "status", status=200, body=msgspec.json.encode({**_STATUS, "job_details": [detail]})
    )
    status = await client.speech_to_text_job.get_status("j")
    assert getattr(status.job_details[0], field) == []
    file_results(status)  # no TypeError on the empty list


async def test_a_status_before_start_decodes(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    job = await client.speech_to_text_job.create_job()
    await job.upload_files(_audio(tmp_path, "a.wav"))
    raw = await _raw_status(emulator, job.job_id)
    assert raw["total_files"] is None  # the live shape: no counts before start
    status = await job.get_status()
    assert status.job_state is JobState.ACCEPTED
    counts = (status.total_files, status.successful_files_count, status.failed_files_count)
    assert counts == (0, 0, 0)


async def _raw_status(emulator: Emulator, job_id: str) -> dict[str, object]:
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{emulator.url}/speech-to-text/job/v1/{job_id}/status",
            headers={"api-subscription-key": KEY},
        ) as resp,
    ):
        body: dict[str, object] = await resp.json()
        return body


@pytest.mark.parametrize("field", ["words", "segments"])
def test_null_timed_lists_in_an_output_decode_as_empty(field: str) -> None:
    raw = msgspec.json.encode({"transcript": "t", field: None})
    result = msgspec.json.decode(raw, type=TranscriptionResult)
    assert getattr(result, field) == []


# ----------------------------------------------------------------------------- timestamps


def test_timestamp_granularity_is_validated_as_documented() -> None:
    ok = [
        {"model": "saaras:v4", "timestamp_granularity": "word"},
        {"model": "saaras:v4", "mode": "verbatim", "timestamp_granularity": "word"},
        {"timestamp_granularity": "segment"},  # the API's default model is saaras:v3
        {"model": "saaras:v3", "mode": "translate", "timestamp_granularity": "segment"},
        {"model": "saaras:v4", "with_timestamps": True, "timestamp_granularity": "segment"},
    ]
    for params in ok:
        SpeechToTextJobParameters(**params)  # type: ignore[arg-type]
    bad = [
        ({"timestamp_granularity": "word"}, "saaras:v4"),
        ({"model": "saaras:v3", "timestamp_granularity": "word"}, "saaras:v4"),
        ({"model": "saaras:v4", "mode": "translate", "timestamp_granularity": "word"}, "mode"),
        ({"model": "saarika:v2.5", "timestamp_granularity": "segment"}, "saaras:v3"),
        ({"model": "saaras:v4", "timestamp_granularity": 1}, "'word' or 'segment'"),
    ]
    for params, needle in bad:
        with pytest.raises(errors.InvalidParameterError) as info:
            SpeechToTextJobParameters(**params)  # type: ignore[arg-type]
        assert info.value.field == "job_parameters.timestamp_granularity"
        assert needle in str(info.value), params
    assert TimestampGranularity("WORD") is TimestampGranularity.WORD


@pytest.mark.parametrize(("granularity", "field"), [("word", "words"), ("segment", "segments")])
async def test_words_and_segments_arrive_typed(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path, granularity: str, field: str
) -> None:
    params = SpeechToTextJobParameters(
        model="saaras:v4", language_code="en-IN", timestamp_granularity=granularity
    )
    run = client.transcribe_files(
        _audio(tmp_path, "a.wav"), output_dir=tmp_path / "out", job_parameters=params
    )
    [outcome] = [o async for o in run]
    sent = emulator.calls("initiate")[0].json()["job_parameters"]
    assert (sent["model"], sent["timestamp_granularity"]) == ("saaras:v4", granularity)
    assert outcome.ok and outcome.result is not None
    timed = getattr(outcome.result, field)
    assert timed and all(isinstance(t, TimedText) and t.start <= t.end for t in timed)
    assert " ".join(t.text for t in timed) == outcome.result.transcript
    other = "segments" if field == "words" else "words"
    assert getattr(outcome.result, other) == [] and outcome.result.timestamps is None


# ----------------------------------------------------------------------------- states, start


def test_states_compare_case_insensitively() -> None:
    assert JobState("completed") is JobState.COMPLETED
    assert JobState("PARTIALLYCOMPLETED") is JobState.PARTIALLY_COMPLETED
    assert TaskState("success") is TaskState.SUCCESS
    assert StorageContainerType("azure_v1") is StorageContainerType.AZURE_V1
    odd = TaskState("API_ERROR")  # a member's name, not a value: still unknown
    assert not odd.is_known and odd.value == "API_ERROR"


async def test_a_lower_case_state_ends_the_wait_and_guards_start(
    client: AsyncSarvam, emulator: Emulator
) -> None:
    emulator.fail_next(
        "status", status=200, body=msgspec.json.encode({**_STATUS, "job_state": "completed"})
    )
    job = await client.speech_to_text_job.get_job("j")
    status = await job.wait_until_complete(poll_interval=0.01)
    assert status.job_state is JobState.COMPLETED and status.job_state == "Completed"
    # start() refused, status says "pending": the job did start, so no error.
    emulator.fail_next("start", status=400, message="Job j has already been started")
    emulator.fail_next(
        "status", status=200, body=msgspec.json.encode({**_STATUS, "job_state": "pending"})
    )
    assert (await job.start()).job_state is JobState.PENDING
    emulator.fail_next("start", status=400, message="No files have been uploaded")
    emulator.fail_next(
        "status", status=200, body=msgspec.json.encode({**_STATUS, "job_state": "accepted"})
    )
    with pytest.raises(errors.BadRequestError):
        await job.start()


async def test_start_sends_no_content_type(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    job = await client.speech_to_text_job.create_job()
    await job.upload_files(_audio(tmp_path, "a.wav"))
    await job.start()
    [start] = emulator.calls("start")
    assert "content-type" not in start.headers and start.body == b""
    assert emulator.calls("initiate")[0].headers["content-type"] == "application/json"


# ----------------------------------------------------------------------------- redaction


async def test_redaction_covers_the_azure_sas_shape(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job_id, outputs = await _finished_job(client, tmp_path, "a.wav")
    links = await client.speech_to_text_job.get_download_links(job_id=job_id, files=outputs)
    url = links.download_urls[outputs[0]].file_url
    assert "&sp=rl&sv=" in url and "&sr=" in url  # the Azure SAS shape the live API hands out
    sig = url.split("sig=", 1)[1].split("&")[0]
    assert "%" in sig or sig.isalnum()  # URL-escaped base64
    for text in (repr(links), repr(links.download_urls[outputs[0]])):
        assert sig not in text and "se=" not in text
    moved = f"{url.split('?')[0]}?sig={sig}&sp=rl&se=x"  # the signature first, not last
    for text in (url, moved, url.replace("/", "\\/")):
        assert sig not in redact(f"failed: {text} (done)")
    caplog.set_level(logging.DEBUG, logger="sarvam_async")
    emulator.fail_next("storage-get", count=8, status=500, message=f"echo {url}")
    job = await client.speech_to_text_job.get_job(job_id)
    [outcome] = await job.download_outputs(tmp_path / "out")
    assert not outcome.ok and outcome.error is not None
    assert sig not in outcome.error
    assert all(sig not in r.getMessage() for r in caplog.records)
