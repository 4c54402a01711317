"""Presigned-URL traffic: streaming uploads from disk and atomic streaming downloads.

Storage requests never carry the API key (it is only ever a per-request header of API
calls). They are retried with the client's policy on connection errors, 408, 429 and 5xx;
every attempt opens a fresh body. Failures surface as StorageError naming the file, never
the URL: its query string is a credential.

Every transfer is bounded by :class:`TransferLimits`: a stall timeout (no byte sent or
received for that long, in either direction: a server that accepts an upload and never
reads it, or trickles a download, is abandoned) and an optional limit on the whole
transfer; downloads are also capped in decoded bytes. A local write failure (disk full) is
a LocalWriteError, and no temporary ``.part`` file outlives its download, whatever ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import aiohttp

from . import _constants as C
from . import _options
from ._filenames import temporary_name
from ._retry import RetryPolicy
from ._transport import read_capped, status_error
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    LocalWriteError,
    StorageError,
)
from .models import StorageContainerType

__all__ = [
    "AUDIO_EXTENSIONS",
    "StorageAccess",
    "TransferLimits",
    "content_type_for",
    "download_to",
    "part_files",
    "storage_policy",
    "upload_from",
]

_CONTENT_TYPES = {
    ".wav": "audio/wav",
    ".wave": "audio/wav",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".mp4": "audio/mp4",
    ".aac": "audio/aac",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/opus",
    ".flac": "audio/flac",
    ".webm": "audio/webm",
    ".amr": "audio/amr",
    ".wma": "audio/x-ms-wma",
    ".aif": "audio/aiff",
    ".aiff": "audio/aiff",
    ".pcm": "application/octet-stream",
}


AUDIO_EXTENSIONS = frozenset(_CONTENT_TYPES)
"""Extensions of the audio formats the API documents (its ``input_audio_codec`` list)."""


def content_type_for(name: str) -> str:
    """The audio MIME type for a file name, by extension (a fixed table, same everywhere)."""
    return _CONTENT_TYPES.get(os.path.splitext(name)[1].lower(), "application/octet-stream")


def storage_policy(policy: RetryPolicy) -> RetryPolicy:
    """The client's policy with the statuses storage services ask to retry."""
    return dataclasses.replace(policy, retry_statuses=C.STORAGE_RETRY_STATUSES)


@dataclass(frozen=True)
class TransferLimits:
    """Bounds of every storage transfer; see the module docstring and ``_constants``."""

    stall: float = C.STORAGE_STALL_TIMEOUT
    total: float | None = C.STORAGE_TRANSFER_TIMEOUT
    max_download: int = C.MAX_TRANSCRIPT_BYTES

    def __post_init__(self) -> None:
        # the client's options of the same names: checked here, their one home
        object.__setattr__(self, "stall", _options.seconds(self.stall, "storage_stall_timeout"))
        total = _options.seconds(self.total, "storage_timeout", none=True)
        object.__setattr__(self, "total", total)
        limit = _options.count(self.max_download, "max_transcript_bytes")
        object.__setattr__(self, "max_download", int(limit))


class _Progress:
    """When a transfer last moved a byte (loop time); the stall watchdog reads it."""

    def __init__(self) -> None:
        self.last = asyncio.get_running_loop().time()

    def moved(self) -> None:
        self.last = asyncio.get_running_loop().time()


