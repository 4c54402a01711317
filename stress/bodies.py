"""Memory against hostile API bodies: a gzip bomb (1 GiB decoded) and a plain 200 MB body.

Run: python -m stress.bodies
Prints the peak of memory allocated (tracemalloc) while each answer is handled, with the
default cap; the server's bodies are built before measuring.
"""

from __future__ import annotations

import asyncio
import gzip
import multiprocessing
import socket
import sys
import tracemalloc

from aiohttp import web

from sarvam_async import AsyncSarvam, RetryPolicy, errors

KEY = "stress-key"


def serve(port: int) -> None:
    """The hostile server, in its own process so that its buffers are not measured."""
    bomb = gzip.compress(b"0" * (1024**3), compresslevel=9)
    plain = b" " * (200 * 1024**2)

    async def handler(request: web.Request) -> web.Response:
        if request.path.endswith("/bomb/status"):
            return web.Response(body=bomb, headers={"Content-Encoding": "gzip"})
        return web.Response(body=plain, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


async def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = multiprocessing.Process(target=serve, args=(port,), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        await asyncio.sleep(8)  # compressing 1 GiB takes a few seconds
        async with AsyncSarvam(api_key=KEY, base_url=url, retry=RetryPolicy.disabled()) as client:
            cases = (("bomb", "gzip bomb (1 MB -> 1 GiB)"), ("plain", "plain 200 MB body"))
            for job, what in cases:
                tracemalloc.start()
                outcome = "read whole"
                try:
                    await client.speech_to_text_job.get_status(job)
                except errors.ResponseTooLargeError:
                    outcome = "ResponseTooLargeError"
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                print(f"{what}: {outcome}, peak allocated {peak / 2**20:.0f} MiB")
    finally:
        server.terminate()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
