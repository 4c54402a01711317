"""``AsyncSarvam``: options, the aiohttp session's lifecycle, and the resources."""

from __future__ import annotations

import asyncio
import enum
import os
from collections.abc import AsyncGenerator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from . import _constants as C
from ._limiter import ClientStats, Limiter
from ._resources import SpeechToTextJobResource, SpeechToTextTranslateJobResource
from ._retry import RetryPolicy
from ._storage import StorageAccess
from ._transport import Transport
from .errors import ClientClosedError, ConfigurationError

if TYPE_CHECKING:
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
        headers: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(C.API_KEY_ENV)
        if not key:
            raise ConfigurationError(
                f"no API key: pass AsyncSarvam(api_key=...) or set the {C.API_KEY_ENV} "
                "environment variable (keys are on the Sarvam dashboard)"
            )
        base = base_url or os.environ.get(C.BASE_URL_ENV) or C.DEFAULT_BASE_URL
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(
                f"base_url must be an http(s) URL such as {C.DEFAULT_BASE_URL}, got {base!r}"
            )
        if max_connections < 1 or max_transfers < 1:
            raise ConfigurationError("max_connections and max_transfers must be at least 1")
        if rate_limit is not None and rate_limit <= 0:
            raise ConfigurationError("rate_limit is requests per minute and must be positive")
        if timeout is not None and timeout <= 0:
            raise ConfigurationError("timeout must be positive seconds, or None for no limit")
        self.base_url = base.rstrip("/")
        self._state = _State.UNOPENED
        self._session = session
        self._owns_session = session is None
        self._pool_size = max_connections + max_transfers
        api_headers = {"User-Agent": C.USER_AGENT, **(headers or {}), C.API_KEY_HEADER: key}
        self._limiter = Limiter(
            max_in_flight=max_connections, rate_limit=rate_limit, adaptive=adaptive_rate
        )
        policy = retry if retry is not None else RetryPolicy()
        self._transport = Transport(
            session=self._get_session,
            base_url=self.base_url,
            headers=api_headers,
            timeout=timeout,
            retry=policy,
            limiter=self._limiter,
        )
        storage = StorageAccess(self._get_session, max_transfers=max_transfers, retry=policy)
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
            raise ClientClosedError(
                "this AsyncSarvam client is closed; create a new one (or keep it open in "
                "an 'async with' block for as long as you use it)"
            )
        session = self._session
        if session is None:
            connector = aiohttp.TCPConnector(limit=self._pool_size)
            session = self._session = aiohttp.ClientSession(connector=connector)
        elif session.closed:
            raise ClientClosedError(
                "the aiohttp session passed as session= is closed; keep it open while the "
                "client is in use"
            )
        self._state = _State.OPEN
        return session

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
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            # shield: a cancelled caller must still not leave the connector open
            await asyncio.shield(session.close())

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
    ) -> AsyncGenerator[FileOutcome, None]:
        """Transcribe any number of files; yields one FileOutcome per input as it finishes.

        Inputs are split into jobs of at most 20 files (the API's limit), up to
        ``max_concurrent_jobs`` jobs run at once, and every API call passes the client's
        adaptive rate limiter. Colliding base names are made unique (``a-2.wav``) and mapped
        back to their paths. Failed files are yielded too (``ok=False`` with the reason).
        ``translate=True`` uses the speech-to-text-translate flow; ``job_timeout`` bounds
        each job's wait (JobTimeoutError).

        With ``manifest``, every step is journaled (append-only, fsynced); running the same
        call again resumes: finished files are yielded from the journal without downloading,
        created jobs are re-attached and never submitted twice, and inputs a job lost are
        submitted in a new one. A bad key or exhausted credits stop the whole run (the error
        is raised). A transient failure that outlives a call's retries (429/503/5xx, a lost
        connection) gets its job up to three more goes; anything else fails only the files
        it touches. Raises InvalidParameterError for missing inputs before anything is sent.

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
        ).run()
