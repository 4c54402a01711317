"""The clients under test and the body of one measured client process.

Every client makes the same call: download-files for one output name, or the status of one
job, at concurrency ``conc`` (that many worker coroutines) for ``calls`` calls in all. A
client process warms up, then measures only the timed section: CPU (user+sys, all threads)
and wall time; peak RSS is the process's ``ru_maxrss``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from ._server import API_KEY, PREFIX

Call = Callable[[], Awaitable[Any]]

CLIENTS = (
    "sarvam_async",
    "sarvam_async (adaptive_rate=False)",
    "aiohttp + json.loads",
    "aiohttp + msgspec",
    "aiohttp + msgspec + tenacity",
    "sarvamai 0.1.39",
)
BASELINE = "aiohttp + json.loads"
SDK = "sarvamai 0.1.39"


@dataclass(frozen=True)
class Job:
    """One client process's work."""

    client: str
    url: str
    op: str  # "download" or "status"
    job_id: str
    output: str
    conc: int
    calls: int
    warmup: int
    time_limit: float = 300.0  # seconds; calls not finished by then count as unfinished


# The msgspec baselines' own Structs, written as a user of raw aiohttp + msgspec would: the
# library's models (sarvam_async.models) would put the library itself into the baseline.


class FileUrl(msgspec.Struct):
    file_url: str
    file_metadata: dict[str, Any] | None = None


class DownloadResponse(msgspec.Struct):
    job_id: str
    job_state: str
    download_urls: dict[str, FileUrl]
    storage_container_type: str


class FileDetails(msgspec.Struct):
    file_name: str
    file_id: str


class Task(msgspec.Struct):
    inputs: list[FileDetails] = []
    outputs: list[FileDetails] = []
    state: str | None = None
    error_message: str | None = None
    exception_name: str | None = None


class StatusResponse(msgspec.Struct):
    job_id: str
    job_state: str
    storage_container_type: str
    created_at: str | None = None
    updated_at: str | None = None
    total_files: int = 0
    successful_files_count: int = 0
    failed_files_count: int = 0
    error_message: str | None = None
    job_details: list[Task] = []


class FilesRequest(msgspec.Struct):
    job_id: str
    files: list[str]


class Throttled(Exception):
    """A 429/503 answer (the naive tenacity client retries it)."""


class StatusError(Exception):
    """Any other non-2xx answer."""


def _check(status: int) -> None:
    if status in (429, 503):
        raise Throttled(status)
    if not 200 <= status < 300:
        raise StatusError(status)


@contextlib.asynccontextmanager
async def _sarvam_async(job: Job, adaptive: bool) -> AsyncIterator[Call]:
    from sarvam_async import AsyncSarvam

    async with AsyncSarvam(
        api_key=API_KEY, base_url=job.url, max_connections=job.conc, adaptive_rate=adaptive
    ) as client:
        stt = client.speech_to_text_job
        files = [job.output]
        if job.op == "status":
            yield lambda: stt.get_status(job.job_id)
        else:
            yield lambda: stt.get_download_links(job_id=job.job_id, files=files)


@contextlib.asynccontextmanager
async def _raw(job: Job, decode: str) -> AsyncIterator[Call]:
    import aiohttp

    headers = {"api-subscription-key": API_KEY}
    post_headers = {**headers, "Content-Type": "application/json"}
    dl_url = job.url + PREFIX + "/download-files"
    st_url = f"{job.url}{PREFIX}/{job.job_id}/status"
    dl_dec = msgspec.json.Decoder(DownloadResponse)
    st_dec = msgspec.json.Decoder(StatusResponse)
    enc = msgspec.json.Encoder()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=job.conc)) as s:

        async def dl_json() -> Any:
            body = json.dumps({"job_id": job.job_id, "files": [job.output]}).encode()
            async with s.post(dl_url, data=body, headers=post_headers) as resp:
                _check(resp.status)
                return json.loads(await resp.read())

        async def st_json() -> Any:
            async with s.get(st_url, headers=headers) as resp:
                _check(resp.status)
                return json.loads(await resp.read())

        async def dl_msgspec() -> DownloadResponse:
            body = enc.encode(FilesRequest(job.job_id, [job.output]))
            async with s.post(dl_url, data=body, headers=post_headers) as resp:
                _check(resp.status)
                return dl_dec.decode(await resp.read())

        async def st_msgspec() -> StatusResponse:
            async with s.get(st_url, headers=headers) as resp:
                _check(resp.status)
                return st_dec.decode(await resp.read())

        status = job.op == "status"
        if decode == "json":
            yield st_json if status else dl_json
            return
        call: Call = st_msgspec if status else dl_msgspec
        if decode == "msgspec":
            yield call
            return
        from tenacity import (
            AsyncRetrying,
            retry_if_exception_type,
            stop_after_attempt,
            wait_random_exponential,
        )

        async def with_retries() -> Any:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(8),
                wait=wait_random_exponential(multiplier=0.005, max=2.0),
                retry=retry_if_exception_type((Throttled, aiohttp.ClientConnectionError)),
                reraise=True,
            ):
                with attempt:
                    return await call()
            return None

        yield with_retries


