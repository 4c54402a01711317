"""The official SDK's wire shapes against the emulator, and against this client's types.

Runs only when ``sarvamai`` (the ``bench`` extra) is installed. The SDK is generated from
Sarvam's API definition, so it is a second opinion on every shape: the emulator must accept
what the SDK sends and answer what the SDK parses, and this client's types must cover every
field and enum value the SDK knows. Drift on either side fails here.
"""

from __future__ import annotations

import contextlib
import typing
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

import sarvam_async
from sarvam_async._download_lag import not_ready_state
from sarvam_async.errors import BadRequestError as OurBadRequest
from sarvam_async.testing import Emulator

sarvamai = pytest.importorskip("sarvamai")
sdk_types = pytest.importorskip("sarvamai.types")

import httpx  # noqa: E402
from sarvamai import AsyncSarvamAI  # noqa: E402
from sarvamai.environment import SarvamAIEnvironment  # noqa: E402

KEY = "sdk-key"

# (this client's type, the SDK's type) pairs that describe the same JSON object
STRUCTS = [
    (sarvam_async.JobStatusResponse, "JobStatusResponse"),
    (sarvam_async.TaskDetail, "TaskDetail"),
    (sarvam_async.TaskFileDetails, "TaskFileDetails"),
    (sarvam_async.FilesUploadResponse, "FilesUploadResponse"),
    (sarvam_async.FilesDownloadResponse, "FilesDownloadResponse"),
    (sarvam_async.FileSignedURLDetails, "FileSignedUrlDetails"),
    (sarvam_async.BulkJobInitResponse, "BulkJobInitResponse"),
    (sarvam_async.BulkJobCallback, "BulkJobCallback"),
    (sarvam_async.FilesRequest, "FilesRequest"),
    (sarvam_async.SpeechToTextJobParameters, "SpeechToTextJobParameters"),
    (sarvam_async.SpeechToTextTranslateJobParameters, "SpeechToTextTranslateJobParameters"),
    (sarvam_async.ErrorDetails, "ErrorDetails"),
    (sarvam_async.ErrorMessage, "ErrorMessage"),
    (sarvam_async.Timestamps, "TimestampsModel"),
    (sarvam_async.DiarizedEntry, "DiarizedEntry"),
    (sarvam_async.DiarizedTranscript, "DiarizedTranscript"),
]

ENUMS = [
    (sarvam_async.JobState, "job_state", "JobState"),
    (sarvam_async.TaskState, "task_state", "TaskState"),
    (sarvam_async.StorageContainerType, "storage_container_type", "StorageContainerType"),
    (sarvam_async.ErrorCode, "error_code", "ErrorCode"),
    (sarvam_async.Mode, "mode", "Mode"),
    (sarvam_async.SpeechToTextLanguage, "speech_to_text_language", "SpeechToTextLanguage"),
    (sarvam_async.InputAudioCodec, "input_audio_codec", "InputAudioCodec"),
    (sarvam_async.SpeechToTextModel, "speech_to_text_batch_model", "SpeechToTextBatchModel"),
    (
        sarvam_async.SpeechToTextTranslateModel,
        "speech_to_text_translate_model",
        "SpeechToTextTranslateModel",
    ),
]


def _literals(tp: Any) -> set[str]:
    """Every string literal inside a ``Union[Literal[...], Any]`` (or a bare Literal)."""
    if typing.get_origin(tp) is typing.Literal:
        return {a for a in typing.get_args(tp) if isinstance(a, str)}
    return set().union(*(_literals(a) for a in typing.get_args(tp)))


@pytest.mark.parametrize(("ours", "theirs"), STRUCTS, ids=[t for _, t in STRUCTS])
def test_our_types_cover_every_field_the_sdk_knows(ours: type, theirs: str) -> None:
    sdk_fields = set(getattr(sdk_types, theirs).model_fields)
    missing = sdk_fields - {f.name for f in msgspec.structs.fields(ours)}
    assert not missing, f"{ours.__name__} lacks {sorted(missing)} that the SDK's {theirs} has"


@pytest.mark.parametrize(("ours", "module", "name"), ENUMS, ids=[n for *_, n in ENUMS])
def test_our_enums_cover_every_value_the_sdk_knows(ours: type, module: str, name: str) -> None:
    mod = __import__(f"sarvamai.types.{module}", fromlist=[name])
    sdk_values = _literals(getattr(mod, name))
    assert sdk_values, name
    missing = sdk_values - {m.value for m in ours}  # type: ignore[attr-defined]
    assert not missing, f"{ours.__name__} lacks {sorted(missing)}"


@contextlib.asynccontextmanager
async def _sdk(emu: Emulator) -> AsyncIterator[Any]:
    """The official async client pointed at ``emu``, its HTTP client closed afterwards."""
    env = SarvamAIEnvironment(base=emu.url, creative=emu.url, production=emu.url)
    async with httpx.AsyncClient(timeout=10) as http:
        yield AsyncSarvamAI(api_subscription_key=KEY, environment=env, httpx_client=http)


