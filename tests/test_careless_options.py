"""Careless options fail where they were passed, typed, naming the option, never the key.

The client's constructor raises ConfigurationError; a call's argument raises
InvalidParameterError before anything is sent. Neither lets a TypeError, an AttributeError
or aiohttp's ValueError out of the library.
"""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sarvam_async import (
    AsyncSarvam,
    CallbackConfig,
    CallbackReceiver,
    RetryPolicy,
    SpeechToTextJobParameters,
    errors,
)
from sarvam_async.models import MAX_FILES_PER_JOB, BulkJobCallback
from sarvam_async.testing import Emulator

from .conftest import KEY


def _wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + b"\0" * 64)
    return path


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"api_key": KEY + "\n"}, "line break"),
        ({"api_key": " " + KEY}, "line break"),
        ({"api_key": "test\x00key"}, "control"),
        ({"api_key": "kéy-0123"}, "non-ASCII"),
        ({"api_key": 123}, "must be a str"),
        ({"headers": [1]}, "headers"),
        ({"headers": {"X-Trace": "v\r\nX-Evil: 1"}}, "X-Trace"),
        ({"headers": {"bad name": "v"}}, "header name"),
        ({"headers": {"X-A:": "v"}}, "header name"),
        ({"timeout": "5"}, "timeout"),
        ({"timeout": math.nan}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": 10**400 * -1}, "timeout"),
        ({"max_connections": "10"}, "max_connections"),
        ({"max_connections": True}, "max_connections"),
        ({"max_response_bytes": None}, "max_response_bytes"),
        ({"max_transcript_bytes": 0}, "max_transcript_bytes"),
        ({"download_lag_timeout": "1"}, "download_lag_timeout"),
        ({"storage_timeout": "60"}, "storage_timeout"),
        ({"retry": "x"}, "retry"),
        ({"base_url": 123}, "base_url"),
        ({"session": "x"}, "session"),
    ],
)
def test_a_bad_option_is_a_configuration_error_naming_it(
    kwargs: dict[str, Any], named: str
) -> None:
    kwargs = {"api_key": KEY, "base_url": "http://127.0.0.1:1", **kwargs}
    with pytest.raises(errors.ConfigurationError, match=named) as caught:
        AsyncSarvam(**kwargs)
    assert KEY not in str(caught.value)
    assert "v\r\n" not in str(caught.value)  # a header's value may be a secret: never shown


def test_a_refused_header_name_is_not_quoted_it_may_hold_a_token() -> None:
    with pytest.raises(errors.ConfigurationError, match="header name") as caught:
        AsyncSarvam(api_key=KEY, headers={"Authorization: Bearer tok_SECRET": ""})
    assert "tok_SECRET" not in str(caught.value)


async def test_options_that_always_worked_still_do(emulator: Emulator) -> None:
    # whole numbers given as floats, Fractions, header values with a tab or obs-text,
    # retrying until the deadline, numbers past float's range: all valid, all kept
    async with AsyncSarvam(
        api_key=KEY,
        base_url=emulator.url,
        headers={"X-User": "José", "X-Trace": "a\tb"},
        max_connections=50.0,  # type: ignore[arg-type]
        max_response_bytes=64e6,  # type: ignore[arg-type]
        max_transcript_bytes=64e6,  # type: ignore[arg-type]
        timeout=Fraction(30),  # type: ignore[arg-type]
        storage_stall_timeout=10**400,
        retry=RetryPolicy(max_attempts=math.inf, deadline=5),  # type: ignore[arg-type]
    ) as c:
        emulator.fail_next("status", 2, status=503)
        with pytest.raises(errors.NotFoundError):
            await c.speech_to_text_job.get_status("j", timeout=0.5)
        with pytest.raises(errors.NotFoundError):
            await c.speech_to_text_job.get_status("j", timeout=10**400)
    sent = emulator.calls("status")[-1].headers
    assert sent["x-user"] == "José" and sent["x-trace"] == "a\tb"
    assert len(emulator.calls("status")) == 4  # two 503s ridden out, then two answers
    assert RetryPolicy(max_attempts=3.0).max_attempts == 3  # type: ignore[arg-type]
    with pytest.raises(errors.ConfigurationError, match="safety_poll"):
        CallbackConfig("https://hooks.example.com/cb", safety_poll="5")  # type: ignore[arg-type]