@contextlib.asynccontextmanager
async def _sdk(job: Job) -> AsyncIterator[Call]:
    from sarvamai import AsyncSarvamAI
    from sarvamai.environment import SarvamAIEnvironment

    # The SDK takes its base URL from an environment object (no base_url= argument).
    env = SarvamAIEnvironment(
        base=job.url, creative=job.url, production=job.url.replace("http", "ws", 1)
    )
    client = AsyncSarvamAI(api_subscription_key=API_KEY, environment=env)
    stt = client.speech_to_text_job
    files = [job.output]
    if job.op == "status":
        yield lambda: stt.get_status(job_id=job.job_id)
    else:
        yield lambda: stt.get_download_links(job_id=job.job_id, files=files)
    await client._client_wrapper.httpx_client.httpx_client.aclose()


def open_client(job: Job) -> contextlib.AbstractAsyncContextManager[Call]:
    """The call of ``job.client``, inside its session."""
    if job.client == "sarvam_async":
        return _sarvam_async(job, adaptive=True)
    if job.client == "sarvam_async (adaptive_rate=False)":
        return _sarvam_async(job, adaptive=False)
    if job.client == SDK:
        return _sdk(job)
    decode = {
        "aiohttp + json.loads": "json",
        "aiohttp + msgspec": "msgspec",
        "aiohttp + msgspec + tenacity": "tenacity",
    }[job.client]
    return _raw(job, decode)


def sdk_installed() -> bool:
    """True when the official SDK can be imported."""
    try:
        import sarvamai  # noqa: F401
    except ImportError:
        return False
    return True


async def drive(
    call: Call, calls: int, conc: int, time_limit: float | None = None
) -> tuple[int, int, str]:
    """Make ``calls`` calls with ``conc`` workers, for at most ``time_limit`` seconds.

    Returns the number of failed calls, of calls not finished in time, and the first error.
    """
    remaining = calls
    errors = done = 0
    first = ""

    async def worker() -> None:
        nonlocal remaining, errors, done, first
        while remaining > 0:
            remaining -= 1
            try:
                await call()
            except Exception as exc:
                errors += 1
                first = first or f"{type(exc).__name__}: {exc}"[:200]
            done += 1

    workers = asyncio.gather(*(worker() for _ in range(min(conc, calls))))
    try:
        await asyncio.wait_for(workers, time_limit)
    except asyncio.TimeoutError:
        first = first or f"not finished in {time_limit:.0f} s"
    return errors, calls - done, first


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _measure(job: Job) -> dict[str, Any]:
    async with open_client(job) as call:
        if job.warmup:
            await drive(call, job.warmup, min(job.conc, 50), job.time_limit)
        cpu0, t0 = _cpu(), time.perf_counter()
        errors, unfinished, first = await drive(call, job.calls, job.conc, job.time_limit)
        wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
    return {
        "cpu": cpu,
        "wall": wall,
        "done": job.calls - unfinished,
        "errors": errors + unfinished,
        "unfinished": unfinished,
        "first_error": first,
    }


def client_main(job: Job) -> dict[str, Any]:
    """Body of a fresh client process: measure ``job`` and return the figures."""
    result = asyncio.run(_measure(job))
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result