def _audio(tmp: Path, *names: str) -> list[str]:
    tmp.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        (tmp / name).write_bytes(b"RIFF" + bytes([i]) * 400)
    return [str(tmp / n) for n in names]


async def test_the_sdk_runs_a_whole_job_on_the_emulator(tmp_path: Path) -> None:
    async with Emulator(api_key=KEY) as emu, _sdk(emu) as sdk:
        # The SDK's create_job sends explicit nulls and its legacy default model.
        job = await sdk.speech_to_text_job.create_job(language_code="hi-IN", with_timestamps=True)
        sent = emu.calls("initiate")[0].json()["job_parameters"]
        assert sent["model"] == "saarika:v2.5" and sent["mode"] is None
        assert await job.upload_files(_audio(tmp_path / "in", "a.wav", "b.wav"))
        before = await job.get_status()  # null counts before start parse in the SDK too
        assert before.job_state == "Accepted" and before.total_files is None
        started = await job.start()
        assert started.job_state == "Pending"
        [start] = emu.calls("start")
        assert "content-type" not in start.headers  # what this client now sends too
        final = await job.wait_until_complete(poll_interval=0.05, timeout=10)
        assert final.job_state == "Completed"
        results = await job.get_file_results()
        assert {r["file_name"] for r in results["successful"]} == {"a.wav", "b.wav"}
        assert await job.download_outputs(str(tmp_path / "out"))
        for name in ("a.wav", "b.wav"):
            raw = (tmp_path / "out" / f"{name}.json").read_bytes()
            ours = msgspec.json.decode(raw, type=sarvam_async.TranscriptionResult)
            theirs = sdk_types.SpeechToTextResponse.model_validate_json(raw)
            assert ours.transcript == theirs.transcript
            assert ours.timestamps is not None and theirs.timestamps is not None
            assert ours.timestamps.words == theirs.timestamps.words
        # Both clients read the same status the same way.
        status = await sdk.speech_to_text_job.get_status(job.job_id)
        ours = sarvam_async.JobStatusResponse
        async with sarvam_async.AsyncSarvam(api_key=KEY, base_url=emu.url) as client:
            mine = await client.speech_to_text_job.get_status(job.job_id)
        assert isinstance(mine, ours)
        assert mine.total_files == status.total_files == 2
        assert [d.inputs[0].file_name for d in mine.job_details] == [
            d.inputs[0].file_name for d in status.job_details or []
        ]


async def test_the_sdk_translate_flow_and_ptu_id(tmp_path: Path) -> None:
    async with Emulator(api_key=KEY) as emu, _sdk(emu) as sdk:
        job = await sdk.speech_to_text_translate_job.create_job(prompt="a call")
        await job.upload_files(_audio(tmp_path, "a.wav"))
        await sdk.speech_to_text_translate_job.start(job.job_id, ptu_id=3)
        assert emu.jobs[job.job_id].ptu_id == 3
        assert (await job.wait_until_complete(poll_interval=0.05, timeout=10)).job_state == (
            "Completed"
        )
        links = await sdk.speech_to_text_translate_job.get_download_links(
            job_id=job.job_id, files=["0.json"], ptu_id=3
        )
        assert "sig=" in links.download_urls["0.json"].file_url


async def test_the_sdk_parses_the_emulators_errors(tmp_path: Path) -> None:
    async with Emulator(api_key=KEY) as emu, _sdk(emu) as sdk:
        stt = sdk.speech_to_text_job
        # A broken business rule (keyterms need saaras:v4): 422 unprocessable_entity_error.
        with pytest.raises(sarvamai.UnprocessableEntityError) as rule:
            await stt.initialise(job_parameters={"model": "saaras:v3", "keyterms": ["Sarvam"]})
        assert rule.value.body["error"]["code"] == "unprocessable_entity_error"
        mine = msgspec.convert(rule.value.body, sarvam_async.ErrorMessage)
        assert mine.error.request_id and mine.error.code == "unprocessable_entity_error"
        # A schema failure: 422 invalid_request_error.
        with pytest.raises(sarvamai.UnprocessableEntityError) as schema:
            await stt.initialise(job_parameters={"num_speakers": "two"})
        assert schema.value.body["error"]["code"] == "invalid_request_error"


async def test_the_download_lag_reaches_the_sdk_as_our_classifier_expects(
    tmp_path: Path,
) -> None:
    async with Emulator(api_key=KEY, download_lag=30.0) as emu, _sdk(emu) as sdk:
        job = await sdk.speech_to_text_job.create_job(model="saaras:v3")
        await job.upload_files(_audio(tmp_path, "a.wav"))
        await job.start()
        assert (await job.wait_until_complete(poll_interval=0.05, timeout=10)).job_state == (
            "Completed"
        )
        with pytest.raises(sarvamai.BadRequestError) as info:  # the SDK does not wait it out
            await sdk.speech_to_text_job.get_download_links(job_id=job.job_id, files=["0.json"])
        body = info.value.body
        ours = OurBadRequest(body["error"]["message"], status_code=400)
        assert not_ready_state(ours) == "Pending"