def test_a_key_read_from_the_environment_with_its_newline_is_refused_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SARVAM_API_KEY", KEY + "\n")
    with pytest.raises(errors.ConfigurationError, match="SARVAM_API_KEY") as caught:
        AsyncSarvam(base_url="http://127.0.0.1:1")
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": "3"}, {"max_attempts": 0}, {"deadline": math.nan}, {"max_delay": "1"}],
)
def test_a_bad_retry_policy_is_a_configuration_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(errors.ConfigurationError, match="RetryPolicy"):
        RetryPolicy(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": math.nan}, "timeout"),
        ({"timeout": "1"}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"retry": 3}, "retry"),
    ],
)
async def test_a_bad_call_option_is_refused_before_sending(
    client: AsyncSarvam, emulator: Emulator, kwargs: dict[str, Any], field: str
) -> None:
    # before: a timeout of 0 went through eight attempts of backoff (45 s) sending nothing
    with pytest.raises(errors.InvalidParameterError) as caught:
        await asyncio.wait_for(client.speech_to_text_job.get_status("j", **kwargs), 5)
    assert caught.value.field == field
    assert emulator.requests == []


async def test_file_lists_that_are_not_lists_of_names_are_refused_before_sending(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    resource = client.speech_to_text_job
    for call in (resource.get_upload_links, resource.get_download_links):
        for files, field in ((None, "files"), ([1], "files[0]"), (["a.wav", 2], "files[1]")):
            with pytest.raises(errors.InvalidParameterError) as caught:
                await call(job_id="j", files=files)  # type: ignore[arg-type]
            assert caught.value.field == field
    job = await resource.get_job("j")
    with pytest.raises(errors.InvalidParameterError, match="output_dir"):
        await job.download_outputs(None)  # type: ignore[arg-type]
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"output_dir": None}, "output_dir"),
        ({"output_dir": 123}, "output_dir"),
        ({"manifest": 123}, "manifest"),
        ({"callback": "https://hooks.example.com/cb"}, "callback"),
    ],
)
async def test_bad_run_options_are_refused_before_any_request(
    client: AsyncSarvam,
    emulator: Emulator,
    tmp_path: Path,
    kwargs: dict[str, Any],
    field: str,
) -> None:
    kwargs = {"output_dir": tmp_path / "out", **kwargs}
    audio = _wav(tmp_path / "a.wav")
    with pytest.raises(errors.InvalidParameterError) as caught:
        async for _ in client.transcribe_files([audio], **kwargs):
            pass
    assert caught.value.field == field
    assert emulator.requests == []


async def test_a_callback_that_is_not_a_config_is_refused_where_it_is_passed(
    client: AsyncSarvam, emulator: Emulator
) -> None:
    with pytest.raises(errors.ConfigurationError, match="CallbackReceiver"):
        CallbackConfig("https://hooks.example.com/cb", "notareceiver")  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidParameterError, match="callback"):
        await client.speech_to_text_job.get_job("j", callback="x")  # type: ignore[arg-type]
    job = await client.speech_to_text_job.get_job("j")
    with pytest.raises(errors.InvalidParameterError, match="callback"):
        await job.wait_until_complete(callback="x")  # type: ignore[arg-type]
    assert emulator.requests == []


async def test_a_closed_client_refuses_a_run_and_says_it_is_closed(
    emulator: Emulator, tmp_path: Path
) -> None:
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url) as c:
        pass
    with pytest.raises(errors.ClientClosedError, match="is closed") as caught:
        await c.speech_to_text_job.get_status("j")
    assert "waited" not in str(caught.value)  # it never waited: the client was closed
    with pytest.raises(errors.ClientClosedError, match="is closed"):
        async for _ in c.transcribe_files([_wav(tmp_path / "a.wav")], output_dir=tmp_path):
            pass
    assert emulator.requests == []


