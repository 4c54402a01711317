"""Every endpoint of both flows, against the emulator: paths, bodies, query, decoding."""

from __future__ import annotations

import json

import aiohttp
import pytest

from sarvam_async import (
    AsyncSarvam,
    BulkJobCallback,
    FilesDownloadResponse,
    JobState,
    JobStatusResponse,
    SpeechToTextJobParameters,
    SpeechToTextTranslateJobParameters,
    StorageContainerType,
)
from sarvam_async.errors import InvalidParameterError, MethodNotAllowedError, NotFoundError
from sarvam_async.testing import Emulator

from .conftest import KEY


async def _put(url: str, data: bytes) -> int:
    async with (
        aiohttp.ClientSession() as s,
        s.put(url, data=data, headers={"x-ms-blob-type": "BlockBlob"}) as r,
    ):
        return r.status


async def test_stt_flow_every_endpoint(client: AsyncSarvam, emulator: Emulator) -> None:
    res = client.speech_to_text_job
    init = await res.initialise(
        job_parameters=SpeechToTextJobParameters(language_code="hi-IN", model="saaras:v3")
    )
    assert init.job_state is JobState.ACCEPTED
    assert init.storage_container_type is StorageContainerType.AZURE
    assert init.job_parameters["language_code"] == "hi-IN"

    links = await res.get_upload_links(job_id=init.job_id, files=["a.wav", "b.wav"])
    assert set(links.upload_urls) == {"a.wav", "b.wav"}
    for details in links.upload_urls.values():
        assert await _put(details.file_url, b"RIFF" + b"\0" * 100) == 201

    started = await res.start(init.job_id)
    assert isinstance(started, JobStatusResponse)
    assert started.job_state is JobState.PENDING

    status = await res.get_status(init.job_id)
    assert status.job_state is JobState.COMPLETED
    assert status.total_files == 2 and status.successful_files_count == 2
    outputs = [d.outputs[0].file_name for d in status.job_details]
    assert sorted(outputs) == ["0.json", "1.json"]

    dl = await res.get_download_links(job_id=init.job_id, files=outputs)
    assert isinstance(dl, FilesDownloadResponse)
    assert set(dl.download_urls) == set(outputs)

    routes = [r.route for r in emulator.calls(flow="stt")]
    assert routes == ["initiate", "upload-files", "start", "status", "download-files"]
    for r in emulator.calls(flow="stt"):
        assert r.headers["api-subscription-key"] == KEY
    # storage traffic never carries the key
    assert all("api-subscription-key" not in r.headers for r in emulator.calls(flow="storage"))


async def test_translate_flow_and_ptu_placement(client: AsyncSarvam, emulator: Emulator) -> None:
    res = client.speech_to_text_translate_job
    init = await res.initialise(
        job_parameters=SpeechToTextTranslateJobParameters(prompt="medical"), ptu_id=7
    )
    links = await res.get_upload_links(job_id=init.job_id, files=["x.mp3"], ptu_id=7)
    assert await _put(links.upload_urls["x.mp3"].file_url, b"ID3" + b"\1" * 64) == 201
    await res.start(init.job_id, ptu_id=7)
    status = await res.get_status(init.job_id)
    assert status.job_state.is_terminal
    await res.get_download_links(job_id=init.job_id, files=["0.json"], ptu_id=7)
    calls = emulator.calls(flow="translate")
    by_route = {r.route: r.query for r in calls}
    assert by_route == {
        "initiate": {"ptu_id": "7"},
        "upload-files": {"ptu_id": "7"},
        "start": {"ptu_id": "7"},
        "status": {},
        "download-files": {"ptu_id": "7"},
    }
    assert calls[0].path == "/speech-to-text-translate/job/v1"


async def test_stt_start_ptu_id_and_none_omitted(client: AsyncSarvam, emulator: Emulator) -> None:
    res = client.speech_to_text_job
    init = await res.initialise(job_parameters={})
    links = await res.get_upload_links(job_id=init.job_id, files=["a.wav"])
    await _put(links.upload_urls["a.wav"].file_url, b"x" * 10)
    await res.start(init.job_id, ptu_id=3)
    assert emulator.calls("start")[0].query == {"ptu_id": "3"}
    assert emulator.calls("initiate")[0].query == {}
    assert emulator.calls("start")[0].body == b""  # start and status carry no body
    assert emulator.calls("status") == [] or emulator.calls("status")[0].body == b""


async def test_stt_job_handle_sends_ptu_id_to_start_only(
    client: AsyncSarvam, emulator: Emulator, tmp_path: object
) -> None:
    from pathlib import Path

    audio = Path(str(tmp_path)) / "a.wav"
    audio.write_bytes(b"RIFF" + bytes(10))
    job = await client.speech_to_text_job.create_job(ptu_id=5)
    await job.upload_files([audio])
    await job.start()
    await job.download_outputs(Path(str(tmp_path)) / "out")
    queries = {r.route: r.query for r in emulator.requests if r.flow == "stt"}
    assert queries["start"] == {"ptu_id": "5"}
    assert all(q == {} for route, q in queries.items() if route != "start")


