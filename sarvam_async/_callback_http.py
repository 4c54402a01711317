"""The receiver on aiohttp: a ready request handler, and a small server for it.

:func:`aiohttp_callback_handler` mounts a :class:`CallbackReceiver` in an aiohttp application
the user already runs. :class:`CallbackServer` runs one on its own, for a process that has no web
service (the CLI's ``--callback-listen``). Both answer at once: checking and dispatching an
event does no I/O, well inside the 30 s the API allows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType

from aiohttp import web

from ._callback_receiver import CallbackReceiver
from .errors import CallbackError, CallbackTooLargeError, ConfigurationError

__all__ = ["CallbackServer", "aiohttp_callback_handler"]

Handler = Callable[[web.Request], Awaitable[web.Response]]


def aiohttp_callback_handler(receiver: CallbackReceiver) -> Handler:
    """An aiohttp handler for ``receiver``: ``app.router.add_post(path, handler)``.

    Answers 200 for an accepted callback (a duplicate too), and the error's status (401,
    403, 413, 400) with a one-line JSON reason otherwise. The token is checked before the
    body is read; a body over ``receiver.max_body`` is not buffered.
    """

    async def handle(request: web.Request) -> web.Response:
        try:
            receiver.check_token(request.headers)
            body = await _read_capped(request, receiver.max_body)
            receiver.receive(body, request.headers)
        except CallbackError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status_code)
        return web.json_response({"ok": True})

    return handle


async def _read_capped(request: web.Request, cap: int) -> bytes:
    """The body, or CallbackTooLargeError as soon as it is known to exceed ``cap``."""
    declared = request.content_length
    if declared is not None and declared > cap:
        raise CallbackTooLargeError(f"callback body of {declared} bytes is over the {cap}-byte cap")
    body = bytearray()
    while chunk := await request.content.read(cap + 1 - len(body)):
        body += chunk
        if len(body) > cap:
            raise CallbackTooLargeError(f"callback body is over the {cap}-byte limit")
    return bytes(body)


class CallbackServer:
    """Serves a receiver at ``path`` on ``host:port`` (POST only), e.g. ``0.0.0.0:8080``.

    ``async with CallbackServer(receiver, port=8080, path="/sarvam") as server:``; ``port``
    0 picks a free port (read ``server.port``). The server listens on plain HTTP: in
    production put it behind the TLS proxy that serves the public ``https://`` URL.
    Raises ConfigurationError if the address cannot be bound.
    """

    def __init__(
        self,
        receiver: CallbackReceiver,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/",
    ) -> None:
        if not path.startswith("/"):
            raise ConfigurationError(f"the callback path must start with '/', got {path!r}")
        self.receiver = receiver
        self.host = host
        self.path = path
        self._port = port
        self._runner: web.AppRunner | None = None

    def __repr__(self) -> str:
        return f"CallbackServer(host={self.host!r}, port={self._port}, path={self.path!r})"

    @property
    def port(self) -> int:
        """The bound port (the one asked for, or the one picked for 0, once started)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port/path`` of the running server (loopback if bound to all)."""
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self._port}{self.path}"

    async def start(self) -> CallbackServer:
        """Bind and serve; returns ``self``."""
        app = web.Application(client_max_size=self.receiver.max_body + 1)
        app.router.add_post(self.path, aiohttp_callback_handler(self.receiver))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self._port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigurationError(
                f"cannot listen for callbacks on {self.host}:{self._port}: {exc.strerror or exc}"
                "; pick another --callback-listen address"
            ) from None
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        return self

    async def close(self) -> None:
        """Stop serving; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> CallbackServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