async def _bounded(
    step: Awaitable[None], progress: _Progress, limits: TransferLimits, what: str
) -> None:
    """Await ``step``; abandon it (APITimeoutError) on a stall or past the total limit.

    The watchdog runs beside the transfer rather than as a socket timeout because a blocked
    write (a peer that never reads) never trips aiohttp's read timeout.
    """
    task = asyncio.ensure_future(step)
    loop = asyncio.get_running_loop()
    ends = None if limits.total is None else loop.time() + limits.total
    try:
        while True:
            wake = progress.last + limits.stall
            if ends is not None:
                wake = min(wake, ends)
            done, _ = await asyncio.wait({task}, timeout=max(0.0, wake - loop.time()))
            if done:
                return task.result()
            now = loop.time()
            if ends is not None and now >= ends:
                raise APITimeoutError(
                    f"{what} took longer than the storage_timeout of {limits.total:g}s"
                )
            if now >= progress.last + limits.stall:
                raise APITimeoutError(
                    f"{what} stalled: no progress for {limits.stall:g}s (storage_stall_timeout)"
                )
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _timeout(limits: TransferLimits) -> aiohttp.ClientTimeout:
    # The watchdog in _bounded bounds the transfer; aiohttp only bounds the connect.
    return aiohttp.ClientTimeout(
        total=None, sock_connect=min(C.STORAGE_CONNECT_TIMEOUT, limits.stall)
    )


async def _open(path: Path, mode: Literal["rb", "wb"]) -> BinaryIO:
    """Open a file in a worker thread; a cancelled caller never leaks the opened file.

    A file opened for writing that the caller will never see is removed as well.
    """
    opening: asyncio.Future[BinaryIO] = asyncio.ensure_future(
        asyncio.to_thread(_open_binary, path, mode)
    )
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_abandon(path if mode == "wb" else None))
        raise


def _open_binary(path: Path, mode: Literal["rb", "wb"]) -> BinaryIO:
    return path.open(mode)


def _abandon(created: Path | None) -> Callable[[asyncio.Future[BinaryIO]], None]:
    def close(opening: asyncio.Future[BinaryIO]) -> None:
        if not opening.cancelled() and opening.exception() is None:
            with contextlib.suppress(OSError):
                opening.result().close()
            if created is not None:
                with contextlib.suppress(OSError):
                    created.unlink()

    return close


def part_files(dest: Path) -> list[Path]:
    """Temporary files a download of ``dest`` may have left (a kill, a full disk)."""
    try:
        return list(dest.parent.glob(temporary_name(_glob_escape(dest.name), "*")))
    except OSError:
        return []


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _remove_parts(dest: Path) -> None:
    for part in part_files(dest):
        with contextlib.suppress(OSError):
            part.unlink()


async def _file_chunks(f: BinaryIO, on_bytes: Callable[[int], None] | None) -> AsyncIterator[bytes]:
    """Read an open file in chunks off the event loop; constant memory whatever its size.

    The caller owns (and closes) the file: aiohttp may stop iterating once it has sent
    Content-Length bytes, so this generator cannot be relied on to reach its end.
    """
    while True:
        chunk = await asyncio.to_thread(f.read, C.STORAGE_CHUNK_SIZE)
        if not chunk:
            return
        yield chunk
        if on_bytes is not None:
            on_bytes(len(chunk))


async def _send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    name: str,
    *,
    limits: TransferLimits,
    progress: _Progress,
    headers: dict[str, str] | None = None,
    data: AsyncIterator[bytes] | None = None,
    sink: Callable[[aiohttp.ClientResponse], Awaitable[None]] | None = None,
) -> None:
    """One storage attempt; raises APIStatusError / APIConnectionError for the policy."""

    async def exchange() -> None:
        async with session.request(
            method, url, data=data, headers=headers, timeout=_timeout(limits)
        ) as resp:
            progress.moved()
            if not 200 <= resp.status < 300:
                body, _ = await read_capped(resp, C.MAX_RESPONSE_BYTES)
                raise status_error(resp.status, body, resp.headers, reason=resp.reason)
            if sink is not None:
                await sink(resp)

    failure: APIConnectionError
    try:
        await _bounded(exchange(), progress, limits, f"{method} of {name}")
        return
    except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
        failure = APITimeoutError(f"{method} of {name} timed out")
    except aiohttp.ClientError as exc:
        failure = APIConnectionError(f"{method} of {name} failed: {type(exc).__name__}")
    raise failure  # unchained: aiohttp's exceptions carry the signed URL


