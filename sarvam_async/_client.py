"""``AsyncSarvam``: options, the aiohttp session's lifecycle, and the resources."""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import os
import ssl as _ssl
from collections.abc import AsyncGenerator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiohttp

from . import _constants as C
from . import _options
from ._limiter import CLOSED, ClientStats, Limiter, SharedLimiter, check_plan
from ._resources import SpeechToTextJobResource, SpeechToTextTranslateJobResource
from ._retry import RetryPolicy
from ._storage import StorageAccess, TransferLimits
from ._tasks import close_at_loop_end
from ._transport import Transport
from .errors import ClientClosedError, ConfigurationError, EventLoopError

if TYPE_CHECKING:
    from ._callback_receiver import CallbackConfig
    from ._results import FileOutcome, ProgressCallback
    from .models import SpeechToTextJobParameters, SpeechToTextTranslateJobParameters

__all__ = ["AsyncSarvam"]


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class AsyncSarvam:
    """Async client of the Sarvam speech-to-text batch API.

    Use it as ``async with AsyncSarvam() as client:`` or call ``await client.aclose()``.
    The aiohttp session is created lazily inside the running loop, so the client may be
    built at import time; a ``session`` you pass is used but never closed by the client.

    ``api_key`` falls back to ``SARVAM_API_KEY`` (read now, not at import); ``base_url`` to
    ``SARVAM_BASE_URL``, then ``https://api.sarvam.ai``. ``timeout`` is seconds per attempt
    (``None``: no limit), the default of every call's ``timeout=``;
    ``retry`` the :class:`RetryPolicy` (per-call ``retry=`` overrides it);
    ``max_connections`` the pool size and the bound on API calls in flight; ``rate_limit``
    (requests per minute) starts the adaptive limiter at your plan's rate;
    ``adaptive_rate=False`` turns pacing off and keeps only the bound on calls in flight.
    ``rate_limiter`` (a :class:`RedisRateLimiter`) paces every process of the account from
    one shared budget; the adaptive limiter then paces only while it is unreachable, at the
    shared limiter's ``rate_limit`` when the client has none of its own.
    ``download_lag_timeout`` is how long download-files' "not in COMPLETED state" right
    after a job finished is waited out (0: not at all).

    Bounds on what a server can cost you: ``max_response_bytes`` caps an API answer and
    ``max_transcript_bytes`` a downloaded transcript (both counted after decompression);
    ``storage_stall_timeout`` abandons an upload or download that moves no byte for that
    many seconds, ``storage_timeout`` (off by default) limits a whole transfer.

    Transport security: TLS certificates are verified (aiohttp's default, against the
    system's CAs); pass ``ssl=`` an ``ssl.SSLContext`` to trust a private CA. There is no
    switch to turn verification off. Proxies are not used unless ``trust_env=True``, which
    reads ``HTTPS_PROXY`` / ``NO_PROXY`` (and ``~/.netrc``) from the environment. A plain
    ``http://`` base URL is refused unless it is loopback or ``allow_insecure_http=True``:
    the API key would cross the network in clear.

    Event loops: the client follows its caller to a new loop once the previous one has
    finished (``asyncio.run`` called twice): the session and the waiting primitives are
    rebuilt there, the old session closed. It cannot serve two live loops at once (two
    threads): that raises EventLoopError; create one client per thread.

    Raises ConfigurationError when no key is found or the base URL is not http(s).
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | None = C.DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        max_connections: int = C.DEFAULT_MAX_CONNECTIONS,
        max_transfers: int = C.STORAGE_CONCURRENCY * 2,
        rate_limit: float | None = None,
        adaptive_rate: bool = True,
        rate_limiter: SharedLimiter | None = None,
        download_lag_timeout: float = C.DOWNLOAD_LAG_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
        max_response_bytes: int = C.MAX_RESPONSE_BYTES,
        max_transcript_bytes: int = C.MAX_TRANSCRIPT_BYTES,
        storage_stall_timeout: float = C.STORAGE_STALL_TIMEOUT,
        storage_timeout: float | None = C.STORAGE_TRANSFER_TIMEOUT,
        ssl: _ssl.SSLContext | None = None,
        trust_env: bool = False,
        allow_insecure_http: bool = False,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(C.API_KEY_ENV)
        if not key:
            raise ConfigurationError(
                f"no API key: pass AsyncSarvam(api_key=...) or set the {C.API_KEY_ENV} "
                "environment variable (keys are on the Sarvam dashboard)"
            )
        source = "api_key=" if api_key is not None else f"the {C.API_KEY_ENV} variable"
        key = _options.api_key(key, source=source)
        if base_url is not None:
            _options.instance(base_url, str, "base_url")
        base = base_url or os.environ.get(C.BASE_URL_ENV) or C.DEFAULT_BASE_URL
        parts = _options.http_url(base, "base_url", C.DEFAULT_BASE_URL)
        if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
            raise ConfigurationError(
                f"refusing plain http:// to {parts.hostname}: the API key would travel "
                "unencrypted. Use https://, or pass allow_insecure_http=True if the network "
                "is trusted"
            )
        if ssl is not None and not isinstance(ssl, _ssl.SSLContext):
            raise ConfigurationError("ssl= takes an ssl.SSLContext (for a custom CA)")
        max_response_bytes = int(_options.count(max_response_bytes, "max_response_bytes"))
        max_connections = int(_options.count(max_connections, "max_connections"))
        max_transfers = int(_options.count(max_transfers, "max_transfers"))
        if retry is not None:
            _options.instance(retry, RetryPolicy, "retry")
        if session is not None:
            _options.instance(session, aiohttp.ClientSession, "session")
        extra = _options.extra_headers(headers)
        rate_limit = check_plan(rate_limit, "rate_limit")
        if rate_limit is None and rate_limiter is not None:
            # while the shared budget is out of reach the client paces itself, never past a
            # plan the shared limiter was given (an optional member of the seam)
            rate_limit = check_plan(
                getattr(rate_limiter, "rate_limit", None), "rate_limiter.rate_limit"
            )
        if rate_limiter is not None and not all(
            hasattr(rate_limiter, member) for member in ("attach", "joined", "turn", "on_answer")
        ):
            raise ConfigurationError(
                "rate_limiter must be a RedisRateLimiter (or another SharedLimiter), got "
                f"{type(rate_limiter).__name__}"
            )
        timeout = _options.seconds(timeout, "timeout", none=True)
        lag = _options.seconds(download_lag_timeout, "download_lag_timeout", zero=True)
        self._download_lag_timeout = lag
        self.base_url = base.rstrip("/")
        self._state = _State.UNOPENED
        self._session = session
        self._owns_session = session is None
        self._pool_size = max_connections + max_transfers
        limits = TransferLimits(
            stall=storage_stall_timeout, total=storage_timeout, max_download=max_transcript_bytes
        )
        self._ssl = ssl
        self._trust_env = trust_env
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._keeper: AsyncGenerator[None, None] | None = None
        api_headers = {"User-Agent": C.USER_AGENT, **extra, C.API_KEY_HEADER: key}
        if rate_limiter is not None:
            rate_limiter.attach(key)
        self._limiter = Limiter(
            max_in_flight=max_connections,
            rate_limit=rate_limit,
            adaptive=adaptive_rate,
            shared=rate_limiter,
        )
        policy = retry if retry is not None else RetryPolicy()
        self._transport = Transport(
            session=self._get_session,
            bind=self._follow_loop,
            base_url=self.base_url,
            headers=api_headers,
            timeout=timeout,
            retry=policy,
            limiter=self._limiter,
            max_body=max_response_bytes,
        )
        self._storage = storage = StorageAccess(
            self._get_session,
            max_transfers=max_transfers,
            retry=policy,
            limits=limits,
            bind=self._follow_loop,
        )
        self.speech_to_text_job = SpeechToTextJobResource(self, self._transport, storage)
        """The speech-to-text batch flow."""
        self.speech_to_text_translate_job = SpeechToTextTranslateJobResource(
            self, self._transport, storage
        )
        """The speech-to-text-translate batch flow."""

    def __repr__(self) -> str:
        return f"AsyncSarvam(base_url={self.base_url!r}, state={self._state.value!r})"

    @property
    def retry(self) -> RetryPolicy:
        """The default retry policy of every call."""
        return self._transport.retry

    @property
    def download_lag_timeout(self) -> float:
        """Seconds download-files' lag behind a terminal status is waited out."""
        return self._download_lag_timeout

    @property
    def stats(self) -> ClientStats:
        """Traffic counters and the adaptive limiter's current rate (a snapshot)."""
        return self._limiter.stats()

    @property
    def closed(self) -> bool:
        """True once ``aclose()`` has run."""
        return self._state is _State.CLOSED

    def _get_session(self) -> aiohttp.ClientSession:
        """The live session, created on first use inside the running loop."""
        if self._state is _State.CLOSED:
            raise ClientClosedError(CLOSED)
        self._follow_loop()
        session = self._session
        if session is None:
            connector = aiohttp.TCPConnector(limit=self._pool_size, ssl=self._ssl or True)
            session = self._session = aiohttp.ClientSession(
                connector=connector, trust_env=self._trust_env
            )
            if self._owns_session:
                # closed when asyncio.run ends, if the caller never closes the client
                self._keeper = close_at_loop_end(session.close)
        elif session.closed:
            raise ClientClosedError(
                "the aiohttp session passed as session= is closed; keep it open while the "
                "client is in use"
            )
        self._state = _State.OPEN
        return session

    def _follow_loop(self) -> None:
        """Move to the running loop if it is not the one in use (see the class docstring)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                self._rebind(self._loop)
            self._loop = loop

    def _rebind(self, old: asyncio.AbstractEventLoop) -> None:
        """Leave ``old`` for the running loop: close its session, rebuild the primitives."""
        stats = self._limiter.stats()
        busy = stats.in_flight or stats.queued or self._storage.busy
        if (old.is_running() and not old.is_closed()) or busy:
            raise EventLoopError(
                "this AsyncSarvam client is in use on another event loop (another thread?); "
                "create one client per thread, or finish the other loop's calls first"
            )
        if not self._owns_session:
            raise EventLoopError(
                "the aiohttp session passed as session= belongs to another event loop; "
                "create the session and the client inside the loop that uses them"
            )
        stale, self._session = self._session, None
        self._keeper = None
        if stale is not None:  # its loop is gone: close it here (nothing can run there)
            task = asyncio.ensure_future(stale.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        self._storage.rebind()
        self._limiter.rebind()

    async def __aenter__(self) -> AsyncSarvam:
        self._get_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session (unless the caller passed it). Safe to call twice."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        self._limiter.close()
        if self._owns_session:
            self._follow_loop()  # closes a session left on a finished loop
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            # shield: a cancelled caller must still not leave the connector open
            await asyncio.shield(session.close())
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def transcribe_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        output_dir: str | os.PathLike[str],
        job_parameters: SpeechToTextJobParameters
        | SpeechToTextTranslateJobParameters
        | Mapping[str, Any]
        | None = None,
        translate: bool = False,
        max_concurrent_jobs: int = C.MAX_CONCURRENT_JOBS,
        manifest: str | os.PathLike[str] | None = None,
        progress: ProgressCallback | None = None,
        poll_interval: float = C.POLL_INTERVAL,
        job_timeout: float | None = None,
        callback: CallbackConfig | None = None,
    ) -> AsyncGenerator[FileOutcome, None]:
        """Transcribe any number of files; yields one FileOutcome per input as it finishes.

        Inputs are split into jobs of at most 20 files (the API's limit), up to
        ``max_concurrent_jobs`` jobs run at once, and every API call passes the client's
        adaptive rate limiter. Colliding base names are made unique (``a-2.wav``) and mapped
        back to their paths; one file given under several paths (a symlink, ``..``) is sent
        once, its outcome listing the others in ``duplicates``. Failed files are yielded too
        (``ok=False``, the message in ``error``, the typed exception in ``exception``).
        ``translate=True`` uses the speech-to-text-translate flow; ``job_timeout`` bounds
        each job's wait (JobTimeoutError).

        With ``manifest``, every step is journaled (append-only, fsynced); running the same
        call again resumes: finished files are yielded from the journal without downloading,
        created jobs are re-attached and never submitted twice, and inputs a job lost are
        submitted in a new one. Only a transcript or the API's verdict (FileFailedError) is
        journaled as final: a failed download or a full disk is tried again by a resume.
        A bad key, exhausted credits or a manifest that cannot be written stop the whole run
        (the error is raised once every job has stopped). A transient failure that outlives
        a call's retries (429/503/5xx, a lost connection) gets its job up to three more
        goes; anything else fails only the files it touches.

        Raises InvalidParameterError before anything is sent for: ``paths`` that is one path
        or holds a non-path or a missing file; bad ``job_parameters``; an ``output_dir`` that
        cannot be created or written; ``poll_interval`` under 0.01 s or a ``job_timeout``
        not over 0; an input whose transcript could not be saved under its name (a colon, a
        device name, over 235 bytes).

        With ``callback`` (a :class:`CallbackConfig` whose receiver this process serves),
        jobs are created to call back and waited on by callback instead of polling: about
        five API calls a job, and each result downloaded as soon as its job calls. Resumed
        jobs keep calling back: the manifest holds a hash of their token, never the token.

        Wrap it in ``contextlib.aclosing()``: leaving the loop early then cancels the run's
        jobs at once.
        """
        from ._fanout import FanOut

        resource: SpeechToTextJobResource | SpeechToTextTranslateJobResource = (
            self.speech_to_text_translate_job if translate else self.speech_to_text_job
        )
        return FanOut(
            resource,
            paths,
            output_dir=output_dir,
            job_parameters=job_parameters,
            max_concurrent_jobs=max_concurrent_jobs,
            manifest=manifest,
            progress=progress,
            poll_interval=poll_interval,
            job_timeout=job_timeout,
            callback=callback,
        ).run()


def _is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and loopback IPs: plain http there never leaves the machine."""
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
