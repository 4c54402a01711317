"""The main calls as a user writes them; checked by mypy --strict (tests/test_typing.py).

Never run: the ``assert_type`` lines state what a type checker must infer.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from pathlib import Path

from typing_extensions import assert_type

from sarvam_async import (
    USE_CLIENT_DEFAULT,
    AsyncSarvam,
    ClientStats,
    FilesDownloadResponse,
    FilesUploadResponse,
    JobStatusResponse,
    RetryPolicy,
    SpeechToTextJobParameters,
    SpeechToTextTranslateJobParameters,
    TranscriptionResult,
    errors,
)
from sarvam_async.jobs import BatchJob, FileOutcome, FileResult, ProgressEvent


async def one_job(client: AsyncSarvam, audio: Path) -> None:
    stt = client.speech_to_text_job
    job = await stt.create_job(SpeechToTextJobParameters(model="saaras:v3"), timeout=None)
    assert_type(job, BatchJob)
    assert_type(await job.upload_files([audio]), list[str])
    assert_type(await job.start(), JobStatusResponse)
    status = await job.wait_until_complete(poll_interval=1.0, timeout=600)
    assert_type(status, JobStatusResponse)
    assert_type(await job.get_file_results(status), list[FileResult])
    outcomes = await job.download_outputs("out", status=status)
    assert_type(outcomes, list[FileOutcome])
    assert_type(outcomes[0].result, TranscriptionResult | None)
    again = await stt.get_job(job.job_id)
    assert_type(again, BatchJob)


async def endpoints(client: AsyncSarvam) -> None:
    stt = client.speech_to_text_job
    init = await stt.initialise(job_parameters={"language_code": "hi-IN"})
    links = await stt.get_upload_links(job_id=init.job_id, files=["a.wav"], timeout=5.0)
    assert_type(links, FilesUploadResponse)
    status = await stt.get_status(init.job_id, timeout=USE_CLIENT_DEFAULT)
    assert_type(status, JobStatusResponse)
    assert_type(
        await stt.get_download_links(job_id=init.job_id, files=["0.json"], retry=RetryPolicy()),
        FilesDownloadResponse,
    )
    translate = client.speech_to_text_translate_job
    params = SpeechToTextTranslateJobParameters(prompt="p")
    await translate.initialise(job_parameters=params, ptu_id=1)
    assert_type(client.stats, ClientStats)


async def fan_out(paths: list[Path]) -> None:
    events: list[ProgressEvent] = []
    async with AsyncSarvam(timeout=None) as client:
        run = client.transcribe_files(
            paths,
            output_dir="out",
            job_parameters=SpeechToTextJobParameters(with_timestamps=True),
            manifest="out/.manifest",
            progress=events.append,
        )
        assert_type(run, AsyncGenerator[FileOutcome, None])
        async with contextlib.aclosing(run):
            async for outcome in run:
                assert_type(outcome, FileOutcome)
        translated = client.transcribe_files(paths, output_dir="out", translate=True)
        async with contextlib.aclosing(translated):
            pass


def errors_carry_fields(exc: errors.SarvamError) -> None:
    if isinstance(exc, errors.APIStatusError):
        assert_type(exc.status_code, int)
        assert_type(exc.quota_exhausted, bool)
        assert_type(exc.request_id, str | None)
