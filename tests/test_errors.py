"""Typed errors: one class per status, attributes, odd bodies, and no secret anywhere."""

from __future__ import annotations

import logging

import pytest

from sarvam_async import AsyncSarvam, RetryPolicy, errors
from sarvam_async.testing import Emulator

from .conftest import KEY

STATUS_CLASSES = [
    (400, errors.BadRequestError),
    (401, errors.UnauthorizedError),
    (403, errors.ForbiddenError),
    (404, errors.NotFoundError),
    (405, errors.MethodNotAllowedError),
    (409, errors.ConflictError),
    (413, errors.ContentTooLargeError),
    (418, errors.APIStatusError),
    (422, errors.UnprocessableEntityError),
    (429, errors.TooManyRequestsError),
    (500, errors.InternalServerError),
    (501, errors.InternalServerError),
    (502, errors.BadGatewayError),
    (503, errors.ServiceUnavailableError),
    (504, errors.GatewayTimeoutError),
]


@pytest.mark.parametrize(("status", "cls"), STATUS_CLASSES)
async def test_each_status_has_its_class(
    client: AsyncSarvam, emulator: Emulator, status: int, cls: type[errors.APIStatusError]
) -> None:
    emulator.fail_next("download-files", status=status, code="some_code", message="went wrong")
    with pytest.raises(cls) as info:
        await client.speech_to_text_job.get_download_links(
            job_id="j", files=["0.json"], retry=RetryPolicy.disabled()
        )
    err = info.value
    assert type(err) is cls
    assert err.status_code == status
    assert err.code == "some_code"
    assert err.message == "went wrong"
    assert err.request_id and err.request_id[:8].isdigit()
    assert err.attempts == 1
    text = str(err)
    assert str(status) in text and "went wrong" in text and err.request_id in text
    assert "/speech-to-text/job/v1/download-files" in text


async def test_real_404_and_403_from_the_emulator(emulator: Emulator) -> None:
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url) as c:
        with pytest.raises(errors.NotFoundError) as nf:
            await c.speech_to_text_job.get_status("no-such-job")
        assert nf.value.code == "not_found_error"
    async with AsyncSarvam(api_key="wrong-key-secret", base_url=emulator.url) as c:
        with pytest.raises(errors.ForbiddenError) as fb:
            await c.speech_to_text_job.get_status("x")
        assert fb.value.code == "invalid_api_key_error"
        assert "wrong-key-secret" not in str(fb.value) + repr(fb.value) + fb.value.body
        assert "SARVAM_API_KEY" in str(fb.value)  # says what to do
    assert len(emulator.calls("status")) == 2  # 403/404 are not retried


async def test_server_side_validation(client: AsyncSarvam, emulator: Emulator) -> None:
    with pytest.raises(errors.NotFoundError):
        await client.speech_to_text_job.start("missing-job")
    # a job that exists but has no uploads: the emulator refuses to start it
    init = await client.speech_to_text_job.initialise(job_parameters={})
    with pytest.raises(errors.BadRequestError) as info:
        await client.speech_to_text_job.start(init.job_id)
    assert info.value.code == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "ctype", "expect"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "text/html", "non-JSON answer (text/html)"),
        (b"", None, "empty answer"),
        (b'{"error": {"message": "trunc', "application/json", "unrecognised JSON"),
        (b'{"detail": "nope"}', "application/json", "unrecognised JSON"),
    ],
)
async def test_odd_error_bodies_still_typed(
    client: AsyncSarvam, emulator: Emulator, body: bytes, ctype: str | None, expect: str
) -> None:
    emulator.fail_next("status", status=502, body=body, content_type=ctype)
    with pytest.raises(errors.BadGatewayError) as info:
        await client.speech_to_text_job.get_status("j", retry=RetryPolicy.disabled())
    assert expect in info.value.message
    assert info.value.code is None
    assert info.value.body == body.decode()


