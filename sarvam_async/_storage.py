"""Presigned-URL traffic: streaming uploads from disk and atomic streaming downloads.

Storage requests never carry the API key (it is only ever a per-request header of API
calls). They are retried with the client's policy on connection errors, 408, 429 and 5xx;
every attempt opens a fresh body. Failures surface as StorageError naming the file, never
the URL: its query string is a credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import BinaryIO, Literal

import aiohttp

from . import _constants as C
from ._retry import RetryPolicy
from ._transport import status_error
from .errors import APIConnectionError, APIStatusError, APITimeoutError, StorageError
from .models import StorageContainerType

__all__ = [
    "StorageAccess",
    "content_type_for",
    "download_to",
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


def content_type_for(name: str) -> str:
    """The audio MIME type for a file name, by extension (a fixed table, same everywhere)."""
    return _CONTENT_TYPES.get(os.path.splitext(name)[1].lower(), "application/octet-stream")


def storage_policy(policy: RetryPolicy) -> RetryPolicy:
    """The client's policy with the statuses storage services ask to retry."""
    return dataclasses.replace(policy, retry_statuses=C.STORAGE_RETRY_STATUSES)


def _timeout() -> aiohttp.ClientTimeout:
    # No total limit (a large file takes as long as it takes); abandon a silent socket.
    return aiohttp.ClientTimeout(
        total=None, sock_connect=C.STORAGE_CONNECT_TIMEOUT, sock_read=C.STORAGE_READ_TIMEOUT
    )


async def _open(path: Path, mode: Literal["rb", "wb"]) -> BinaryIO:
    """Open a file in a worker thread; a cancelled caller never leaks the opened file."""
    opening: asyncio.Future[BinaryIO] = asyncio.ensure_future(
        asyncio.to_thread(_open_binary, path, mode)
    )
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_close_result)
        raise


def _open_binary(path: Path, mode: Literal["rb", "wb"]) -> BinaryIO:
    return path.open(mode)


def _close_result(opening: asyncio.Future[BinaryIO]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()


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
    headers: dict[str, str] | None = None,
    data: AsyncIterator[bytes] | None = None,
    sink: Callable[[aiohttp.ClientResponse], Awaitable[None]] | None = None,
) -> None:
    """One storage attempt; raises APIStatusError / APIConnectionError for the policy."""
    try:
        async with session.request(
            method, url, data=data, headers=headers, timeout=_timeout()
        ) as resp:
            if not 200 <= resp.status < 300:
                body = await resp.read()
                raise status_error(resp.status, body, resp.headers, reason=resp.reason)
            if sink is not None:
                await sink(resp)
    except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise APITimeoutError(f"{method} of {name} timed out") from exc
    except aiohttp.ClientError as exc:
        raise APIConnectionError(f"{method} of {name} failed: {type(exc).__name__}") from exc


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
    on_bytes: Callable[[int], None] | None = None,
) -> int:
    """PUT ``path`` to a presigned URL, streamed from disk; returns the bytes sent.

    Sends ``Content-Type`` from the extension, ``Content-Length``, and
    ``x-ms-blob-type: BlockBlob`` for Azure storage only. Raises StorageError (with
    ``status_code`` 403 when the signature has expired: fetch fresh links and retry).
    """
    try:
        size = (await asyncio.to_thread(path.stat)).st_size
    except OSError as exc:
        raise StorageError(f"cannot read the file: {exc.strerror}", file_name=name) from None
    headers = {"Content-Type": content_type_for(name), "Content-Length": str(size)}
    if storage.is_azure:
        headers["x-ms-blob-type"] = "BlockBlob"
    sent = 0

    def count(n: int) -> None:
        nonlocal sent
        sent += n
        if on_bytes is not None:
            on_bytes(n)

    async def attempt() -> None:
        nonlocal sent
        if sent and on_bytes is not None:
            on_bytes(-sent)  # a retry starts over: take back what the failed try reported
        sent = 0
        try:
            f = await _open(path, "rb")  # a fresh body for every attempt
        except OSError as exc:
            raise StorageError(f"cannot read the file: {exc.strerror}", file_name=name) from None
        try:
            await _send(session, "PUT", url, name, headers=headers, data=_file_chunks(f, count))
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
) -> int:
    """GET a presigned URL into ``dest`` atomically; returns the bytes written.

    Streams to a hidden temporary file beside ``dest``, fsyncs it and renames it into
    place, so a crash never leaves a half-written file under the final name. Raises
    StorageError.
    """
    written = 0

    async def sink(resp: aiohttp.ClientResponse) -> None:
        nonlocal written
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            f = await _open(tmp, "wb")
        except OSError as exc:
            raise StorageError(
                f"cannot write {tmp.parent}: {exc.strerror}", file_name=name
            ) from None
        try:
            written = 0
            async for chunk in resp.content.iter_chunked(C.STORAGE_CHUNK_SIZE):
                await asyncio.to_thread(f.write, chunk)
                written += len(chunk)
            await asyncio.to_thread(_commit, f, tmp, dest)
        except OSError as exc:
            _discard(f, tmp)
            raise StorageError(f"cannot write {dest}: {exc.strerror}", file_name=name) from None
        except BaseException:
            _discard(f, tmp)
            raise

    async def attempt() -> None:
        await _send(session, "GET", url, name, sink=sink)

    await _with_retries(attempt, policy, name, "download")
    return written


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
    f.close()
    with contextlib.suppress(OSError):
        tmp.unlink()


class StorageAccess:
    """A client's way to storage: its session, its bound on transfers, its retry policy.

    Jobs move files through this object only; it never sees the API key. ``session`` is a
    zero-argument callable returning the client's live session.
    """

    def __init__(
        self,
        session: Callable[[], aiohttp.ClientSession],
        *,
        max_transfers: int,
        retry: RetryPolicy,
    ) -> None:
        self._session = session
        self._transfers = asyncio.Semaphore(max_transfers)
        self.policy = storage_policy(retry)

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
        async with self._transfers:
            return await upload_from(
                self._session(),
                url,
                path,
                name=name,
                storage=storage,
                policy=self.policy,
                on_bytes=on_bytes,
            )

    async def download(self, url: str, dest: Path, *, name: str) -> int:
        """:func:`download_to` once a transfer slot is free; returns the bytes written."""
        async with self._transfers:
            return await download_to(self._session(), url, dest, name=name, policy=self.policy)
