"""The public ``Emulator``: a stateful local server speaking the batch API over loopback HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

from ._blobstore import BlobStore
from ._callbacks import CallbackDelivery, CallbackFault, CallbackFaults, CallbackSender
from ._clock import WallClock
from ._endpoints import Endpoints
from ._faults import Fault, FaultScript, RandomFaults, format_retry_after
from ._ratelimit import RateLimiter
from ._recording import RecordedRequest, Recorder, Stats
from ._server import Server
from ._settings import Settings
from ._signing import UrlSigner
from ._state import Job, JobsView, JobView

_SHUTDOWN_TIMEOUT = 0.1  # in-flight handlers get this long at close, then are cancelled


def _seconds(value: float, name: str, *, positive: bool = False) -> float:
    """A duration of the emulator: a number, not NaN, 0 or more (``positive``: more than 0
    and finite, as a URL's lifetime must be); ValueError otherwise. Infinite latency or job
    duration is allowed: a call or a job that never ends."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    if positive and not 0 < value < math.inf:
        raise ValueError(f"{name} must be finite seconds over 0, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be 0 or more seconds, got {value!r}")
    return float(value)


class Emulator:
    """A local, stateful emulator of Sarvam's speech-to-text batch job API.

    Use ``async with Emulator() as emu:`` (or ``await emu.start()`` ... ``await emu.close()``)
    and point a client at ``emu.url``. Jobs, uploads and outputs live in memory; presigned
    storage URLs point back at the same server. All keys in ``api_key`` belong to one account.

    ``rate_limit`` is API requests per minute (token bucket, capacity ``burst``, default one
    second's worth and at least 1) shared by the account, or per key with
    ``rate_limit_scope="key"``. ``latency`` is awaited before answering each API call.
    ``job_duration`` is the time from start to terminal. ``fault_rate`` injects random
    ``fault_statuses`` (or dropped connections with ``fault_drop``) into API calls,
    reproducibly from ``seed``. ``clock`` drives timestamps, the job schedule, URL expiry and
    the rate limiter; inject a fake one to test time-dependent behaviour without sleeping.
    ``record_requests=False`` stops keeping ``requests`` (counters in ``stats`` still run),
    for long benchmarks. ``latency``, ``job_duration``, ``url_ttl`` and ``download_lag`` may
    be changed at any time; a job's duration is fixed when it starts.

    Where the live API differs from its docs, the emulator does as the live API, and each
    difference can be switched for tests:

    * ``download_lag``: seconds after a job became terminal during which download-files
      still answers 400 "not in COMPLETED state. Current state: Pending" (live: a few
      seconds; default 0, off, so that tests on a fake clock need not wait it out).
    * ``retry_after_ms=True`` adds the precise ``retry-after-ms`` header to the emulator's
      own 429s and 503s (rate limit, random faults), which otherwise carry only
      ``Retry-After`` in whole seconds, like the live API. Scripted faults (``fail_next``)
      send exactly the headers asked for.
    * ``null_counts=False`` reports 0 instead of ``null`` for the counts of a job's status
      before it starts.

    Job callbacks go to loopback URLs only. ``callback_faults`` (a :class:`CallbackFaults`,
    settable at any time) loses, duplicates, delays or mis-signs that share of them, and
    ``fail_next_callback`` scripts the next ones; ``callback_deliveries`` logs each.

    Schema failures answer 422 ``invalid_request_error``, broken business rules (a
    parameter another one rules out) 422 ``unprocessable_entity_error``, bad values 400
    ``invalid_request_error``. Presigned URLs have the Azure SAS shape (``se`` ISO-8601,
    ``sp``, ``sv``, ``sr``, base64 ``sig``, all URL-escaped) on loopback. Webhooks spell the
    state in lower case, as the cookbook shows.
    """

    def __init__(
        self,
        api_key: str | Iterable[str] = "test-key",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: float | None = None,
        rate_limit_scope: Literal["account", "key"] = "account",
        burst: float | None = None,
        latency: float = 0.0,
        job_duration: float = 0.0,
        url_ttl: float = 3600.0,
        storage_container_type: str = "Azure",
        url_style: Literal["object", "string"] = "object",
        fault_rate: float = 0.0,
        fault_statuses: Sequence[int] = (429, 503),
        fault_drop: bool = False,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        record_requests: bool = True,
        download_lag: float = 0.0,
        retry_after_ms: bool = False,
        null_counts: bool = True,
        callback_faults: CallbackFaults | None = None,
    ) -> None:
        keys = frozenset([api_key] if isinstance(api_key, str) else api_key)
        if not keys or not all(isinstance(k, str) and k for k in keys):
            raise ValueError("api_key must be a non-empty string or strings")
        if url_style not in ("object", "string"):
            raise ValueError("url_style must be 'object' or 'string'")
        latency, job_duration, download_lag = (
            _seconds(latency, "latency"),
            _seconds(job_duration, "job_duration"),
            _seconds(download_lag, "download_lag"),
        )
        url_ttl = _seconds(url_ttl, "url_ttl", positive=True)
        self._host = host
        self._port = port
        self._wall = WallClock(clock)
        self._settings = Settings(
            keys, latency, job_duration, url_ttl, storage_container_type, url_style
        )
        self._settings.download_lag = download_lag
        self._settings.retry_after_ms = retry_after_ms
        self._settings.null_counts = null_counts
        self._recorder = Recorder(record_requests)
        self._script = FaultScript()
        self._jobs: dict[str, Job] = {}
        self._file_faults: dict[str, tuple[str, str]] = {}
        self._signer = UrlSigner(self._wall)
        self._callbacks = CallbackSender(self._wall, callback_faults)
        self._server = Server(
            settings=self._settings,
            recorder=self._recorder,
            script=self._script,
            random_faults=RandomFaults(
                fault_rate, fault_statuses, fault_drop, seed, with_ms=retry_after_ms
            ),
            limiter=RateLimiter(rate_limit, scope=rate_limit_scope, burst=burst, clock=clock),
            clock=self._wall.clock,
            endpoints=Endpoints(
                self._settings,
                self._signer,
                self._wall,
                self._jobs,
                self._file_faults,
                self._callbacks,
                self._recorder,
            ),
            blobs=BlobStore(self._script, self._recorder, self._signer, self._wall, self._jobs),
        )
        self._runner: web.ServerRunner | None = None
        self._url: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> Emulator:
        """Bind and start serving; returns ``self``. Raises ``RuntimeError`` if started."""
        if self._runner is not None:
            raise RuntimeError("emulator already started")
        server = web.Server(self._server.handle, access_log=None)
        runner = web.ServerRunner(server, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound = runner.addresses[0]
        host = self._host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        self._url = f"http://{host}:{bound[1]}"
        self._settings.base_url = self._url
        return self

    async def close(self) -> None:
        """Stop serving and cancel pending callbacks; safe to call twice."""
        runner, self._runner = self._runner, None
        await self._callbacks.close()
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def serve_forever(self) -> None:
        """Start if needed and serve until cancelled; then close."""
        if self._runner is None:
            await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash); only once started."""
        if self._url is None:
            raise RuntimeError("emulator not started")
        return self._url

    @property
    def port(self) -> int:
        """The bound port (once started)."""
        return int(self.url.rsplit(":", 1)[1])

    # -- tunables ----------------------------------------------------------------------------

    @property
    def latency(self) -> float:
        """Seconds awaited before answering each API call."""
        return self._settings.latency

    @latency.setter
    def latency(self, value: float) -> None:
        self._settings.latency = _seconds(value, "latency")

    @property
    def job_duration(self) -> float:
        """Seconds from start to terminal for jobs started from now on."""
        return self._settings.job_duration

    @job_duration.setter
    def job_duration(self, value: float) -> None:
        self._settings.job_duration = _seconds(value, "job_duration")

    @property
    def url_ttl(self) -> float:
        """Lifetime in seconds of presigned URLs issued from now on."""
        return self._settings.url_ttl

    @url_ttl.setter
    def url_ttl(self, value: float) -> None:
        self._settings.url_ttl = _seconds(value, "url_ttl", positive=True)

    @property
    def download_lag(self) -> float:
        """Seconds after a job ends during which download-files still says ``Pending``."""
        return self._settings.download_lag

    @download_lag.setter
    def download_lag(self, value: float) -> None:
        self._settings.download_lag = _seconds(value, "download_lag")

    # -- inspection ----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received (API and storage), in arrival order."""
        return self._recorder.requests

    def calls(
        self, route: str | None = None, *, method: str | None = None, flow: str | None = None
    ) -> list[RecordedRequest]:
        """Recorded requests filtered by route name, HTTP method and/or flow."""
        return [
            r
            for r in self._recorder.requests
            if (route is None or r.route == route)
            and (method is None or r.method == method.upper())
            and (flow is None or r.flow == flow)
        ]

    def reset_requests(self) -> None:
        """Forget recorded requests (``stats`` counters keep running)."""
        self._recorder.reset()

    @property
    def jobs(self) -> Mapping[str, JobView]:
        """Read-only view of jobs by id; each lookup is a snapshot at the current clock."""
        return JobsView(self._jobs, self._wall)

    @property
    def stats(self) -> Stats:
        """A snapshot of request counters."""
        return self._recorder.snapshot()

    # -- scripting -----------------------------------------------------------------------------

    def fail_next(
        self,
        route: str,
        count: int = 1,
        *,
        status: int | None = None,
        retry_after: float | str | None = None,
        retry_after_ms: int | None = None,
        code: str | None = None,
        message: str | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        drop: bool = False,
        delay: float = 0.0,
    ) -> None:
        """Script the next ``count`` requests to ``route`` (``"*"``: any route, storage too).

        Faults act like a gateway: before key checks and everything else, FIFO per route.
        ``fail_next(route)`` alone answers 503. ``status`` answers the JSON error envelope
        (Azure-style XML on storage routes) with ``code``/``message`` defaulting by status.
        ``retry_after`` sets ``Retry-After`` (whole numbers as integers, strings verbatim, so
        an HTTP-date works); ``retry_after_ms`` sets ``retry-after-ms``. ``body`` (with
        ``content_type``, default JSON on API routes) replaces the body entirely and may go
        with any status, even 200. ``drop`` closes the connection without an answer.
        ``delay`` waits first; with no ``status``, ``body`` or ``drop`` the request is then
        handled normally.
        """
        if delay < 0:
            raise ValueError("delay must be >= 0")
        if status is None and body is None and not drop and delay == 0:
            status = 503
        fault = Fault(
            status=status,
            retry_after=format_retry_after(retry_after),
            retry_after_ms=retry_after_ms,
            code=code,
            message=message,
            body=body,
            content_type=content_type,
            drop=drop,
            delay=delay,
        )
        self._script.add(route, fault, count)

    def pending_faults(self, route: str | None = None) -> int:
        """Scripted faults not yet consumed (for ``route``, or all)."""
        return self._script.pending(route)

    def clear_faults(self) -> None:
        """Drop every scripted fault not yet consumed (random faults are unaffected)."""
        self._script.clear()

    def fail_file(
        self,
        file_name: str,
        *,
        state: str = "API Error",
        message: str = "Audio could not be decoded",
    ) -> None:
        """Make every job started from now on fail the input named ``file_name``.

        The file gets per-file ``state`` and ``error_message``; a job with some failed files
        ends ``PartiallyCompleted``, with all failed ``Failed``.
        """
        self._file_faults[file_name] = (state, message)

    def clear_file_failures(self) -> None:
        """Undo every ``fail_file``."""
        self._file_faults.clear()

    @property
    def callback_faults(self) -> CallbackFaults:
        """Random faults of job callbacks (none by default); assign to switch them."""
        return self._callbacks.faults

    @callback_faults.setter
    def callback_faults(self, value: CallbackFaults) -> None:
        self._callbacks.faults = value

    def fail_next_callback(
        self, fault: CallbackFault, count: int = 1, *, delay: float = 1.0
    ) -> None:
        """Script the next ``count`` job callbacks to be ``fault``.

        ``"lost"``: never sent; ``"duplicated"``: sent twice; ``"delayed"``: sent ``delay``
        seconds (emulator clock) late; ``"wrong_token"``: sent with a token not the job's.
        Scripted faults come before the random ``callback_faults``.
        """
        self._callbacks.fail_next(fault, count, delay)

    @property
    def callback_deliveries(self) -> list[CallbackDelivery]:
        """Every job callback decided so far (sent, or lost), in order."""
        return list(self._callbacks.deliveries)

    def expire_urls(self) -> None:
        """Invalidate every presigned URL issued so far (next use: 403); new URLs work."""
        self._signer.revoke_all()


def run(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    on_start: Callable[[Emulator], Any] | None = None,
    **kwargs: Any,
) -> None:
    """Run an emulator until Ctrl-C or cancellation (blocking); prints nothing.

    ``kwargs`` go to ``Emulator``; ``on_start(emulator)`` runs once it listens (e.g. to print
    ``emulator.url``, which matters with ``port=0``).
    """

    async def main() -> None:
        emulator = Emulator(host=host, port=port, **kwargs)
        await emulator.start()
        if on_start is not None:
            on_start(emulator)
        await emulator.serve_forever()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
