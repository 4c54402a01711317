"""Tests of the batch-API emulator itself, driven with raw aiohttp (no client library)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import time
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web

from sarvam_async.testing import Emulator, ManualClock

KEY = "test-key"
STT = "/speech-to-text/job/v1"
TRANSLATE = "/speech-to-text-translate/job/v1"
REQUEST_ID = re.compile(
    r"^\d{8}_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)
JSON_CT = {"Content-Type": "application/json"}
BLOB = {"x-ms-blob-type": "BlockBlob", "Content-Type": "audio/wav"}


class Reply:
    """Status, headers and decoded body of one answer."""

    def __init__(self, status: int, headers: Any, raw: bytes) -> None:
        self.status = status
        self.headers = headers
        self.raw = raw

    @property
    def json(self) -> Any:
        import json

        return json.loads(self.raw)


class Api:
    """Minimal raw HTTP helper for one emulator and flow."""

    def __init__(self, session: aiohttp.ClientSession, emu: Emulator, prefix: str = STT) -> None:
        self.session = session
        self.emu = emu
        self.prefix = prefix

    async def call(
        self,
        method: str,
        suffix: str = "",
        *,
        json: Any = None,
        data: Any = None,
        key: str | None = KEY,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        hdrs = dict(headers or {})
        if key is not None:
            hdrs["api-subscription-key"] = key
        async with self.session.request(
            method,
            self.emu.url + self.prefix + suffix,
            json=json,
            data=data,
            params=params,
            headers=hdrs,
        ) as resp:
            return Reply(resp.status, resp.headers, await resp.read())

    async def raw(self, method: str, url: str, **kwargs: Any) -> Reply:
        async with self.session.request(method, url, **kwargs) as resp:
            return Reply(resp.status, resp.headers, await resp.read())

    async def initiate(self, params: dict[str, Any] | None = None, **kw: Any) -> str:
        r = await self.call("POST", json={"job_parameters": params or {}}, **kw)
        assert r.status == 202, r.raw
        return str(r.json["job_id"])

    async def upload_urls(self, job_id: str, names: list[str]) -> dict[str, Any]:
        r = await self.call("POST", "/upload-files", json={"job_id": job_id, "files": names})
        assert r.status == 200, r.raw
        return dict(r.json["upload_urls"])

    async def put(self, url: str, data: bytes, headers: dict[str, str] | None = None) -> Reply:
        return await self.raw("PUT", url, data=data, headers=BLOB if headers is None else headers)

    async def job(
        self,
        files: dict[str, bytes],
        params: dict[str, Any] | None = None,
        *,
        start: bool = True,
    ) -> str:
        job_id = await self.initiate(params)
        urls = await self.upload_urls(job_id, list(files))
        for name, content in files.items():
            assert (await self.put(urls[name]["file_url"], content)).status == 201
        if start:
            r = await self.call("POST", f"/{job_id}/start")
            assert r.status == 200, r.raw
        return job_id

    async def status(self, job_id: str) -> dict[str, Any]:
        r = await self.call("GET", f"/{job_id}/status")
        assert r.status == 200, r.raw
        return dict(r.json)

    async def outputs(self, job_id: str, names: list[str]) -> dict[str, Any]:
        r = await self.call("POST", "/download-files", json={"job_id": job_id, "files": names})
        assert r.status == 200, r.raw
        out = {}
        for name, entry in r.json["download_urls"].items():
            got = await self.raw("GET", entry["file_url"])
            assert got.status == 200
            assert got.headers["Content-Type"] == "application/json"
            assert int(got.headers["Content-Length"]) == len(got.raw)
            out[name] = got.json
        return out


def assert_envelope(r: Reply, status: int, code: str) -> dict[str, Any]:
    assert r.status == status, r.raw
    assert r.headers["Content-Type"].startswith("application/json")
    err = r.json["error"]
    assert err["code"] == code
    assert isinstance(err["message"], str) and err["message"]
    assert REQUEST_ID.match(err["request_id"])
    assert r.headers["x-request-id"] == err["request_id"]
    return dict(err)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_key=KEY) as e:
        yield e


@pytest.fixture
def api(session: aiohttp.ClientSession, emu: Emulator) -> Api:
    return Api(session, emu)


# -- happy paths ---------------------------------------------------------------------------


async def test_url_and_lifecycle() -> None:
    emu = Emulator()
    with pytest.raises(RuntimeError):
        _ = emu.url
    await emu.start()
    try:
        assert re.match(r"^http://127\.0\.0\.1:\d+$", emu.url)
        assert emu.port > 0
        with pytest.raises(RuntimeError):
            await emu.start()
    finally:
        await emu.close()
        await emu.close()


async def test_stt_full_flow(api: Api, emu: Emulator) -> None:
    params = {
        "language_code": "unknown",
        "model": "saaras:v3",
        "with_timestamps": True,
        "with_diarization": True,
        "num_speakers": 3,
        "custom_extra": {"kept": True},
    }
    r = await api.call("POST", json={"job_parameters": params, "callback": None})
    assert r.status == 202
    assert REQUEST_ID.match(r.headers["x-request-id"])
    init = r.json
    job_id = init["job_id"]
    assert re.match(
        r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", job_id
    )
    assert init == {
        "job_id": job_id,
        "storage_container_type": "Azure",
        "job_parameters": params,
        "job_state": "Accepted",
    }

    r = await api.call(
        "POST", "/upload-files", json={"job_id": job_id, "files": ["b b.wav", "a.mp3"]}
    )
    assert r.status == 200
    up = r.json
    assert up["job_id"] == job_id and up["job_state"] == "Accepted"
    assert up["storage_container_type"] == "Azure"
    assert set(up["upload_urls"]) == {"b b.wav", "a.mp3"}
    url = up["upload_urls"]["b b.wav"]["file_url"]
    assert url.startswith(emu.url + f"/storage/{job_id}/input/b%20b.wav?se=")
    assert isinstance(up["upload_urls"]["b b.wav"]["file_metadata"], dict)

    contents = {"b b.wav": b"first audio", "a.mp3": b"second audio" * 100}
    for name, content in contents.items():
        put = await api.put(up["upload_urls"][name]["file_url"], content)
        assert put.status == 201
        assert put.raw == b""

    r = await api.call("POST", f"/{job_id}/start")
    assert r.status == 200
    assert r.json["job_state"] == "Pending"
    assert r.json["job_details"] == []
    assert r.json["total_files"] == 2

    st = await api.status(job_id)
    assert st["job_state"] == "Completed"
    assert st["job_id"] == job_id
    assert st["storage_container_type"] == "Azure"
    assert (st["total_files"], st["successful_files_count"], st["failed_files_count"]) == (2, 2, 0)
    assert st["error_message"] == ""
    for field in ("created_at", "updated_at"):
        assert st[field].endswith("+00:00")
    # File ids follow the order in which names were requested, not PUT order.
    assert st["job_details"] == [
        {
            "inputs": [{"file_name": "b b.wav", "file_id": "0"}],
            "outputs": [{"file_name": "0.json", "file_id": "0"}],
            "state": "Success",
            "error_message": "",
            "exception_name": "",
        },
        {
            "inputs": [{"file_name": "a.mp3", "file_id": "1"}],
            "outputs": [{"file_name": "1.json", "file_id": "1"}],
            "state": "Success",
            "error_message": "",
            "exception_name": "",
        },
    ]

    outputs = await api.outputs(job_id, ["0.json", "1.json"])
    out = outputs["0.json"]
    assert set(out) == {
        "request_id",
        "transcript",
        "language_code",
        "language_probability",
        "timestamps",
        "diarized_transcript",
    }
    assert REQUEST_ID.match(out["request_id"])
    assert out["language_code"] == "hi-IN"
    assert 0.0 <= out["language_probability"] <= 1.0
    ts = out["timestamps"]
    assert len(ts["words"]) == len(ts["start_time_seconds"]) == len(ts["end_time_seconds"]) >= 3
    assert " ".join(ts["words"]) == out["transcript"]
    entries = out["diarized_transcript"]["entries"]
    assert {e["speaker_id"] for e in entries} == {"0", "1", "2"}
    assert all(e["start_time_seconds"] < e["end_time_seconds"] for e in entries)

    # Deterministic: same bytes and parameters give the same transcript in another job.
    again = await api.job({"other-name.wav": b"first audio"}, params)
    assert (await api.outputs(again, ["0.json"]))["0.json"]["transcript"] == out["transcript"]

    view = emu.jobs[job_id]
    assert view.state == "Completed" and view.flow == "stt"
    assert view.inputs["a.mp3"].sha256 == hashlib.sha256(contents["a.mp3"]).hexdigest()
    assert view.inputs["a.mp3"].size == len(contents["a.mp3"])
    assert view.inputs["a.mp3"].content_type == "audio/wav"
    assert view.inputs["a.mp3"].headers["x-ms-blob-type"] == "BlockBlob"
    assert [f.name for f in view.files] == ["b b.wav", "a.mp3"]


async def test_output_variants(api: Api) -> None:
    plain = await api.job({"x.wav": b"abc"}, {"language_code": "en-IN"})
    out = (await api.outputs(plain, ["0.json"]))["0.json"]
    assert out["language_code"] == "en-IN"
    assert out["language_probability"] is None
    assert out["timestamps"] is None
    assert out["diarized_transcript"] is None
    assert out["transcript"].isascii()

    translit = await api.job({"x.wav": b"abc"}, {"language_code": "hi-IN", "mode": "translit"})
    assert (await api.outputs(translit, ["0.json"]))["0.json"]["transcript"].isascii()


async def test_word_and_segment_timestamps(api: Api) -> None:
    audio = {"x.wav": b"abc"}
    base = {"model": "saaras:v4", "language_code": "en-IN"}
    words = await api.job(audio, {**base, "timestamp_granularity": "word"})
    out = (await api.outputs(words, ["0.json"]))["0.json"]
    assert "segments" not in out and out["timestamps"] is None
    assert " ".join(w["text"] for w in out["words"]) == out["transcript"]
    times = [(w["start"], w["end"]) for w in out["words"]]
    assert all(start <= end for start, end in times)
    assert all(a[1] <= b[0] + 0.01 for a, b in itertools.pairwise(times))  # in order
    segments = await api.job(audio, {**base, "timestamp_granularity": "segment"})
    out = (await api.outputs(segments, ["0.json"]))["0.json"]
    assert "words" not in out and len(out["segments"]) >= 2
    assert " ".join(s["text"] for s in out["segments"]) == out["transcript"]
    assert all(s["start"] < s["end"] for s in out["segments"])


async def test_presigned_urls_have_the_azure_sas_shape(api: Api, emu: Emulator) -> None:
    import base64
    from datetime import datetime, timezone
    from urllib.parse import parse_qs, urlsplit

    job_id = await api.job({"a.wav": b"a"})
    st = await api.status(job_id)
    assert st["job_state"] == "Completed"
    r = await api.call("POST", "/download-files", json={"job_id": job_id, "files": ["0.json"]})
    urls = {
        "input": (await api.upload_urls(await api.initiate(), ["a.wav"]))["a.wav"]["file_url"],
        "output": r.json["download_urls"]["0.json"]["file_url"],
    }
    for area, url in urls.items():
        parts = urlsplit(url)
        assert parts.netloc == urlsplit(emu.url).netloc  # still served on loopback
        raw = dict(pair.split("=", 1) for pair in parts.query.split("&"))
        assert list(raw) == ["se", "sp", "sv", "sr", "sig"]
        assert "%3A" in raw["se"] and ":" not in raw["se"]  # URL-escaped, as Azure sends
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        expiry = datetime.strptime(query["se"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        assert expiry > datetime.now(timezone.utc)
        assert query["sp"] == ("wdl" if area == "input" else "rl")
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", query["sv"]) and query["sr"] == "b"
        assert len(base64.b64decode(query["sig"], validate=True)) == 32
        assert "+" not in raw["sig"] and "/" not in raw["sig"] and "=" not in raw["sig"]
    got = await api.raw("GET", urls["output"])
    assert got.status == 200 and got.json["transcript"]
    forged = re.sub(r"sig=[^&]+", "sig=AAAA", urls["output"])
    assert (await api.raw("GET", forged)).status == 403


async def test_translate_full_flow(session: aiohttp.ClientSession, emu: Emulator) -> None:
    api = Api(session, emu, TRANSLATE)
    ptu = {"ptu_id": "7"}
    params = {"model": "saaras:v2.5", "prompt": "banking call", "with_diarization": True}
    r = await api.call("POST", json={"job_parameters": params}, params=ptu)
    assert r.status == 202
    job_id = r.json["job_id"]
    r = await api.call(
        "POST", "/upload-files", json={"job_id": job_id, "files": ["t.wav"]}, params=ptu
    )
    assert r.status == 200
    assert (await api.put(r.json["upload_urls"]["t.wav"]["file_url"], b"audio")).status == 201
    r = await api.call("POST", f"/{job_id}/start", params=ptu)
    assert r.status == 200
    assert (await api.status(job_id))["job_state"] == "Completed"
    r = await api.call(
        "POST", "/download-files", json={"job_id": job_id, "files": ["0.json"]}, params=ptu
    )
    assert r.status == 200
    out = (await api.raw("GET", r.json["download_urls"]["0.json"]["file_url"])).json
    assert "timestamps" not in out
    assert out["transcript"].isascii()
    assert isinstance(out["language_probability"], float)
    assert len(out["diarized_transcript"]["entries"]) >= 2
    assert emu.jobs[job_id].ptu_id == 7
    assert {c.flow for c in emu.calls(flow="translate")} == {"translate"}
    assert len(emu.calls(flow="translate")) == 5
    assert emu.calls("initiate", flow="translate")[0].query == {"ptu_id": "7"}

    # A job belongs to its flow: the STT paths do not know it.
    stt = Api(session, emu)
    assert_envelope(await stt.call("GET", f"/{job_id}/status"), 404, "not_found_error")


async def test_url_style_string(session: aiohttp.ClientSession) -> None:
    async with Emulator(url_style="string", storage_container_type="Azure_V1") as emu:
        api = Api(session, emu)
        job_id = await api.initiate()
        urls = await api.upload_urls(job_id, ["a.wav"])
        assert isinstance(urls["a.wav"], str)
        assert (await api.put(urls["a.wav"], b"x")).status == 201
        assert (await api.call("POST", f"/{job_id}/start")).status == 200
        r = await api.call("POST", "/download-files", json={"job_id": job_id, "files": ["0.json"]})
        assert r.json["storage_container_type"] == "Azure_V1"
        assert isinstance(r.json["download_urls"]["0.json"], str)
        assert (await api.raw("GET", r.json["download_urls"]["0.json"])).status == 200


async def test_google_storage_needs_no_blob_type(session: aiohttp.ClientSession) -> None:
    async with Emulator(storage_container_type="Google") as emu:
        api = Api(session, emu)
        job_id = await api.initiate()
        urls = await api.upload_urls(job_id, ["a.wav"])
        r = await api.put(urls["a.wav"]["file_url"], b"x", headers={"Content-Type": "audio/wav"})
        assert r.status == 200


# -- routing, auth, validation --------------------------------------------------------------


async def test_unknown_paths_and_methods(api: Api, emu: Emulator) -> None:
    assert_envelope(await api.call("GET", "/nope/x/y"), 404, "not_found_error")
    assert_envelope(await api.call("POST", "/"), 404, "not_found_error")
    r = await api.raw("GET", emu.url + "/v2/whatever")
    assert_envelope(r, 404, "not_found_error")
    r = await api.call("GET", "/download-files")
    assert_envelope(r, 405, "invalid_request_error")
    assert r.headers["Allow"] == "POST"
    assert_envelope(await api.call("GET", ""), 405, "invalid_request_error")
    assert_envelope(await api.call("POST", "/some-job/status"), 405, "invalid_request_error")
    assert_envelope(await api.call("GET", "/some-job/start"), 405, "invalid_request_error")
    assert_envelope(await api.call("GET", "/some-job/status"), 404, "not_found_error")
    assert [c.route for c in emu.calls(method="GET")][:2] == ["unknown", "unknown"]
    assert emu.calls("download-files")[0].status == 405


async def test_auth(session: aiohttp.ClientSession) -> None:
    async with Emulator(api_key=["k1", "k2"]) as emu:
        api = Api(session, emu)
        assert_envelope(
            await api.call("POST", json={"job_parameters": {}}, key=None),
            403,
            "invalid_api_key_error",
        )
        assert_envelope(
            await api.call("POST", json={"job_parameters": {}}, key="bad"),
            403,
            "invalid_api_key_error",
        )
        assert (await api.call("POST", json={"job_parameters": {}}, key="k2")).status == 202
        await api.initiate(key="k1")
        assert [r.key for r in emu.requests] == [None, "bad", "k2", "k1"]
        assert [r.status for r in emu.requests] == [403, 403, 202, 202]


async def test_job_id_is_unescaped(api: Api) -> None:
    job_id = await api.job({"a.wav": b"1"})
    escaped = "".join(f"%{ord(c):02X}" for c in job_id[:3]) + job_id[3:]
    r = await api.call("GET", f"/{escaped}/status")
    assert r.status == 200 and r.json["job_id"] == job_id
    assert_envelope(
        await api.call("GET", f"/{quote(job_id + '/x', safe='')}/status"), 404, "not_found_error"
    )


@pytest.mark.parametrize(
    ("data", "headers", "needle"),
    [
        (b"{not json", {"Content-Type": "application/json"}, "JSON"),
        (b"[]", {"Content-Type": "application/json"}, "object"),
        (b"{}", {"Content-Type": "application/json"}, "job_parameters"),
        (b'{"job_parameters": []}', {"Content-Type": "application/json"}, "job_parameters"),
        (
            b'{"job_parameters": {"num_speakers": "2"}}',
            {"Content-Type": "application/json"},
            "num_speakers",
        ),
        (b'{"job_parameters": {"with_timestamps": "yes"}}', JSON_CT, "with_timestamps"),
        (b'{"job_parameters": {"keyterms": [1]}}', JSON_CT, "keyterms"),
        (b'{"job_parameters": {}, "callback": {"auth_token": "t"}}', JSON_CT, "url"),
        (b'{"job_parameters": {}, "callback": "http://x"}', JSON_CT, "callback"),
        (b'{"job_parameters": {}}', {"Content-Type": "text/plain"}, "Content-Type"),
        (b'{"job_parameters": {}}', {}, "application/octet-stream"),
    ],
)
async def test_initiate_422(api: Api, data: bytes, headers: dict[str, str], needle: str) -> None:
    # A body that fails the schema is ``invalid_request_error`` (the docs' error table).
    err = assert_envelope(
        await api.call("POST", data=data, headers=headers), 422, "invalid_request_error"
    )
    assert needle in err["message"]


@pytest.mark.parametrize(
    ("prefix", "params", "needle"),
    [
        (STT, {"model": "saaras:v9"}, "model"),
        (STT, {"mode": "shout"}, "mode"),
        (STT, {"num_speakers": 0}, "num_speakers"),
        (STT, {"num_speakers": 21}, "num_speakers"),
        (STT, {"language_code": "xx-IN"}, "language_code"),
        (STT, {"model": "saaras:v4", "keyterms": ["k"] * 51}, "keyterms"),
        (STT, {"model": "saaras:v4", "keyterms": ["k" * 65]}, "keyterms"),
        (STT, {"input_audio_codec": "wma9"}, "input_audio_codec"),
        (STT, {"model": "saaras:v4", "timestamp_granularity": "char"}, "timestamp_granularity"),
        (TRANSLATE, {"model": "saaras:v3"}, "model"),
    ],
)
async def test_initiate_400(
    session: aiohttp.ClientSession, emu: Emulator, prefix: str, params: dict[str, Any], needle: str
) -> None:
    r = await Api(session, emu, prefix).call("POST", json={"job_parameters": params})
    assert needle in assert_envelope(r, 400, "invalid_request_error")["message"]


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"language_code": "as-IN", "model": "saarika:v2.5"}, "language_code"),
        ({"model": "saaras:v3", "keyterms": ["Sarvam"]}, "keyterms"),
        ({"timestamp_granularity": "word"}, "saaras:v4"),  # the default model is saaras:v3
        ({"model": "saaras:v4", "mode": "translate", "timestamp_granularity": "word"}, "mode"),
        ({"model": "saarika:v2.5", "timestamp_granularity": "segment"}, "saaras:v3"),
    ],
)
async def test_initiate_business_rules_are_unprocessable(
    api: Api, params: dict[str, Any], needle: str
) -> None:
    # A valid schema breaking a rule that ties fields together: ``unprocessable_entity_error``.
    r = await api.call("POST", json={"job_parameters": params})
    assert needle in assert_envelope(r, 422, "unprocessable_entity_error")["message"]


async def test_timestamp_granularities_are_accepted_where_documented(api: Api) -> None:
    for params in (
        {"model": "saaras:v4", "timestamp_granularity": "word"},
        {"model": "saaras:v4", "mode": "codemix", "timestamp_granularity": "word"},
        {"timestamp_granularity": "segment"},
        {"model": "saaras:v4", "mode": "translate", "timestamp_granularity": "segment"},
    ):
        assert (await api.call("POST", json={"job_parameters": params})).status == 202, params


async def test_initiate_accepts_sdk_shapes(session: aiohttp.ClientSession, emu: Emulator) -> None:
    stt = Api(session, emu)
    sdk_body = {
        "language_code": None,
        "model": "saarika:v2.5",
        "mode": None,
        "num_speakers": None,
        "with_diarization": False,
        "with_timestamps": False,
        "keyterms": None,
    }
    r = await stt.call("POST", json={"job_parameters": sdk_body, "callback": None})
    assert r.status == 202 and r.json["job_parameters"] == sdk_body
    ok = {
        "model": "saaras:v4",
        "keyterms": ["Sarvam"],
        "language_code": "doi-IN",
        "mode": "codemix",
    }
    assert (await stt.call("POST", json={"job_parameters": ok})).status == 202
    # STT ignores ptu_id on initiate (even a bad one) but records it.
    assert (
        await stt.call("POST", json={"job_parameters": {}}, params={"ptu_id": "x"})
    ).status == 202
    assert emu.requests[-1].query == {"ptu_id": "x"}
    tr = Api(session, emu, TRANSLATE)
    # STT-only fields are unknown extras for translate: accepted and ignored.
    r = await tr.call("POST", json={"job_parameters": {"language_code": "hi-IN", "mode": "x"}})
    assert r.status == 202
    r = await tr.call("POST", json={"job_parameters": {}}, params={"ptu_id": "abc"})
    assert "ptu_id" in assert_envelope(r, 422, "invalid_request_error")["message"]


async def test_upload_files_validation(session: aiohttp.ClientSession, api: Api) -> None:
    job_id = await api.initiate()
    cases: list[tuple[Any, int]] = [
        ({"job_id": job_id}, 422),
        ({"files": ["a"]}, 422),
        ({"job_id": job_id, "files": "a.wav"}, 422),
        ({"job_id": "missing", "files": ["a.wav"]}, 404),
        ({"job_id": job_id, "files": []}, 400),
        ({"job_id": job_id, "files": [f"{i}.wav" for i in range(21)]}, 400),
        ({"job_id": job_id, "files": ["a.wav", "a.wav"]}, 400),
        ({"job_id": job_id, "files": ["dir/a.wav"]}, 400),
        ({"job_id": job_id, "files": ["..\\a.wav"]}, 400),
        ({"job_id": job_id, "files": [""]}, 400),
    ]
    codes = {
        400: "invalid_request_error",
        404: "not_found_error",
        422: "invalid_request_error",
    }
    for body, status in cases:
        assert_envelope(await api.call("POST", "/upload-files", json=body), status, codes[status])
    # Asking again for the same names refreshes URLs; distinct names are capped at 20 per job.
    first = await api.upload_urls(job_id, [f"{i}.wav" for i in range(20)])
    again = await api.upload_urls(job_id, ["0.wav"])
    assert again["0.wav"]["file_url"].split("?")[0] == first["0.wav"]["file_url"].split("?")[0]
    r = await api.call("POST", "/upload-files", json={"job_id": job_id, "files": ["20.wav"]})
    assert_envelope(r, 400, "invalid_request_error")


async def test_start_rules(api: Api, emu: Emulator) -> None:
    assert_envelope(await api.call("POST", "/missing/start"), 404, "not_found_error")
    job_id = await api.initiate()
    assert_envelope(await api.call("POST", f"/{job_id}/start"), 400, "invalid_request_error")
    urls = await api.upload_urls(job_id, ["a.wav", "never-put.wav", "b.wav"])
    assert_envelope(await api.call("POST", f"/{job_id}/start"), 400, "invalid_request_error")
    await api.put(urls["b.wav"]["file_url"], b"b")
    await api.put(urls["a.wav"]["file_url"], b"a")
    before = await api.status(job_id)  # the live API reports no counts before start
    counts = ("total_files", "successful_files_count", "failed_files_count")
    assert [before[k] for k in counts] == [None, None, None]
    r = await api.call("POST", f"/{job_id}/start", json={}, params={"ptu_id": "3"})
    assert r.status == 200 and r.json["total_files"] == 2
    assert emu.jobs[job_id].ptu_id == 3
    assert_envelope(await api.call("POST", f"/{job_id}/start"), 400, "invalid_request_error")
    r = await api.call("POST", "/upload-files", json={"job_id": job_id, "files": ["c.wav"]})
    assert_envelope(r, 400, "invalid_request_error")
    st = await api.status(job_id)
    assert [d["inputs"][0]["file_name"] for d in st["job_details"]] == ["a.wav", "b.wav"]
    other = await api.initiate()
    await api.upload_urls(other, ["a.wav"])
    r = await api.call("POST", f"/{other}/start", params={"ptu_id": "1.5"})
    assert_envelope(r, 422, "invalid_request_error")


async def test_counts_before_start_can_be_zero(session: aiohttp.ClientSession) -> None:
    async with Emulator(null_counts=False) as emu:
        api = Api(session, emu)
        st = await api.status(await api.job({"a.wav": b"a"}, start=False))
        counts = (st["total_files"], st["successful_files_count"], st["failed_files_count"])
        assert counts == (0, 0, 0)


async def test_download_rules(session: aiohttp.ClientSession) -> None:
    clock = ManualClock()
    async with Emulator(job_duration=10, clock=clock) as emu:
        api = Api(session, emu)
        job_id = await api.job({"a.wav": b"a"})
        r = await api.call("POST", "/download-files", json={"job_id": job_id, "files": ["0.json"]})
        message = assert_envelope(r, 400, "invalid_request_error")["message"]
        assert message == f"Job {job_id} is not in COMPLETED state. Current state: Pending"
        clock.advance(10)
        for files in ([], ["1.json"], ["a.wav"]):
            r = await api.call("POST", "/download-files", json={"job_id": job_id, "files": files})
            assert_envelope(r, 400, "invalid_request_error")
        r = await api.call("POST", "/download-files", json={"job_id": "nope", "files": ["0.json"]})
        assert_envelope(r, 404, "not_found_error")
        r = await api.call("POST", "/download-files", json={"job_id": job_id})
        assert_envelope(r, 422, "invalid_request_error")
        assert (await api.outputs(job_id, ["0.json"]))["0.json"]["transcript"]
        assert emu.stats.not_ready == 0  # refusing an unfinished job is not the lag


async def test_download_lags_behind_status(session: aiohttp.ClientSession) -> None:
    clock = ManualClock()
    async with Emulator(job_duration=1, download_lag=3, clock=clock) as emu:
        api = Api(session, emu)
        job_id = await api.job({"a.wav": b"a"})
        clock.advance(1)
        assert (await api.status(job_id))["job_state"] == "Completed"
        body = {"job_id": job_id, "files": ["0.json"]}
        r = await api.call("POST", "/download-files", json=body)
        message = assert_envelope(r, 400, "invalid_request_error")["message"]
        assert message == f"Job {job_id} is not in COMPLETED state. Current state: Pending"
        clock.advance(2.99)
        assert (await api.call("POST", "/download-files", json=body)).status == 400
        clock.advance(0.01)
        assert (await api.call("POST", "/download-files", json=body)).status == 200
        assert emu.stats.not_ready == 2
        emu.download_lag = 0
        other = await api.job({"b.wav": b"b"})
        clock.advance(1)
        body = {"job_id": other, "files": ["0.json"]}
        assert (await api.call("POST", "/download-files", json=body)).status == 200


# -- scripted and random faults ----------------------------------------------------------------


async def test_fail_next_status_and_headers(api: Api, emu: Emulator) -> None:
    emu.fail_next("initiate", status=429, retry_after=2.0, retry_after_ms=150)
    emu.fail_next("initiate", status=500, retry_after=1.5, code="model_call_error", message="boom")
    emu.fail_next("initiate", status=503, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    emu.fail_next("initiate")
    assert emu.pending_faults("initiate") == 4
    r = await api.call("POST", json={"job_parameters": {}})
    assert_envelope(r, 429, "rate_limit_exceeded_error")
    assert (r.headers["Retry-After"], r.headers["retry-after-ms"]) == ("2", "150")
    r = await api.call("POST", json={"job_parameters": {}})
    err = assert_envelope(r, 500, "model_call_error")
    assert err["message"] == "boom" and r.headers["Retry-After"] == "1.5"
    r = await api.call("POST", json={"job_parameters": {}})
    assert_envelope(r, 503, "rate_limit_exceeded_error")
    assert r.headers["Retry-After"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    r = await api.call("POST", json={"job_parameters": {}})
    assert_envelope(r, 503, "rate_limit_exceeded_error")
    assert "Retry-After" not in r.headers
    assert (await api.call("POST", json={"job_parameters": {}})).status == 202
    assert [c.status for c in emu.calls("initiate")] == [429, 500, 503, 503, 202]
    assert emu.stats.faults == 4 and emu.stats.rate_limited == 1


async def test_fail_next_default_codes(api: Api, emu: Emulator) -> None:
    expected = {
        400: "invalid_request_error",
        403: "invalid_api_key_error",
        404: "not_found_error",
        422: "unprocessable_entity_error",
        500: "internal_server_error",
        502: "internal_server_error",
    }
    for status in expected:
        emu.fail_next("status", status=status)
    for status, code in expected.items():
        assert_envelope(await api.call("GET", "/any/status"), status, code)


async def test_fail_next_applies_before_auth_and_routing(api: Api, emu: Emulator) -> None:
    emu.fail_next("*", count=2, status=502)
    assert (await api.call("GET", "/whatever", key="wrong")).status == 502
    assert (await api.call("POST", json={"job_parameters": {}}, key=None)).status == 502
    assert (await api.call("POST", json={"job_parameters": {}}, key=None)).status == 403


async def test_fail_next_custom_bodies(api: Api, emu: Emulator) -> None:
    html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    emu.fail_next("status", status=502, body=html, content_type="text/html")
    emu.fail_next("status", status=200, body=b'{"unexpected": true}')
    emu.fail_next("status", status=500, body=b'{"error": {"mess')
    emu.fail_next("status", status=503, body=b"")
    r = await api.call("GET", "/x/status")
    assert (r.status, r.raw, r.headers["Content-Type"]) == (502, html, "text/html")
    r = await api.call("GET", "/x/status")
    assert (r.status, r.json) == (200, {"unexpected": True})
    r = await api.call("GET", "/x/status")
    assert (r.status, r.raw) == (500, b'{"error": {"mess')
    r = await api.call("GET", "/x/status")
    assert (r.status, r.raw) == (503, b"")


async def test_fail_next_drop(emu: Emulator) -> None:
    # A fresh connection per request, so the client cannot silently retry on a reused one.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        api = Api(session, emu)
        emu.fail_next("initiate", drop=True)
        with pytest.raises(aiohttp.ClientConnectionError):
            await api.call("POST", json={"job_parameters": {}})
        assert (await api.call("POST", json={"job_parameters": {}})).status == 202
        job_id = next(iter(emu.jobs))
        urls = await api.upload_urls(job_id, ["a.wav"])
        # aiohttp retries an idempotent request once after a disconnect: drop both attempts.
        emu.fail_next("storage-put", count=2, drop=True)
        with pytest.raises(aiohttp.ClientConnectionError):
            await api.put(urls["a.wav"]["file_url"], b"x" * 100_000)
    assert [c.status for c in emu.calls("initiate")] == [0, 202]
    assert [c.status for c in emu.calls("storage-put")] == [0, 0]
    assert emu.stats.by_status[0] == 1


async def test_fail_next_delay(api: Api, emu: Emulator) -> None:
    job_id = await api.job({"a.wav": b"a"})
    emu.fail_next("status", delay=0.2)
    t0 = time.perf_counter()
    st = await api.status(job_id)
    assert time.perf_counter() - t0 >= 0.19
    assert st["job_state"] == "Completed"
    emu.fail_next("status", delay=0.05, status=503)
    assert (await api.call("GET", f"/{job_id}/status")).status == 503


async def test_fail_next_storage_routes(api: Api, emu: Emulator) -> None:
    job_id = await api.initiate()
    urls = await api.upload_urls(job_id, ["a.wav"])
    emu.fail_next("storage-put", status=503)
    emu.fail_next("*", status=500)
    r = await api.put(urls["a.wav"]["file_url"], b"abc")
    assert r.status == 503 and b"<Code>ServerBusy</Code>" in r.raw
    assert r.headers["Content-Type"] == "application/xml"
    r = await api.put(urls["a.wav"]["file_url"], b"abc")
    assert r.status == 500 and b"<Code>InternalError</Code>" in r.raw
    assert (await api.put(urls["a.wav"]["file_url"], b"abc")).status == 201
    assert emu.calls("storage-put")[0].body_size == 3
    with pytest.raises(ValueError):
        emu.fail_next("no-such-route")
    emu.fail_next("status", count=3)
    emu.clear_faults()
    assert emu.pending_faults() == 0


async def _statuses(
    seed: int, n: int, session: aiohttp.ClientSession
) -> list[tuple[int, str | None]]:
    async with Emulator(fault_rate=0.5, seed=seed) as emu:
        api = Api(session, emu)
        out = []
        for _ in range(n):
            r = await api.call("GET", "/job/status")
            out.append((r.status, r.headers.get("Retry-After")))
            assert "retry-after-ms" not in r.headers  # the live API never sends it
        return out


async def test_fault_rate_is_deterministic(session: aiohttp.ClientSession) -> None:
    first = await _statuses(1, 40, session)
    assert first == await _statuses(1, 40, session)
    assert first != await _statuses(2, 40, session)
    statuses = {s for s, _ in first}
    assert statuses == {404, 429, 503}
    for status, retry_after in first:
        assert retry_after == ("1" if status in (429, 503) else None)


async def test_random_faults_send_retry_after_ms_when_asked(
    session: aiohttp.ClientSession,
) -> None:
    async with Emulator(fault_rate=1.0, retry_after_ms=True) as emu:
        r = await Api(session, emu).call("GET", "/job/status")
        assert r.status in (429, 503) and r.headers["Retry-After"] == "1"
        assert 10 <= int(r.headers["retry-after-ms"]) <= 100


async def test_fault_rate_skips_storage_and_can_drop(session: aiohttp.ClientSession) -> None:
    async with Emulator(fault_rate=1.0, fault_statuses=(500,)) as emu:
        api = Api(session, emu)
        assert (await api.call("POST", json={"job_parameters": {}})).status == 500
        assert (await api.raw("PUT", emu.url + "/storage/j/input/a?se=1&sig=x")).status == 403
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as s2,
        Emulator(fault_rate=1.0, fault_drop=True, seed=3) as emu,
    ):
        api = Api(s2, emu)
        kinds = []
        for _ in range(12):
            try:
                kinds.append((await api.call("GET", "/j/status")).status)
            except aiohttp.ClientConnectionError:
                kinds.append(0)
        assert 0 in kinds and any(k in (429, 503) for k in kinds)


# -- job outcomes, URLs, rate limits, schedule ---------------------------------------------------


async def test_fail_file_partially_completed(api: Api, emu: Emulator) -> None:
    emu.fail_file("bad.wav")
    emu.fail_file("worse.wav", state="Internal Server Error", message="decoder crashed")
    job_id = await api.job({"ok.wav": b"1", "bad.wav": b"2", "worse.wav": b"3"})
    st = await api.status(job_id)
    assert st["job_state"] == "PartiallyCompleted"
    assert (st["successful_files_count"], st["failed_files_count"]) == (1, 2)
    assert st["error_message"] == ""
    bad = st["job_details"][1]
    assert bad["state"] == "API Error" and bad["outputs"] == []
    assert bad["error_message"] == "Audio could not be decoded"
    assert st["job_details"][2]["state"] == "Internal Server Error"
    r = await api.call("POST", "/download-files", json={"job_id": job_id, "files": ["1.json"]})
    assert_envelope(r, 400, "invalid_request_error")
    assert (await api.outputs(job_id, ["0.json"]))["0.json"]["transcript"]


async def test_all_files_failed(api: Api, emu: Emulator) -> None:
    emu.fail_file("bad.wav")
    job_id = await api.job({"bad.wav": b"2", "empty.wav": b""})
    st = await api.status(job_id)
    assert st["job_state"] == "Failed"
    assert st["error_message"]
    assert [d["state"] for d in st["job_details"]] == ["API Error", "API Error"]
    emu.clear_file_failures()
    assert (await api.status(await api.job({"bad.wav": b"2"})))["job_state"] == "Completed"


async def test_expire_urls(api: Api, emu: Emulator) -> None:
    job_id = await api.initiate()
    old = (await api.upload_urls(job_id, ["a.wav"]))["a.wav"]["file_url"]
    emu.expire_urls()
    r = await api.put(old, b"abc")
    assert r.status == 403
    assert b"<Code>AuthenticationFailed</Code>" in r.raw
    assert r.headers["Content-Type"] == "application/xml"
    new = (await api.upload_urls(job_id, ["a.wav"]))["a.wav"]["file_url"]
    assert (await api.put(new, b"abc")).status == 201
    assert (await api.call("POST", f"/{job_id}/start")).status == 200
    # Tampering with the signature, the expiry or the path is rejected too.
    assert (await api.put(new.replace("sig=", "sig=0"), b"abc")).status == 403
    assert (await api.put(new.replace("se=", "se=9"), b"abc")).status == 403
    assert (await api.put(new.replace("a.wav", "b.wav"), b"abc")).status == 403
    # An upload URL cannot read and a download URL cannot write.
    assert (await api.raw("GET", new)).status == 403


async def test_url_ttl_with_fake_clock(session: aiohttp.ClientSession) -> None:
    clock = ManualClock()
    async with Emulator(url_ttl=60, clock=clock) as emu:
        api = Api(session, emu)
        job_id = await api.initiate()
        url = (await api.upload_urls(job_id, ["a.wav"]))["a.wav"]["file_url"]
        clock.advance(62)
        r = await api.put(url, b"abc")
        assert r.status == 403 and b"Signed expiry time" in r.raw
        url = (await api.upload_urls(job_id, ["a.wav"]))["a.wav"]["file_url"]
        assert (await api.put(url, b"abc")).status == 201


async def test_rate_limit(session: aiohttp.ClientSession) -> None:
    clock = ManualClock()
    async with Emulator(api_key=["k1", "k2"], rate_limit=60, clock=clock) as emu:
        api = Api(session, emu)
        assert (await api.call("GET", "/j/status", key="k1")).status == 404
        r = await api.call("GET", "/j/status", key="k2")  # same account, bucket empty
        assert_envelope(r, 429, "rate_limit_exceeded_error")
        assert r.headers["Retry-After"] == "1" and "retry-after-ms" not in r.headers
        clock.advance(0.25)
        r = await api.call("GET", "/j/status", key="k1")
        assert (r.status, r.headers["Retry-After"]) == (429, "1")
        # Neither bad keys, unknown paths nor storage consume tokens.
        assert (await api.call("GET", "/j/status", key="bad")).status == 403
        assert (await api.call("GET", "/nope", key="k1")).status == 404
        assert (await api.raw("GET", emu.url + "/storage/j/output/0.json")).status == 403
        clock.advance(0.75)
        assert (await api.call("GET", "/j/status", key="k1")).status == 404
        assert emu.stats.rate_limited == 2


async def test_rate_limit_sends_retry_after_ms_when_asked(
    session: aiohttp.ClientSession,
) -> None:
    clock = ManualClock()
    async with Emulator(rate_limit=60, retry_after_ms=True, clock=clock) as emu:
        api = Api(session, emu)
        assert (await api.call("GET", "/j/status")).status == 404
        clock.advance(0.25)
        r = await api.call("GET", "/j/status")
        assert (r.status, r.headers["Retry-After"], r.headers["retry-after-ms"]) == (
            429,
            "1",
            "750",
        )


async def test_rate_limit_burst_and_key_scope(session: aiohttp.ClientSession) -> None:
    clock = ManualClock()
    async with Emulator(
        api_key=["k1", "k2"], rate_limit=30, burst=3, rate_limit_scope="key", clock=clock
    ) as emu:
        api = Api(session, emu)
        got = [(await api.call("GET", "/j/status", key="k1")).status for _ in range(4)]
        assert got == [404, 404, 404, 429]
        assert (await api.call("GET", "/j/status", key="k2")).status == 404
        r = await api.call("GET", "/j/status", key="k1")
        assert r.headers["Retry-After"] == "2" and "retry-after-ms" not in r.headers
        clock.advance(2.0)
        assert (await api.call("GET", "/j/status", key="k1")).status == 404
        assert (await api.call("GET", "/j/status", key="k1")).status == 429
        clock.advance(60)  # refill caps at the burst size
        got = [(await api.call("GET", "/j/status", key="k1")).status for _ in range(4)]
        assert got == [404, 404, 404, 429]


async def test_job_duration_schedule(session: aiohttp.ClientSession) -> None:
    clock = ManualClock()
    async with Emulator(job_duration=10, clock=clock) as emu:
        api = Api(session, emu)
        job_id = await api.job({f"{i}.wav": b"x" for i in range(4)})
        assert (await api.status(job_id))["job_state"] == "Pending"
        clock.advance(1.9)
        pending = await api.status(job_id)
        assert pending["job_state"] == "Pending"
        clock.advance(0.1)
        st = await api.status(job_id)
        assert st["job_state"] == "Running"
        assert st["updated_at"] > pending["updated_at"]
        assert st["successful_files_count"] == 0 and st["job_details"] == []
        clock.advance(4.0)  # half way through the running phase
        st = await api.status(job_id)
        assert (st["job_state"], st["successful_files_count"]) == ("Running", 2)
        clock.advance(3.99)
        assert (await api.status(job_id))["job_state"] == "Running"
        assert emu.jobs[job_id].state == "Running"
        clock.advance(0.01)
        st = await api.status(job_id)
        assert st["job_state"] == "Completed" and len(st["job_details"]) == 4
        assert st["successful_files_count"] == 4
        emu.job_duration = 0
        assert (await api.status(await api.job({"a.wav": b"1"})))["job_state"] == "Completed"


async def test_latency(session: aiohttp.ClientSession) -> None:
    async with Emulator(latency=0.1) as emu:
        api = Api(session, emu)
        t0 = time.perf_counter()
        await api.call("GET", "/j/status")
        assert time.perf_counter() - t0 >= 0.09
        emu.latency = 0
        assert emu.latency == 0


# -- storage ----------------------------------------------------------------------------------


async def test_put_header_and_length_checks(api: Api, emu: Emulator) -> None:
    job_id = await api.initiate()
    url = (await api.upload_urls(job_id, ["a.wav"]))["a.wav"]["file_url"]
    r = await api.put(url, b"abc", headers={"Content-Type": "audio/wav"})
    assert r.status == 400 and b"<Code>MissingRequiredHeader</Code>" in r.raw
    r = await api.put(url, b"abc", headers={"x-ms-blob-type": "AppendBlob"})
    assert r.status == 400 and b"InvalidHeaderValue" in r.raw

    async def chunks() -> AsyncIterator[bytes]:
        yield b"abc"

    r = await api.raw("PUT", url, data=chunks(), headers=BLOB)  # chunked: no Content-Length
    assert r.status == 411 and b"MissingContentLengthHeader" in r.raw
    assert emu.jobs[job_id].inputs == {}

    # Fewer bytes than declared, then the client goes away: nothing is stored.
    target = url.removeprefix(emu.url)
    _reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
    writer.write(
        f"PUT {target} HTTP/1.1\r\nHost: x\r\nx-ms-blob-type: BlockBlob\r\n"
        "Content-Length: 100\r\n\r\n".encode()
        + b"0123456789"
    )
    await writer.drain()
    for _ in range(200):
        if len(emu.calls("storage-put")) == 4:  # the request has arrived
            break
        await asyncio.sleep(0.005)
    writer.close()
    await writer.wait_closed()
    for _ in range(200):
        if emu.stats.storage_requests == 4:
            break
        await asyncio.sleep(0.005)
    rec = emu.calls("storage-put")[-1]
    assert (rec.status, rec.body_size, rec.body) == (0, 10, b"")
    assert emu.jobs[job_id].inputs == {}


async def test_streaming_put_memory(api: Api, emu: Emulator) -> None:
    size = 50 * 1024 * 1024
    block = bytes(range(256)) * 256  # 64 KiB
    expected = hashlib.sha256()
    for _ in range(size // len(block)):
        expected.update(block)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(size // len(block)):
            yield block

    job_id = await api.initiate()
    url = (await api.upload_urls(job_id, ["big.wav"]))["big.wav"]["file_url"]
    tracemalloc.start()
    try:
        r = await api.raw("PUT", url, data=body(), headers={**BLOB, "Content-Length": str(size)})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status == 201
    assert peak < 8 * 1024 * 1024, peak
    stored = emu.jobs[job_id].inputs["big.wav"]
    assert (stored.size, stored.sha256) == (size, expected.hexdigest())
    assert emu.stats.storage_bytes_received == size
    assert emu.calls("storage-put")[0].body == b""


async def test_storage_paths(api: Api, emu: Emulator) -> None:
    r = await api.raw("GET", emu.url + "/storage/x")
    assert r.status == 404 and b"ResourceNotFound" in r.raw
    r = await api.raw("DELETE", emu.url + "/storage/j/input/a.wav")
    assert r.status == 405 and b"UnsupportedHttpVerb" in r.raw
    assert emu.calls(flow="storage")[0].route == "unknown"


# -- recording, callbacks, helpers ----------------------------------------------------------------


async def test_recording(api: Api, emu: Emulator) -> None:
    job_id = await api.job({"a.wav": b"12345"})
    await api.status(job_id)
    routes = [r.route for r in emu.requests]
    assert routes == ["initiate", "upload-files", "storage-put", "start", "status"]
    init = emu.calls("initiate")[0]
    assert init.method == "POST" and init.path == STT and init.flow == "stt"
    assert init.json() == {"job_parameters": {}}
    assert init.body_size == len(init.body)
    assert init.headers["api-subscription-key"] == KEY and init.key == KEY
    assert init.headers["content-type"] == "application/json"
    put = emu.calls("storage-put")[0]
    assert (put.flow, put.body, put.body_size, put.key) == ("storage", b"", 5, None)
    assert set(put.query) == {"se", "sp", "sv", "sr", "sig"}
    assert "api-subscription-key" not in put.headers
    assert emu.calls(method="get") == emu.calls("status")
    stats = emu.stats
    assert stats.api_requests == 4 and stats.storage_requests == 1
    assert stats.by_status == {202: 1, 200: 3} and stats.storage_by_status == {201: 1}
    emu.reset_requests()
    assert emu.requests == []
    await api.status(job_id)
    assert [r.route for r in emu.requests] == ["status"]
    assert emu.stats.api_requests == 5


async def test_record_requests_off(session: aiohttp.ClientSession) -> None:
    async with Emulator(record_requests=False) as emu:
        await Api(session, emu).call("GET", "/j/status")
        assert emu.requests == [] and emu.stats.api_requests == 1


async def test_callback_delivery(session: aiohttp.ClientSession) -> None:
    received: list[tuple[dict[str, Any], str | None]] = []
    got = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.json(), request.headers.get("X-SARVAM-JOB-CALLBACK-TOKEN")))
        got.set()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with Emulator(job_duration=0.05) as emu:
            api = Api(session, emu)
            callback = {"url": f"http://127.0.0.1:{port}/hook", "auth_token": "tok"}
            r = await api.call("POST", json={"job_parameters": {}, "callback": callback})
            job_id = r.json["job_id"]
            urls = await api.upload_urls(job_id, ["a.wav"])
            await api.put(urls["a.wav"]["file_url"], b"a")
            await api.call("POST", f"/{job_id}/start")
            await asyncio.wait_for(got.wait(), 5)
            payload, token = received[0]
            assert token == "tok"
            # The cookbook's payload spells the state in lower case; status says Completed.
            assert payload["job_id"] == job_id and payload["job_state"] == "completed"
            assert payload["total_files"] == 1 and payload["failed_files"] == 0
            for _ in range(100):
                if emu.jobs[job_id].callback_status is not None:
                    break
                await asyncio.sleep(0.01)
            assert emu.jobs[job_id].callback_status == 200
            # Non-loopback callbacks are never contacted.
            remote = {"url": "http://example.com/hook"}
            r = await api.call("POST", json={"job_parameters": {}, "callback": remote})
            other = r.json["job_id"]
            urls = await api.upload_urls(other, ["a.wav"])
            await api.put(urls["a.wav"]["file_url"], b"a")
            await api.call("POST", f"/{other}/start")
            assert str(emu.jobs[other].callback_status).startswith("skipped")
    finally:
        await runner.cleanup()


async def test_serve_forever_stops_on_cancel() -> None:
    emu = Emulator()
    task = asyncio.create_task(emu.serve_forever())
    for _ in range(100):
        try:
            url = emu.url
            break
        except RuntimeError:
            await asyncio.sleep(0.01)
    async with aiohttp.ClientSession() as s, s.get(url + STT + "/j/status") as resp:
        assert resp.status == 403
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as s, s.get(url + STT + "/j/status"):
            pass


def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        Emulator(api_key=[])
    with pytest.raises(ValueError):
        Emulator(rate_limit=0)
    with pytest.raises(ValueError):
        Emulator(fault_rate=2)
    with pytest.raises(ValueError):
        Emulator(url_style="nope")  # type: ignore[arg-type]
