"""Waiting on job callbacks: the receiver, its aiohttp handler, and the waits it feeds.

Every test runs the emulator, which delivers callbacks to a real receiver on loopback; the
emulator's callback faults (lost, duplicated, delayed, wrong token) stand in for a flaky
network. Safety polls are set far beyond a test's length where a test proves that a callback,
not a poll, ended a wait; such waits carry a timeout so that a broken path fails, not hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from sarvam_async import (
    AsyncSarvam,
    CallbackConfig,
    CallbackReceiver,
    CallbackServer,
    JobState,
    aiohttp_callback_handler,
    errors,
)
from sarvam_async.testing import CallbackFaults, Emulator, ManualClock

from .conftest import KEY

NEVER = 1_000.0  # a safety poll that no test lives to see
HEADER = "X-SARVAM-JOB-CALLBACK-TOKEN"


@pytest.fixture
async def real_client(emulator: Emulator) -> AsyncIterator[AsyncSarvam]:
    """A client on real time: callback waits race real deliveries."""
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, adaptive_rate=False) as c:
        yield c


@pytest.fixture
async def server() -> AsyncIterator[CallbackServer]:
    async with CallbackServer(CallbackReceiver(), path="/hooks/sarvam") as s:
        yield s


def config(server: CallbackServer, safety_poll: float = NEVER) -> CallbackConfig:
    return CallbackConfig(server.url, server.receiver, safety_poll=safety_poll)


def wavs(folder: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        p = folder / f"clip-{i:03d}.wav"
        p.write_bytes(b"RIFF" + bytes([i % 256]) * 64)
        paths.append(p)
    return paths


async def run(client: AsyncSarvam, paths: list[Path], out: Path, **kw: object) -> list[bool]:
    stream = client.transcribe_files(paths, output_dir=out, **kw)  # type: ignore[arg-type]
    async with contextlib.aclosing(stream) as outcomes:
        return [o.ok async for o in outcomes]


def payload(job_id: str, state: str = "completed") -> bytes:
    return f'{{"job_id": "{job_id}", "job_state": "{state}", "new_field": [1]}}'.encode()


# -- the receiver's core --------------------------------------------------------------------


def test_missing_and_wrong_tokens_are_refused_and_record_nothing() -> None:
    receiver = CallbackReceiver()
    receiver.watch("j1")
    with pytest.raises(errors.CallbackUnauthorizedError) as missing:
        receiver.receive(payload("j1"), {})
    with pytest.raises(errors.CallbackForbiddenError) as wrong:
        receiver.receive(payload("j1"), {HEADER: receiver.token + "x"})
    assert (missing.value.status_code, wrong.value.status_code) == (401, 403)
    for text in (str(missing.value), str(wrong.value), repr(receiver)):
        assert receiver.token not in text
    assert not receiver._watches["j1"].seen and receiver._watches["j1"].pending is None
    event = receiver.receive(payload("j1"), {HEADER.lower(): receiver.token})
    assert receiver._watches["j1"].pending is event


async def test_a_duplicate_wakes_nobody_twice() -> None:
    receiver = CallbackReceiver()
    headers = {HEADER: receiver.token}
    receiver.watch("j")
    receiver.receive(payload("j"), headers)
    assert (await receiver.arrival("j")).job_id == "j"  # the first copy wakes the wait
    receiver.receive(payload("j", "Completed"), headers)  # the same event again, other case
    later = receiver.arrival("j")
    await asyncio.sleep(0)
    assert not later.done()
    receiver.receive(payload("j", "failed"), headers)  # a new event does wake it
    assert (await asyncio.wait_for(later, 1)).job_state is JobState.FAILED


def test_payload_is_validated_case_folded_and_tolerant() -> None:
    receiver = CallbackReceiver(token="a-given-token")
    headers = {HEADER: "a-given-token"}
    event = receiver.receive(payload("j", "COMPLETED"), headers)
    assert event.job_state is JobState.COMPLETED and event.total_files is None
    with pytest.raises(errors.CallbackPayloadError) as bad:
        receiver.receive(b'{"job_id": 7, "job_state": "completed"}', headers)
    assert bad.value.status_code == 400 and bad.value.json_path == "$.job_id"
    with pytest.raises(errors.CallbackPayloadError):
        receiver.receive(b"not json", headers)
    with pytest.raises(errors.CallbackTooLargeError):
        CallbackReceiver(token="t", max_body_bytes=10).receive(payload("j"), {HEADER: "t"})


def test_the_token_stays_out_of_reprs() -> None:
    receiver = CallbackReceiver()
    cfg = CallbackConfig("https://example.invalid/hook", receiver)
    assert len(receiver.token) >= 40 and receiver.token != CallbackReceiver().token
    for text in (repr(cfg), repr(receiver), repr(cfg.as_api()), str(cfg.as_api())):
        assert receiver.token not in text


async def test_aiohttp_handler_answers_each_case(server: CallbackServer) -> None:
    token = server.receiver.token
    async with aiohttp.ClientSession() as http:

        async def post(body: bytes, headers: dict[str, str]) -> int:
            async with http.post(server.url, data=body, headers=headers) as r:
                return r.status

        assert await post(payload("j"), {}) == 401
        assert await post(payload("j"), {HEADER: "nope"}) == 403
        assert await post(b"[]", {HEADER: token}) == 400
        assert await post(b"x" * (server.receiver.max_body + 1), {HEADER: token}) == 413
        assert await post(payload("j"), {HEADER: token}) == 200
        assert await post(payload("j"), {HEADER: token}) == 200  # a duplicate: still 200


async def test_unknown_jobs_are_ignored_and_logged_once(
    server: CallbackServer, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = server.receiver
    headers = {HEADER: receiver.token}
    with caplog.at_level(logging.INFO, logger="sarvam_async"):
        receiver.receive(payload("stranger"), headers)
        receiver.receive(payload("stranger"), headers)
        receiver.watch("known")
        receiver.release("known")
        receiver.receive(payload("known"), headers)  # a late copy of a finished wait
    logged = [r for r in caplog.records if "ignored" in r.getMessage()]
    assert len(logged) == 1 and "stranger" in logged[0].getMessage()


# -- waiting on callbacks -------------------------------------------------------------------


async def _one_job(client: AsyncSarvam, cfg: CallbackConfig, tmp_path: Path) -> str:
    job = await client.speech_to_text_job.create_job(callback=cfg)
    await job.upload_files(wavs(tmp_path, 2))
    await job.start()
    status = await job.wait_until_complete(timeout=30)
    assert status.job_state is JobState.COMPLETED
    return job.job_id


async def test_a_callback_ends_the_wait_with_one_status_call(
    real_client: AsyncSarvam, emulator: Emulator, server: CallbackServer, tmp_path: Path
) -> None:
    emulator.job_duration = 0.05
    job_id = await _one_job(real_client, config(server), tmp_path)
    assert len(emulator.calls("status")) == 1
    sent = emulator.calls("initiate")[0].json()["callback"]
    assert sent == {"url": server.url, "auth_token": server.receiver.token}
    assert [d.status for d in emulator.callback_deliveries] == [200]
    assert not server.receiver.watching(job_id)


async def test_a_callback_wait_of_a_second_or_less_still_looks_once(
    real_client: AsyncSarvam, emulator: Emulator, server: CallbackServer, tmp_path: Path
) -> None:
    emulator.job_duration = 0.05
    job = await real_client.speech_to_text_job.create_job(callback=config(server))
    await job.upload_files(wavs(tmp_path, 2))
    await job.start()
    for _ in range(1000):  # up to 10 s: the job ends and calls back before anyone waits
        if emulator.callback_deliveries:
            break
        await asyncio.sleep(0.01)
    assert emulator.callback_deliveries, "the job never called back"
    # too short for a last look a second before the timeout: the one look goes at once
    status = await job.wait_until_complete(timeout=1.0)
    assert status.job_state is JobState.COMPLETED
    assert len(emulator.calls("status")) == 1


async def test_duplicated_callbacks_wake_the_wait_once(
    real_client: AsyncSarvam, emulator: Emulator, server: CallbackServer, tmp_path: Path
) -> None:
    emulator.job_duration = 0.05
    emulator.fail_next_callback("duplicated", delay=0)
    emulator.fail_next_callback("delayed", delay=0.3)  # the second job: late, not lost
    await _one_job(real_client, config(server), tmp_path / "a")
    await _one_job(real_client, config(server), tmp_path / "b")
    assert len(emulator.calls("status")) == 2
    deliveries = emulator.callback_deliveries
    assert [(d.fault, d.status) for d in deliveries] == [
        ("duplicated", 200),
        ("duplicated", 200),
        ("delayed", 200),
    ]


@pytest.fixture(autouse=True)
def _folders(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()


async def test_wrong_token_and_lost_callbacks_fall_back_on_the_safety_poll(
    real_client: AsyncSarvam, emulator: Emulator, server: CallbackServer, tmp_path: Path
) -> None:
    emulator.job_duration = 0.05
    emulator.fail_next_callback("wrong_token")
    emulator.fail_next_callback("lost")
    cfg = config(server, safety_poll=0.2)
    await _one_job(real_client, cfg, tmp_path / "a")
    await _one_job(real_client, cfg, tmp_path / "b")
    faults = [(d.fault, d.status) for d in emulator.callback_deliveries]
    assert faults == [("wrong_token", 403), ("lost", "lost")]
    assert len(emulator.calls("status")) >= 2


async def test_a_fan_out_on_callbacks_costs_five_calls_a_job(
    real_client: AsyncSarvam, emulator: Emulator, server: CallbackServer, tmp_path: Path
) -> None:
    emulator.job_duration = 0.05
    emulator.callback_faults = CallbackFaults(duplicated=0.5, seed=3)
    manifest = tmp_path / "run.manifest"
    oks = await asyncio.wait_for(
        run(
            real_client,
            wavs(tmp_path, 45),
            tmp_path / "out",
            callback=config(server),
            manifest=manifest,
        ),
        30,
    )
    assert len(oks) == 45 and all(oks)
    jobs = len(emulator.calls("initiate"))
    assert jobs == 3 and emulator.stats.api_requests == 5 * jobs
    text = manifest.read_text()
    assert server.receiver.token not in text and server.receiver.token_hash in text


async def test_lost_callbacks_still_complete_every_file(
    real_client: AsyncSarvam, emulator: Emulator, server: CallbackServer, tmp_path: Path
) -> None:
    emulator.job_duration = 0.05
    emulator.callback_faults = CallbackFaults(lost=1.0)
    oks = await asyncio.wait_for(
        run(
            real_client,
            wavs(tmp_path, 30),
            tmp_path / "out",
            callback=config(server, safety_poll=0.1),
        ),
        30,
    )
    assert len(oks) == 30 and all(oks)
    assert {d.status for d in emulator.callback_deliveries} == {"lost"}


class Service:
    """A web service that stays up across runs; each run mounts its own receiver."""

    def __init__(self) -> None:
        self.receiver = CallbackReceiver()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        return await aiohttp_callback_handler(self.receiver)(request)

    async def __aenter__(self) -> Service:
        app = web.Application()
        app.router.add_post("/sarvam", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/sarvam"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


async def test_a_resumed_run_accepts_its_jobs_callbacks(tmp_path: Path) -> None:
    """Run 1 starts its jobs and stops; run 2 (a new token) re-attaches and is called back."""
    clock = ManualClock()
    manifest = tmp_path / "run.manifest"
    paths = wavs(tmp_path, 25)
    async with (
        Service() as service,
        Emulator(api_key=KEY, clock=clock, job_duration=100) as emu,
        AsyncSarvam(api_key=KEY, base_url=emu.url, adaptive_rate=False) as client,
    ):
        first = service.receiver
        cfg = CallbackConfig(service.url, first, safety_poll=NEVER)
        task = asyncio.ensure_future(
            run(client, paths, tmp_path / "out", callback=cfg, manifest=manifest)
        )
        while manifest.read_text().count('"started"') < 2 if manifest.exists() else True:
            await asyncio.sleep(0.01)  # both jobs started and journaled
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert first.token not in manifest.read_text()

        service.receiver = second = CallbackReceiver()  # the next run: a fresh token
        emu.reset_requests()
        cfg = CallbackConfig(service.url, second, safety_poll=NEVER)
        resumed = asyncio.ensure_future(
            run(client, paths, tmp_path / "out", callback=cfg, manifest=manifest)
        )
        while len(emu.calls("status")) < 2:  # each re-attached job checks once first
            await asyncio.sleep(0.01)
        clock.advance(200)
        oks = await asyncio.wait_for(resumed, 30)
    assert len(oks) == 25 and all(oks)
    assert [d.status for d in emu.callback_deliveries] == [200, 200]
    assert len(emu.calls("status")) == 4  # the check first, then one per callback
    assert len(emu.calls("initiate")) == 0


async def test_secrets_stay_out_of_the_log(
    real_client: AsyncSarvam,
    emulator: Emulator,
    server: CallbackServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator.job_duration = 0.05
    emulator.fail_next_callback("wrong_token")
    with caplog.at_level(logging.DEBUG):
        await _one_job(real_client, config(server, safety_poll=0.1), tmp_path)
    assert server.receiver.token not in caplog.text


async def test_a_handler_mounted_in_an_existing_app(
    real_client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    receiver = CallbackReceiver()
    app = web.Application()
    app.router.add_post("/sarvam", aiohttp_callback_handler(receiver))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        emulator.job_duration = 0.05
        cfg = CallbackConfig(f"http://127.0.0.1:{port}/sarvam", receiver, safety_poll=NEVER)
        await _one_job(real_client, cfg, tmp_path)
    finally:
        await runner.cleanup()
    assert len(emulator.calls("status")) == 1