async def test_unset_fields_are_omitted_never_null(client: AsyncSarvam, emulator: Emulator) -> None:
    await client.speech_to_text_job.initialise(
        job_parameters=SpeechToTextJobParameters(language_code="ta-IN", with_diarization=True)
    )
    body = json.loads(emulator.calls("initiate")[0].body)
    assert body == {"job_parameters": {"language_code": "ta-IN", "with_diarization": True}}
    await client.speech_to_text_job.initialise(
        job_parameters={"model": "saaras:v3"},
        callback=BulkJobCallback(url="https://example.invalid/hook", auth_token="tok"),
    )
    body = json.loads(emulator.calls("initiate")[1].body)
    assert body == {
        "job_parameters": {"model": "saaras:v3"},
        "callback": {"url": "https://example.invalid/hook", "auth_token": "tok"},
    }


async def test_job_id_is_url_escaped(client: AsyncSarvam, emulator: Emulator) -> None:
    with pytest.raises(NotFoundError) as info:
        await client.speech_to_text_job.get_status("../a b/?x=1#y")
    assert info.value.status_code == 404
    [call] = emulator.calls("status")
    assert call.route == "status"  # the whole id stayed one path segment
    assert call.path == "/speech-to-text/job/v1/..%2Fa%20b%2F%3Fx=1%23y/status"


async def test_download_files_get_is_405(emulator: Emulator) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.get(
            emulator.url + "/speech-to-text/job/v1/download-files",
            headers={"api-subscription-key": KEY},
        ) as r,
    ):
        assert r.status == 405


async def test_405_maps_to_method_not_allowed(client: AsyncSarvam, emulator: Emulator) -> None:
    emulator.fail_next("status", status=405)
    with pytest.raises(MethodNotAllowedError):
        await client.speech_to_text_job.get_status("job")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"files": []}, "files"),
        ({"files": [f"{i}.wav" for i in range(21)]}, "files"),
        ({"files": ["a.wav", "a.wav"]}, "files"),
        ({"files": ["../a.wav"]}, "files"),
        ({"files": "a.wav"}, "files"),
        ({"job_id": "", "files": ["a.wav"]}, "job_id"),
    ],
)
async def test_bad_upload_requests_fail_locally(
    client: AsyncSarvam, emulator: Emulator, kwargs: dict[str, object], field: str
) -> None:
    args: dict[str, object] = {"job_id": "j", **kwargs}
    with pytest.raises(InvalidParameterError) as info:
        await client.speech_to_text_job.get_upload_links(**args)  # type: ignore[arg-type]
    assert info.value.field == field
    assert isinstance(info.value, ValueError)
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"num_speakers": 0}, "job_parameters.num_speakers"),
        ({"keyterms": ["x"] * 51, "model": "saaras:v4"}, "job_parameters.keyterms"),
        ({"keyterms": ["x" * 65], "model": "saaras:v4"}, "job_parameters.keyterms"),
        ({"keyterms": ["x"], "model": "saaras:v3"}, "job_parameters.keyterms"),
        ({"mode": "translate", "model": "saarika:v2.5"}, "job_parameters.mode"),
    ],
)
async def test_bad_job_parameters_fail_locally(
    client: AsyncSarvam, emulator: Emulator, params: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidParameterError) as info:
        await client.speech_to_text_job.initialise(job_parameters=params)
    assert field in str(info.value)
    with pytest.raises(InvalidParameterError):
        SpeechToTextJobParameters(**params)  # type: ignore[arg-type]
    assert emulator.requests == []


async def test_unknown_parameter_key_and_bad_ptu_fail_locally(
    client: AsyncSarvam, emulator: Emulator
) -> None:
    with pytest.raises(InvalidParameterError) as info:
        await client.speech_to_text_job.initialise(job_parameters={"hotwords": ["x"]})
    assert info.value.field == "job_parameters"
    with pytest.raises(InvalidParameterError) as info:
        await client.speech_to_text_translate_job.initialise(
            job_parameters={},
            ptu_id="1",  # type: ignore[arg-type]
        )
    assert info.value.field == "ptu_id"
    assert emulator.requests == []


async def test_per_call_timeout(client: AsyncSarvam, emulator: Emulator) -> None:
    from sarvam_async import RetryPolicy
    from sarvam_async.errors import APITimeoutError

    emulator.fail_next("status", delay=2.0)
    with pytest.raises(APITimeoutError) as info:
        await client.speech_to_text_job.get_status("j", timeout=0.2, retry=RetryPolicy.disabled())
    assert info.value.attempts == 1


async def test_per_call_timeout_none_means_no_limit(emulator: Emulator) -> None:
    """``timeout=None`` on a call lifts the limit; leaving it out keeps the client's."""
    from sarvam_async import USE_CLIENT_DEFAULT, RetryPolicy
    from sarvam_async.errors import APITimeoutError, NotFoundError

    once = RetryPolicy.disabled()
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, timeout=0.05, retry=once) as c:
        emulator.fail_next("status", delay=0.5)
        with pytest.raises(APITimeoutError):
            await c.speech_to_text_job.get_status("j")
        emulator.fail_next("status", delay=0.5)
        with pytest.raises(APITimeoutError):
            await c.speech_to_text_job.get_status("j", timeout=USE_CLIENT_DEFAULT)
        emulator.fail_next("status", delay=0.5)
        with pytest.raises(NotFoundError):  # answered, however late
            await c.speech_to_text_job.get_status("j", timeout=None)
