"""Hostile servers on loopback for the reliability tests: small aiohttp apps and raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gzip
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FullDisk:
    """A file whose writes fail with ENOSPC after ``room`` bytes (an injected disk full)."""

    def __init__(self, f: Any, room: int) -> None:
        self._f, self._room = f, room

    def write(self, data: bytes) -> int:
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return int(self._f.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def deep_json(depth: int = 1200) -> bytes:
    """A JSON object whose unknown field nests ``depth`` arrays deep (2.4 KB at 1,200)."""
    return b'{"x":' + b"[" * depth + b"]" * depth + b"}"


def gzip_bomb(decoded: int) -> bytes:
    """A gzip body of zeros that expands to ``decoded`` bytes (about 1,000:1)."""
    return gzip.compress(b"0" * decoded, compresslevel=9)


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    """An aiohttp server answering every method and path with ``handler``; yields its URL."""
    app = web.Application(client_max_size=1024**3)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """A TCP server that accepts connections and never reads or answers; yields its URL."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # kept open, never read: the peer's writes block

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for w in held:
            w.close()
        await server.wait_closed()


def job_links(job_id: str, key: str, urls: dict[str, str]) -> bytes:
    """An upload-files or download-files answer whose URLs point where the test wants."""
    import json

    return json.dumps(
        {
            "job_id": job_id,
            "job_state": "Accepted",
            key: {name: {"file_url": url} for name, url in urls.items()},
            "storage_container_type": "Azure",
        }
    ).encode()