async def _with_retries(
    attempt: Callable[[], Awaitable[None]], policy: RetryPolicy, name: str, what: str
) -> None:
    started = policy.clock()
    try:
        try:
            await attempt()
        except (APIStatusError, APIConnectionError) as exc:
            if not policy.should_retry(exc):
                raise
            await policy.run(attempt, exc, started=started, describe=f"{what} {name}")
    except APIStatusError as exc:
        raise StorageError(
            f"{what} failed with HTTP {exc.status_code} ({exc.message})"
            + (f" after {exc.attempts} attempts" if exc.attempts > 1 else ""),
            file_name=name,
            status_code=exc.status_code,
        ) from None
    except APIConnectionError as exc:
        raise StorageError(
            f"{what} failed: {exc.message}"
            + (f" after {exc.attempts} attempts" if exc.attempts > 1 else ""),
            file_name=name,
        ) from None


async def upload_from(
    session: aiohttp.ClientSession,
    url: str,
    path: Path,
    *,
    name: str,
    storage: StorageContainerType,
    policy: RetryPolicy,
    limits: TransferLimits | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> int:
    """PUT ``path`` to a presigned URL, streamed from disk; returns the bytes sent.

    Sends ``Content-Type`` from the extension, ``Content-Length``, and
    ``x-ms-blob-type: BlockBlob`` for Azure storage only. Raises StorageError (with
    ``status_code`` 403 when the signature has expired: fetch fresh links and retry).
    """
    limits = limits or TransferLimits()
    try:
        size = (await asyncio.to_thread(path.stat)).st_size
    except OSError as exc:
        raise StorageError(f"cannot read the file: {exc.strerror}", file_name=name) from None
    headers = {"Content-Type": content_type_for(name), "Content-Length": str(size)}
    if storage.is_azure:
        headers["x-ms-blob-type"] = "BlockBlob"
    sent = 0
    progress: _Progress

    def count(n: int) -> None:
        nonlocal sent
        sent += n
        progress.moved()
        if on_bytes is not None:
            on_bytes(n)

    async def attempt() -> None:
        nonlocal sent, progress
        progress = _Progress()
        if sent and on_bytes is not None:
            on_bytes(-sent)  # a retry starts over: take back what the failed try reported
        sent = 0
        try:
            f = await _open(path, "rb")  # a fresh body for every attempt
        except OSError as exc:
            raise StorageError(f"cannot read the file: {exc.strerror}", file_name=name) from None
        try:
            await _send(
                session,
                "PUT",
                url,
                name,
                limits=limits,
                progress=progress,
                headers=headers,
                data=_file_chunks(f, count),
            )
        finally:
            f.close()  # waits for a read still running in a worker thread (buffered lock)

    await _with_retries(attempt, policy, name, "upload")
    return size


async def download_to(
    session: aiohttp.ClientSession,
    url: str,
    dest: Path,
    *,
    name: str,
    policy: RetryPolicy,
    limits: TransferLimits | None = None,
) -> int:
    """GET a presigned URL into ``dest`` atomically; returns the bytes written.

    Streams to a hidden temporary file beside ``dest``, fsyncs it and renames it into
    place, so a crash never leaves a half-written file under the final name; temporary
    files an earlier run left for ``dest`` are removed first. Raises StorageError (over
    ``max_download`` decoded bytes, or the storage failed) or LocalWriteError (the disk
    refused the file).
    """
    limits = limits or TransferLimits()
    await asyncio.to_thread(_remove_parts, dest)
    written = 0
    progress: _Progress

    async def sink(resp: aiohttp.ClientResponse) -> None:
        nonlocal written
        tmp = dest.with_name(temporary_name(dest.name))
        try:
            f = await _open(tmp, "wb")
        except OSError as exc:
            raise _local_error(exc, tmp.parent, name) from None
        try:
            written = 0
            async for chunk in resp.content.iter_chunked(C.STORAGE_CHUNK_SIZE):
                progress.moved()
                written += len(chunk)
                if written > limits.max_download:
                    raise StorageError(
                        f"download is larger than max_transcript_bytes={limits.max_download} "
                        "(decoded); raise it if such transcripts are expected",
                        file_name=name,
                    )
                await asyncio.to_thread(f.write, chunk)
            await asyncio.to_thread(_commit, f, tmp, dest)
        except OSError as exc:
            await asyncio.to_thread(_discard, f, tmp)
            raise _local_error(exc, dest, name) from None
        except BaseException:
            await asyncio.shield(asyncio.to_thread(_discard, f, tmp))
            raise

    async def attempt() -> None:
        nonlocal progress
        progress = _Progress()
        await _send(session, "GET", url, name, limits=limits, progress=progress, sink=sink)

    await _with_retries(attempt, policy, name, "download")
    return written


def _local_error(exc: OSError, where: Path, name: str) -> LocalWriteError:
    hint = " (the disk is full: free space and run again)" if exc.errno == errno.ENOSPC else ""
    return LocalWriteError(
        f"cannot write {where}: {exc.strerror or exc}{hint}", file_name=name, status_code=0
    )


def _commit(f: BinaryIO, tmp: Path, dest: Path) -> None:
    """Make ``tmp`` durable and rename it to ``dest`` (and make the rename durable)."""
    f.flush()
    os.fsync(f.fileno())
    f.close()
    os.replace(tmp, dest)
    fd = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _discard(f: BinaryIO, tmp: Path) -> None:
    """Drop a temporary file; never raises (closing flushes, which fails on a full disk)."""
    with contextlib.suppress(OSError):
        f.close()
    with contextlib.suppress(OSError):
        tmp.unlink()


class StorageAccess:
    """A client's way to storage: its session, its bound on transfers, its retry policy.

    Jobs move files through this object only; it never sees the API key. ``session`` is a
    zero-argument callable returning the client's live session; ``bind`` is called before
    every transfer, ahead of any loop-bound primitive (the client moves to a new event
    loop there, calling :meth:`rebind`).
    """

    def __init__(
        self,
        session: Callable[[], aiohttp.ClientSession],
        *,
        max_transfers: int,
        retry: RetryPolicy,
        limits: TransferLimits | None = None,
        bind: Callable[[], None] | None = None,
    ) -> None:
        self._session = session
        self._max_transfers = max_transfers
        self._transfers = asyncio.Semaphore(max_transfers)
        self._active = 0
        self._bind = bind
        self.policy = storage_policy(retry)
        self.limits = limits or TransferLimits()

    @property
    def busy(self) -> bool:
        """True while a transfer runs or waits for a slot."""
        return self._active > 0

    def rebind(self) -> None:
        """A fresh bound on transfers for a new event loop (nothing may be in flight)."""
        self._transfers = asyncio.Semaphore(self._max_transfers)

    async def upload(
        self,
        url: str,
        path: Path,
        *,
        name: str,
        storage: StorageContainerType,
        on_bytes: Callable[[int], None] | None = None,
    ) -> int:
        """:func:`upload_from` once a transfer slot is free; returns the bytes sent."""
        if self._bind is not None:
            self._bind()
        self._active += 1
        try:
            async with self._transfers:
                return await upload_from(
                    self._session(),
                    url,
                    path,
                    name=name,
                    storage=storage,
                    policy=self.policy,
                    limits=self.limits,
                    on_bytes=on_bytes,
                )
        finally:
            self._active -= 1

    async def download(self, url: str, dest: Path, *, name: str) -> int:
        """:func:`download_to` once a transfer slot is free; returns the bytes written."""
        if self._bind is not None:
            self._bind()
        self._active += 1
        try:
            async with self._transfers:
                return await download_to(
                    self._session(), url, dest, name=name, policy=self.policy, limits=self.limits
                )
        finally:
            self._active -= 1