@pytest.mark.sarvam_emulator(job_duration=0.2)
async def test_a_client_closed_mid_run_stops_the_run_with_client_closed_error(
    sarvam_emulator: Emulator, sarvam_api_key: str, tmp_path: Path
) -> None:
    # before: every remaining file came out failed, each with ClientClosedError, and the
    # loop went on as if the files themselves had failed
    paths = [_wav(tmp_path / f"a{i}.wav") for i in range(MAX_FILES_PER_JOB + 5)]  # two jobs
    client = AsyncSarvam(api_key=sarvam_api_key, base_url=sarvam_emulator.url)
    seen = 0
    with pytest.raises(errors.ClientClosedError):
        async for _ in client.transcribe_files(
            paths, output_dir=tmp_path / "out", max_concurrent_jobs=1, poll_interval=0.01
        ):
            seen += 1
            await client.aclose()
    assert seen <= MAX_FILES_PER_JOB  # the first job's outcomes, then the error
    await client.aclose()


async def test_waiting_on_a_job_nobody_started_says_so_at_once(
    client: AsyncSarvam, emulator: Emulator
) -> None:
    # before: it polled until its timeout (or for ever), then said the job "keeps running"
    job = await client.speech_to_text_job.create_job()
    with pytest.raises(errors.JobError, match="never started") as caught:
        await asyncio.wait_for(job.wait_until_complete(timeout=600), 10)
    assert caught.value.job_id == job.job_id
    assert len(emulator.calls("status")) == 1
    listening = CallbackConfig("http://127.0.0.1:9/cb")
    with pytest.raises(errors.JobError, match="never started"):
        await asyncio.wait_for(job.wait_until_complete(timeout=600, callback=listening), 10)


@pytest.mark.sarvam_emulator(job_duration=0.05)
async def test_a_watcher_attached_by_id_waits_for_the_job_someone_else_starts(
    sarvam_emulator: Emulator, sarvam_api_key: str, tmp_path: Path
) -> None:
    async with AsyncSarvam(api_key=sarvam_api_key, base_url=sarvam_emulator.url) as c:
        creator = await c.speech_to_text_job.create_job()
        watcher = await c.speech_to_text_job.get_job(creator.job_id)
        waiting = asyncio.ensure_future(watcher.wait_until_complete(poll_interval=0.01))
        await asyncio.sleep(0.1)  # the watcher has seen it Accepted, and waits on
        assert not waiting.done()
        await creator.upload_files([_wav(tmp_path / "a.wav")])
        await creator.start()
        final = await asyncio.wait_for(waiting, 30)
    assert final.job_state.is_terminal


async def test_a_session_passed_in_is_checked_for_its_type_only(emulator: Emulator) -> None:
    async with (
        aiohttp.ClientSession() as session,
        AsyncSarvam(api_key=KEY, base_url=emulator.url, session=session) as c,
    ):
        with pytest.raises(errors.NotFoundError):
            await c.speech_to_text_job.get_status("j")


