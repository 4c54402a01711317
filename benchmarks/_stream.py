"""Streaming a large file through presigned-style URLs, in a fresh client process.

``sarvam_async`` uses the library's storage functions (``upload_from`` streams from disk,
``download_to`` streams to a temporary file, fsyncs it and renames it into place). The
``aiohttp`` floor PUTs an open file object and writes ``iter_chunked`` chunks to disk,
also fsynced. The input is a sparse file. Peak RSS is reported above the process's own
peak just before the transfer (interpreter, imports and an open session).
"""

from __future__ import annotations

import asyncio
import os
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHUNK = 256 * 1024


@dataclass(frozen=True)
class StreamJob:
    client: str  # "sarvam_async" or "aiohttp"
    direction: str  # "upload" or "download"
    url: str
    size: int


def _rusage() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_maxrss / 1024


async def _transfer(job: StreamJob, tmp: Path) -> tuple[float, float, float, int]:
    import aiohttp

    from sarvam_async import RetryPolicy, StorageContainerType
    from sarvam_async._storage import download_to, upload_from

    src = tmp / "input.wav"
    with src.open("wb") as f:
        f.truncate(job.size)  # sparse: no disk blocks, reads as zeros
    dest = tmp / "output.bin"
    put_url = f"{job.url}/storage/input.wav?sig=x"
    get_url = f"{job.url}/storage/output.bin?size={job.size}"
    async with aiohttp.ClientSession() as session:
        cpu0, base_rss = _rusage()
        t0 = time.perf_counter()
        if job.client == "sarvam_async":
            if job.direction == "upload":
                n = await upload_from(
                    session,
                    put_url,
                    src,
                    name="input.wav",
                    storage=StorageContainerType.AZURE,
                    policy=RetryPolicy(),
                )
            else:
                n = await download_to(
                    session, get_url, dest, name="output.bin", policy=RetryPolicy()
                )
        elif job.direction == "upload":
            with src.open("rb") as f:
                async with session.put(put_url, data=f) as resp:
                    assert resp.status == 201, resp.status
            n = job.size
        else:
            n = 0
            async with session.get(get_url) as resp:
                with dest.open("wb") as out:
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        out.write(chunk)
                        n += len(chunk)
                    out.flush()
                    os.fsync(out.fileno())
        wall = time.perf_counter() - t0
        cpu1, _ = _rusage()
    return wall, cpu1 - cpu0, base_rss, n


def stream_main(job: StreamJob) -> dict[str, Any]:
    """Body of a fresh client process: one transfer of ``job.size`` bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu, base_rss, n = asyncio.run(_transfer(job, Path(tmp)))
    _, peak = _rusage()
    errors = int(n != job.size)
    return {
        "wall": wall,
        "cpu": cpu,
        "mb_s": n / wall / 1e6,
        "rss_mb": peak,
        "rss_above_mb": peak - base_rss,
        "errors": errors,
    }
