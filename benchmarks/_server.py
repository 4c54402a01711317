"""Servers for the benchmarks, each run in its own process.

``FastServer`` answers the batch API's route shapes with canned, precomputed JSON: a
download-files answer with ``files`` entries, a status answer with ``job_details`` entries
(far more than the live API's 20 per job: it stresses decoding), and, with ``throttle_every``
set, every n-th API request refused with 429 and ``retry-after-ms: 5``. ``/storage/<name>``
is a presigned-style blob store: PUT streams the body and discards it, GET streams
``?size=N`` bytes of generated data.

``emulator`` mode runs the project's ``Emulator`` instead, with one completed job.

``ServerProcess`` starts either in a fresh process and talks to it over a pipe: the URL and
job to use, then snapshots of its counters and CPU time (or of the emulator's jobs) on
request.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import resource
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web

API_KEY = "bench-key"
JOB_ID = "20250220_9fb0faff-1f2e-4c3d-8b5a-6e7f8091a2b3"
PREFIX = "/speech-to-text/job/v1"
CHUNK = 256 * 1024


@dataclass(frozen=True)
class ServerConfig:
    """What the server answers; ``kind`` is ``fast`` or ``emulator``.

    ``emulator`` holds ``Emulator`` options; ``prepare`` runs one file through it first (for
    scenarios that need a completed job).
    """

    kind: str = "fast"
    files: int = 1
    job_details: int = 1
    throttle_every: int = 0
    emulator: dict[str, Any] = field(default_factory=dict)
    prepare: bool = True


def download_body(files: int) -> bytes:
    """A FilesDownloadResponse with ``files`` presigned URLs (names ``0.json`` ...)."""
    sig = "?sv=2023-11-03&se=2030-01-01T00%3A00%3A00Z&sr=b&sp=r&sig=AbCdEfGhIjKlMnOpQrStUv%3D"
    urls = {
        f"{i}.json": {
            "file_url": f"https://store.example.blob.core.windows.net/out/{JOB_ID}/{i}.json{sig}",
            "file_metadata": None,
        }
        for i in range(files)
    }
    return msgspec.json.encode(
        {
            "job_id": JOB_ID,
            "job_state": "Completed",
            "download_urls": urls,
            "storage_container_type": "Azure",
        }
    )


def status_body(details: int) -> bytes:
    """A JobStatusResponse of a completed job with ``details`` job_details entries."""
    tasks = [
        {
            "inputs": [{"file_name": f"call-recording-{i:05d}.wav", "file_id": str(i)}],
            "outputs": [{"file_name": f"{i}.json", "file_id": str(i)}],
            "state": "Success",
            "error_message": "",
            "exception_name": "",
        }
        for i in range(details)
    ]
    return msgspec.json.encode(
        {
            "job_id": JOB_ID,
            "job_state": "Completed",
            "created_at": "2025-02-20T06:10:17.678952+00:00",
            "updated_at": "2025-02-20T06:12:41.102345+00:00",
            "storage_container_type": "Azure",
            "total_files": details,
            "successful_files_count": details,
            "failed_files_count": 0,
            "error_message": "",
            "job_details": tasks,
        }
    )


_THROTTLED = msgspec.json.encode(
    {"error": {"message": "Rate limit exceeded", "code": "rate_limit_exceeded_error"}}
)


class FastServer:
    """The canned-answer handler (aiohttp low-level server); counts what it answers."""

    def __init__(self, config: ServerConfig) -> None:
        self.download = download_body(config.files)
        self.status = status_body(config.job_details)
        self.throttle_every = config.throttle_every
        self.requests = 0
        self.throttled = 0
        self.block = bytes(range(256)) * (CHUNK // 256)
        self.json = {"Content-Type": "application/json"}
        self.retry = {**self.json, "retry-after-ms": "5", "Retry-After": "1"}

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path.startswith("/storage/"):
            return await self._storage(request)
        await request.read()
        self.requests += 1
        if self.throttle_every and self.requests % self.throttle_every == 0:
            self.throttled += 1
            return web.Response(status=429, body=_THROTTLED, headers=self.retry)
        if request.method == "POST" and path == PREFIX + "/download-files":
            return web.Response(body=self.download, headers=self.json)
        if request.method == "GET" and path.endswith("/status"):
            return web.Response(body=self.status, headers=self.json)
        return web.Response(status=404, body=b'{"error":{"message":"not found"}}')

    async def _storage(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "PUT":
            while await request.content.readany():
                pass
            return web.Response(status=201)
        size = int(request.query.get("size", "0"))
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.content_length = size
        await resp.prepare(request)
        block = self.block
        while size > 0:
            await resp.write(block if size >= len(block) else block[:size])
            size -= len(block)
        await resp.write_eof()
        return resp


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _emulator_job(url: str) -> tuple[str, str]:
    """Run one small file through the emulator; returns its job id and output name."""
    from sarvam_async import AsyncSarvam

    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp, "a.wav")
        audio.write_bytes(b"RIFF" + bytes(2000))
        async with AsyncSarvam(api_key=API_KEY, base_url=url) as client:
            async for outcome in client.transcribe_files(
                [audio], output_dir=tmp, poll_interval=0.05
            ):
                assert outcome.ok and outcome.job_id, outcome
                status = await client.speech_to_text_job.get_status(outcome.job_id)
                return outcome.job_id, status.job_details[0].outputs[0].file_name
    raise RuntimeError("the emulator returned no outcome")


async def _serve(config: ServerConfig, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    counters: Callable[[], tuple[int, int]]
    created: Callable[[], dict[str, int]] = dict
    close: Callable[[], Awaitable[None]]
    if config.kind == "emulator":
        from sarvam_async.testing import Emulator

        emu = Emulator(api_key=API_KEY, record_requests=False, **config.emulator)
        await emu.start()
        url, close = emu.url, emu.close
        job_id, output = await _emulator_job(url) if config.prepare else ("", "")

        def counters() -> tuple[int, int]:
            stats = emu.stats
            return stats.api_requests, stats.rate_limited

        def created() -> dict[str, int]:
            jobs = emu.jobs.values()
            started = sum(job.started_at is not None for job in jobs)
            inputs = sum(len(job.inputs) for job in jobs)
            return {"jobs": len(jobs), "started": started, "inputs": inputs}

    else:
        fast = FastServer(config)
        runner = web.ServerRunner(web.Server(fast.handle, access_log=None))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        url, close = f"http://127.0.0.1:{runner.addresses[0][1]}", runner.cleanup
        job_id, output = JOB_ID, "0.json"

        def counters() -> tuple[int, int]:
            return fast.requests, fast.throttled

    conn.send({"url": url, "job_id": job_id, "output": output})
    stop = asyncio.Event()

    def control() -> None:  # a thread: answers snapshots until told to stop
        while True:
            try:
                msg = conn.recv()
            except EOFError:
                break
            if msg == "stop":
                break
            if msg == "jobs":
                conn.send(created())
                continue
            requests, throttled = counters()
            conn.send({"requests": requests, "throttled": throttled, "cpu": _cpu()})
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=control, daemon=True).start()
    await stop.wait()
    await close()


def _main(config: ServerConfig, conn: Connection) -> None:
    asyncio.run(_serve(config, conn))


class ServerProcess:
    """A server in a fresh process: ``url``, ``job_id``, ``output``; ``snapshot()``; ``stop()``."""

    def __init__(self, config: ServerConfig) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_main, args=(config, child), daemon=True)
        self._proc.start()
        child.close()
        if not self._conn.poll(60):
            self.stop()
            raise RuntimeError(f"server did not start: {asdict(config)}")
        hello = self._conn.recv()
        self.url: str = hello["url"]
        self.job_id: str = hello["job_id"]
        self.output: str = hello["output"]

    def snapshot(self) -> dict[str, float]:
        """The server's request and 429 counts and its CPU seconds so far."""
        self._conn.send("snapshot")
        result: dict[str, float] = self._conn.recv()
        return result

    def jobs(self) -> dict[str, int]:
        """Emulator only: jobs created and started, and input files received (else {})."""
        self._conn.send("jobs")
        result: dict[str, int] = self._conn.recv()
        return result

    def stop(self) -> None:
        """Stop the server process and wait for it."""
        with contextlib.suppress(BrokenPipeError, OSError):
            self._conn.send("stop")
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