async def test_numbers_of_any_real_kind_are_used_converted(
    emulator: Emulator, tmp_path: Path
) -> None:
    # before: a Decimal was refused, and a Fraction or a huge int passed the checks only
    # to fail later as an untyped TypeError or OverflowError where the raw value was used
    policy = RetryPolicy(deadline=10**400, initial_delay=Decimal("0.01"))  # type: ignore[arg-type]
    assert policy.deadline == math.inf and policy.initial_delay == 0.01
    async with AsyncSarvam(
        api_key=KEY,
        base_url=emulator.url,
        retry=policy,
        download_lag_timeout=Decimal("5"),  # type: ignore[arg-type]
        max_connections=Decimal(10),  # type: ignore[arg-type]
    ) as c:
        emulator.fail_next("status", 1, status=503)
        with pytest.raises(errors.NotFoundError):
            await c.speech_to_text_job.get_status("j")
        job = await c.speech_to_text_job.create_job()
        watcher = await c.speech_to_text_job.get_job(job.job_id)
        with pytest.raises(errors.JobTimeoutError):
            await watcher.wait_until_complete(
                timeout=Fraction(1, 2),  # type: ignore[arg-type]
                poll_interval=Fraction(1, 20),  # type: ignore[arg-type]
            )
    with pytest.raises(errors.ConfigurationError, match="whole number"):
        AsyncSarvam(api_key=KEY, max_connections=2.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"retry_statuses": "503"},  # before: the set {"5", "0", "3"}: 503 never retried
        {"retry_statuses": 5},
        {"clock": 5},
        {"sleep": None},
    ],
)
def test_a_retry_policy_field_of_the_wrong_kind_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(errors.ConfigurationError, match="RetryPolicy"):
        RetryPolicy(**kwargs)


async def test_paths_names_and_ids_the_api_cannot_carry_are_refused_before_sending(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    # before: ValueError (embedded null byte) and UnicodeEncodeError escaped, or a job
    # failed "unexpectedly"; a lone string of names was spread into one name per letter
    audio = [_wav(tmp_path / "a.wav"), _wav(tmp_path / "b.wav")]
    undecodable = "\udcfe.wav"  # what os.fsdecode makes of a name that is not UTF-8
    resource = client.speech_to_text_job
    with pytest.raises(errors.InvalidParameterError, match="NUL"):
        async for _ in client.transcribe_files(audio, output_dir=str(tmp_path) + "/o\x00"):
            pass
    with pytest.raises(errors.InvalidParameterError, match="NUL"):
        async for _ in client.transcribe_files([str(audio[0]) + "\x00"], output_dir=tmp_path):
            pass
    with pytest.raises(errors.InvalidParameterError, match="Unicode"):
        await resource.get_upload_links(job_id="j", files=[undecodable])
    with pytest.raises(errors.InvalidParameterError, match="job_id"):
        await resource.get_status("\ud800")
    job = await resource.get_job("j")
    with pytest.raises(errors.InvalidParameterError, match="names"):
        await job.upload_files(audio, names="ab")
    with pytest.raises(errors.InvalidParameterError, match=r"files\[0\]"):
        await job.upload_files(audio[:1], names=[5])  # type: ignore[list-item]
    assert emulator.requests == []


def test_urls_with_credentials_are_never_shown_and_malformed_ones_are_typed() -> None:
    for make in (
        lambda url: AsyncSarvam(api_key=KEY, base_url=url),
        lambda url: CallbackConfig(url),
    ):
        with pytest.raises(errors.ConfigurationError) as caught:
            make("ftp://user:SECRETPW@h.example/cb?token=SECRETTOK")
        assert "SECRET" not in str(caught.value)
        with pytest.raises(errors.ConfigurationError, match="malformed"):
            make("https://[::1")  # before: urllib's ValueError
        with pytest.raises(errors.ConfigurationError, match=r"http\(s\) URL"):
            make("https://h.example:99999/cb")  # before: accepted, failing at the first call
    config = CallbackConfig("https://user:SECRETPW@h.example/cb?sig=SECRETSIG")
    assert "SECRET" not in repr(config)


async def test_a_receiver_takes_raw_header_values_and_types_a_bad_call(
    emulator: Emulator,
) -> None:
    receiver = CallbackReceiver()
    raw = {"x-sarvam-job-callback-token": receiver.token.encode()}  # an ASGI server's bytes
    with pytest.raises(errors.CallbackPayloadError):  # past the token: the body is checked
        receiver.receive(b"{}", raw)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidParameterError, match="headers"):
        receiver.receive(b"{}", None)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidParameterError, match="body"):
        receiver.receive(None, {"x-sarvam-job-callback-token": receiver.token})  # type: ignore[arg-type]
    with pytest.raises(errors.ConfigurationError, match="max_body_bytes"):
        CallbackReceiver(max_body_bytes="1")  # type: ignore[arg-type]