async def test_bad_2xx_bodies_are_response_validation_errors(
    client: AsyncSarvam, emulator: Emulator
) -> None:
    emulator.fail_next("status", status=200, body=b'{"job_id": 5}', content_type="application/json")
    with pytest.raises(errors.ResponseValidationError) as info:
        await client.speech_to_text_job.get_status("j")
    assert info.value.json_path == "$.job_id"
    emulator.fail_next("status", status=200, body=b"<html>", content_type="text/html")
    with pytest.raises(errors.ResponseValidationError) as info2:
        await client.speech_to_text_job.get_status("j")
    assert info2.value.status_code == 200
    emulator.fail_next(
        "status",
        status=200,
        content_type="application/json",
        body=b'{"job_id":"j","job_state":"Running","storage_container_type":"Azure",'
        b'"job_details":[{"inputs":[{"file_name":"a","file_id":"0"}],"state":7}]}',
    )
    with pytest.raises(errors.ResponseValidationError) as info3:
        await client.speech_to_text_job.get_status("j")
    assert info3.value.json_path == "$.job_details[0].state"


async def test_unknown_fields_and_enum_values_decode(
    client: AsyncSarvam, emulator: Emulator
) -> None:
    emulator.fail_next(
        "status",
        status=200,
        content_type="application/json",
        body=b'{"job_id":"j","job_state":"Archived","storage_container_type":"S3",'
        b'"brand_new":{"x":1},"job_details":[{"inputs":[{"file_name":"a","file_id":"0"}],'
        b'"outputs":[],"state":"Quarantined","extra":true}]}',
    )
    status = await client.speech_to_text_job.get_status("j")
    assert status.job_state == "Archived" and not status.job_state.is_known
    assert not status.job_state.is_terminal
    assert status.storage_container_type == "S3"
    assert status.job_details[0].state == "Quarantined"


async def test_connection_refused_is_typed() -> None:
    async with AsyncSarvam(
        api_key=KEY, base_url="http://127.0.0.1:9", retry=RetryPolicy.disabled()
    ) as c:
        with pytest.raises(errors.APIConnectionError) as info:
            await c.speech_to_text_job.get_status("j")
    assert info.value.request_sent is False
    assert "base_url" in str(info.value)


async def test_dropped_connection_is_typed(client: AsyncSarvam, emulator: Emulator) -> None:
    emulator.fail_next("download-files", drop=True)
    with pytest.raises(errors.APIConnectionError) as info:
        await client.speech_to_text_job.get_download_links(
            job_id="j", files=["0.json"], retry=RetryPolicy.disabled()
        )
    assert not isinstance(info.value, errors.APITimeoutError)


async def test_key_never_in_repr_logs_or_errors(
    emulator: Emulator, caplog: pytest.LogCaptureFixture, policy: RetryPolicy
) -> None:
    caplog.set_level(logging.DEBUG)
    client = AsyncSarvam(api_key=KEY, base_url=emulator.url, retry=policy, adaptive_rate=False)
    async with client:
        emulator.fail_next("status", count=3, status=503, retry_after_ms=5)
        emulator.fail_next("status", status=403)
        with pytest.raises(errors.ForbiddenError) as info:
            await client.speech_to_text_job.get_status("j")
        job = await client.speech_to_text_job.get_job("j")
        seen = " ".join(
            [repr(client), str(client.__dict__.get("base_url")), repr(job), str(info.value)]
            + [repr(info.value), info.value.body, str(info.value.headers)]
            + [r.getMessage() for r in caplog.records]
        )
    assert KEY not in seen
    assert len([r for r in caplog.records if "retrying" in r.getMessage()]) == 3


async def test_no_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SARVAM_API_KEY", raising=False)
    with pytest.raises(errors.ConfigurationError) as info:
        AsyncSarvam()
    assert "SARVAM_API_KEY" in str(info.value)


def test_error_tree_is_drawn_in_docstring() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        assert name in doc, name
        assert issubclass(getattr(errors, name), errors.SarvamError)


async def test_signed_urls_in_bodies_are_redacted(client: AsyncSarvam, emulator: Emulator) -> None:
    body = b'{"job_id": 1, "url": "https://acct.blob.example/c/0.json?sv=1&sig=SECRETSIG"}'
    emulator.fail_next("status", status=200, body=body)
    with pytest.raises(errors.ResponseValidationError) as info:
        await client.speech_to_text_job.get_status("j")
    assert "SECRETSIG" not in info.value.body and "0.json?<redacted>" in info.value.body
    emulator.fail_next("status", status=500, body=body)
    with pytest.raises(errors.InternalServerError) as info2:
        await client.speech_to_text_job.get_status("j")
    assert "SECRETSIG" not in info2.value.body + str(info2.value)