async def test_wrong_kinds_of_status_parameters_and_limiters_are_typed(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    # before: AttributeError ('job_state', 'attach') and msgspec's TypeError escaped
    job = await client.speech_to_text_job.get_job("j")
    with pytest.raises(errors.InvalidParameterError, match="status"):
        await job.download_outputs(tmp_path, status=42)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidParameterError, match="status"):
        await job.get_file_results(42)  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidParameterError, match="job_parameters"):
        await client.speech_to_text_job.create_job(
            job_parameters=SpeechToTextJobParameters(with_timestamps=object())  # type: ignore[arg-type]
        )
    assert emulator.requests == []
    with pytest.raises(errors.ConfigurationError, match="rate_limiter"):
        AsyncSarvam(api_key=KEY, rate_limiter=5)  # type: ignore[arg-type]


def test_a_redis_limiter_is_checked_where_it_is_built() -> None:
    # before: a bad URL passed, then a public call raised redis-py's ValueError; other
    # options raised TypeError, or were taken and left the limiter silently unusable
    from sarvam_async import RedisRateLimiter

    for kwargs in (
        {"redis": "redis://:SECRETPW@127.0.0.1:notaport/0"},
        {"redis": "http://host:6379"},
        {"redis": 12345},
        {"redis": "redis://127.0.0.1", "key_ttl": "10"},
        {"redis": "redis://127.0.0.1", "key_ttl": math.inf},
        {"redis": "redis://127.0.0.1", "account": 123},
        {"redis": "redis://127.0.0.1", "rate_limit": 10**400},
        {"redis": "redis://127.0.0.1", "clock": "x"},
    ):
        with pytest.raises(errors.ConfigurationError) as caught:
            RedisRateLimiter(**kwargs)
        assert "SECRETPW" not in str(caught.value)
    with pytest.raises(errors.ConfigurationError, match="rate_limit"):
        AsyncSarvam(api_key=KEY, rate_limit=10**400)  # before: OverflowError


async def test_the_key_a_server_quotes_back_is_scrubbed(emulator: Emulator) -> None:
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url) as c:
        emulator.fail_next("status", 1, status=403, message=f"Invalid API key {KEY}")
        with pytest.raises(errors.ForbiddenError) as caught:
            await c.speech_to_text_job.get_status("j")
    assert KEY not in str(caught.value) and KEY not in caught.value.body
    assert "SECRET" not in repr(
        BulkJobCallback(url="https://h.example/cb?token=SECRETQ", auth_token="x")
    )


@pytest.mark.parametrize("poll", [math.inf, 1e-300])
def test_a_safety_poll_that_never_comes_or_busy_polls_is_refused(poll: float) -> None:
    with pytest.raises(errors.ConfigurationError, match="safety_poll"):
        CallbackConfig("https://hooks.example.com/cb", safety_poll=poll)


async def test_an_empty_path_is_not_the_current_folder(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    with pytest.raises(errors.InvalidParameterError, match="empty path"):
        async for _ in client.transcribe_files([_wav(tmp_path / "a.wav")], output_dir=""):
            pass
    assert emulator.requests == []


@pytest.mark.parametrize(
    "kwargs",
    [{"url_ttl": math.nan}, {"url_ttl": math.inf}, {"latency": math.nan}, {"job_duration": -1}],
)
def test_an_emulator_setting_that_would_break_it_is_refused(kwargs: dict[str, Any]) -> None:
    # before: url_ttl=nan or inf made every upload-files call a 500; NaN latencies passed
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Emulator(**kwargs)
    emulator = Emulator()
    with pytest.raises(ValueError):
        setattr(emulator, next(iter(kwargs)), next(iter(kwargs.values())))
