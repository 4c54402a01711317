"""The one request path of the API: send -> classify -> decode, then retry if worth it.

Every endpoint of both flows is an :class:`Endpoint` (method, path template, response
decoder, idempotency) sent through :meth:`Transport.request`. The first attempt runs
straight through; only a retryable failure enters the tenacity loop in ``_retry``.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import aiohttp
import msgspec

from . import _constants as C
from . import _options
from ._limiter import Limiter, Overdue
from ._ratecontrol import Signal
from ._redact import REDACTED
from ._retry import DeadlineReached, RetryPolicy, parse_retry_after
from ._types import USE_CLIENT_DEFAULT, Timeout
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BadGatewayError,
    BadRequestError,
    ConflictError,
    ContentTooLargeError,
    ForbiddenError,
    GatewayTimeoutError,
    InternalServerError,
    MethodNotAllowedError,
    NotFoundError,
    ResponseTooLargeError,
    ResponseValidationError,
    ServiceUnavailableError,
    TooManyRequestsError,
    UnauthorizedError,
    UnprocessableEntityError,
)
from .models import ErrorMessage

__all__ = ["Endpoint", "Transport", "decoder_for", "encoder", "read_capped", "signal_of"]

T = TypeVar("T")

encoder = msgspec.json.Encoder()
"""The one JSON encoder of the package (encoders are not type-specific)."""

_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def decoder_for(type_: type[T]) -> msgspec.json.Decoder[T]:
    """The shared JSON decoder of ``type_`` (built once per type)."""
    dec = _decoders.get(type_)
    if dec is None:
        dec = _decoders[type_] = msgspec.json.Decoder(type_)
    return dec


_error_decoder = decoder_for(ErrorMessage)
_BODY_KEEP = 2048  # characters of an error body kept on the exception
_READ_CHUNK = 64 * 1024  # bytes per read of an API answer
_PATH_RE = re.compile(r"at `(\$[^`]*)`")
_NO_BODY_HEADERS = ("Content-Type",)  # aiohttp would add one to a POST without a body

_NO_TIMEOUT = aiohttp.ClientTimeout(total=None)
_RATE_CODE = "rate_limit_exceeded_error"

_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    409: ConflictError,
    413: ContentTooLargeError,
    422: UnprocessableEntityError,
    429: TooManyRequestsError,
    500: InternalServerError,
    502: BadGatewayError,
    503: ServiceUnavailableError,
    504: GatewayTimeoutError,
}


def signal_of(err: APIStatusError) -> Signal:
    """What a non-2xx answer says about the pace, for the rate controller.

    A 429 is a rate refusal unless it says the credits ran out; a 503 only when it carries
    the rate-limit code (otherwise the service is overloaded or down: the retry policy's
    business, not the pace's); any other 4xx was taken at this pace; other 5xx say nothing.
    """
    if isinstance(err, TooManyRequestsError):
        return Signal.NO_SIGNAL if err.quota_exhausted else Signal.RATE_LIMITED
    if err.status_code == 503 and err.code == _RATE_CODE:
        return Signal.RATE_LIMITED
    if err.status_code >= 500:
        return Signal.UNAVAILABLE
    return Signal.ACCEPTED


@dataclass(frozen=True)
class Endpoint(Generic[T]):
    """One API operation: method, path template (``{job_id}`` escaped in), response type.

    ``idempotent=False`` (initiate, start) forbids retrying once the request may have
    reached the server; refusals (429/503) are still retried. ``finishing=True`` (every
    call but initiate) queues the call ahead of new jobs when the client must pace: carrying
    on work already begun comes before starting more.
    """

    name: str
    method: str
    path: str
    response: type[T]
    idempotent: bool = True
    finishing: bool = False

    @property
    def describe(self) -> str:
        """``METHOD /path/template``: safe for logs and messages."""
        return f"{self.method} {self.path}"


async def read_capped(resp: aiohttp.ClientResponse, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the decoded body; True when there was more (left unread).

    Counts bytes after aiohttp's decompression, so a small gzip bomb is stopped at the same
    size as a plain body; memory stays at ``limit`` plus one chunk.
    """
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(_READ_CHUNK):
        buf += chunk
        if len(buf) > limit:
            del buf[limit:]
            return bytes(buf), True
    return bytes(buf), False


def status_error(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    method: str = "",
    path: str = "",
    reason: str | None = None,
) -> APIStatusError:
    """Build the typed error of a non-2xx answer, whatever shape its body has."""
    code: str | None = None
    request_id: str | None = None
    message = ""
    try:
        env = _error_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        env = None
    if env is not None:
        message = env.error.message
        code = env.error.code.value if env.error.code is not None else None
        request_id = env.error.request_id or None
    text = body[:_BODY_KEEP].decode("utf-8", "replace")  # redacted by the error
    if not message:
        ctype = headers.get("content-type", "").split(";")[0].strip() or "no content type"
        if not body:
            message = f"empty answer ({reason or 'no reason given'})"
        elif ctype == "application/json":
            message = f"unrecognised JSON error body ({reason or 'no reason given'})"
        else:
            message = f"non-JSON answer ({ctype}), likely from a proxy or gateway"
    lowered = {k.lower(): v for k, v in headers.items()}
    if request_id is None:
        request_id = lowered.get("x-request-id") or lowered.get("request-id")
    cls = _STATUS_ERRORS.get(status)
    if cls is None:
        cls = InternalServerError if status >= 500 else APIStatusError
    return cls(
        message,
        status_code=status,
        code=code,
        request_id=request_id,
        body=text,
        headers=lowered,
        retry_after=parse_retry_after(lowered),
        method=method,
        path=path,
    )


class Transport:
    """Sends API requests on the client's session; see the module docstring.

    ``session`` is a zero-argument callable returning the live ``aiohttp.ClientSession``
    (the client creates it lazily); ``bind`` is called first on every request, before any
    loop-bound primitive is touched (the client moves to a new event loop there). Raises
    the typed errors of ``sarvam_async.errors`` only.
    """

    def __init__(
        self,
        *,
        session: Callable[[], aiohttp.ClientSession],
        base_url: str,
        headers: Mapping[str, str],
        timeout: float | None,
        retry: RetryPolicy,
        limiter: Limiter,
        max_body: int = C.MAX_RESPONSE_BYTES,
        bind: Callable[[], None] | None = None,
    ) -> None:
        self._session = session
        self._bind = bind
        self._max_body = max_body
        self._base = base_url.rstrip("/")
        self._headers = dict(headers)
        key = self._headers.get(C.API_KEY_HEADER, "")
        self._key = key.encode() if key else None  # scrubbed from answers quoting it
        self._json_headers = {**self._headers, "Content-Type": "application/json"}
        self._timeout = timeout
        self.retry = retry
        self.limiter = limiter

    def _scrub(self, raw: bytes) -> bytes:
        """``raw`` without the API key, which a server may quote ("invalid key: sk_...")."""
        if self._key is not None and self._key in raw:
            return raw.replace(self._key, REDACTED.encode())
        return raw

    async def request(
        self,
        endpoint: Endpoint[T],
        *,
        job_id: str | None = None,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        retry: RetryPolicy | None = None,
    ) -> T:
        """Send one API call and return its decoded answer; retries per the policy.

        Raises APIStatusError subclasses, APIConnectionError / APITimeoutError or
        ResponseValidationError, with ``attempts`` set.
        """
        if timeout is not USE_CLIENT_DEFAULT:
            timeout = _options.seconds(timeout, "timeout", fail=_options.parameter, none=True)
        if retry is not None:
            _options.instance(retry, RetryPolicy, "retry", _options.parameter)
        if self._bind is not None:
            self._bind()
        path = endpoint.path
        if job_id is not None:
            path = path.replace("{job_id}", quote(job_id, safe=""))
        url = self._base + path
        data = None if body is None else encoder.encode(body)
        headers = self._headers if data is None else self._json_headers
        per_attempt = self._timeout if timeout is USE_CLIENT_DEFAULT else timeout
        policy = self.retry if retry is None else retry

        started = policy.clock()
        deadline = started + policy.deadline  # every wait, the limiter's too, counts
        try:  # the happy path: one attempt, no retry machinery built
            return await self._attempt(
                endpoint, url, query, data, headers, per_attempt, deadline, policy.clock
            )
        except (APIStatusError, APIConnectionError) as exc:
            if not policy.enabled or not policy.should_retry(exc, idempotent=endpoint.idempotent):
                raise
            first = exc

        async def attempt() -> T:
            return await self._attempt(
                endpoint, url, query, data, headers, per_attempt, deadline, policy.clock, retry=True
            )

        return await policy.run(
            attempt,
            first,
            started=started,
            idempotent=endpoint.idempotent,
            describe=endpoint.describe,
        )

    async def _attempt(
        self,
        endpoint: Endpoint[T],
        url: str,
        query: Mapping[str, str] | None,
        data: bytes | None,
        headers: Mapping[str, str],
        per_attempt: float | None,
        deadline: float,
        clock: Callable[[], float],
        *,
        retry: bool = False,
    ) -> T:
        limiter = self.limiter
        final = per_attempt is None or deadline - clock() <= per_attempt
        if per_attempt is not None:
            deadline = min(deadline, clock() + per_attempt)
        asked = clock()
        try:
            ticket = await limiter.acquire(
                timeout=deadline - asked, retry=retry, ahead=endpoint.finishing
            )
        except Overdue as exc:
            raise _out_of_time(endpoint, final, exc.waited) from None
        failure: APIConnectionError | None = None
        truncated = False
        signal = Signal.NO_SIGNAL
        status: int | None = None
        retry_after: float | None = None
        try:
            left = deadline - clock()
            if left <= 0:  # the gate let it go just too late: nothing is sent
                raise Overdue(clock() - asked)
            async with self._session().request(
                endpoint.method,
                url,
                params=query,
                data=data,
                headers=headers,
                skip_auto_headers=_NO_BODY_HEADERS if data is None else None,
                timeout=aiohttp.ClientTimeout(total=left) if left < math.inf else _NO_TIMEOUT,
                allow_redirects=False,  # a redirect must not carry the key to another origin
            ) as resp:
                status = resp.status
                signal = Signal.UNAVAILABLE  # until the whole answer is read
                raw, truncated = await read_capped(resp, self._max_body)
                if 200 <= status < 300:
                    signal = Signal.ACCEPTED
                else:
                    raw = self._scrub(raw)
                    err = status_error(
                        status,
                        raw,
                        resp.headers,
                        method=endpoint.method,
                        path=endpoint.path,
                        reason=resp.reason,
                    )
                    retry_after = err.retry_after
                    signal = signal_of(err)
                    raise err
        except Overdue as exc:
            failure = _out_of_time(endpoint, final, exc.waited)
        except aiohttp.ConnectionTimeoutError:
            failure = APITimeoutError(
                "timed out connecting to the API; check the network or raise timeout=",
                request_sent=False,
                method=endpoint.method,
                path=endpoint.path,
            )
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            signal = Signal.UNAVAILABLE
            failure = APITimeoutError(
                "the API did not answer in time; raise timeout= if calls are slow",
                request_sent=True,
                method=endpoint.method,
                path=endpoint.path,
            )
        except aiohttp.ClientConnectorError as exc:
            failure = APIConnectionError(
                f"could not connect to the API ({exc.os_error.strerror or exc.os_error}); "
                "check base_url and the network",
                request_sent=False,
                method=endpoint.method,
                path=endpoint.path,
            )
        except aiohttp.ClientError as exc:
            signal = Signal.UNAVAILABLE
            failure = APIConnectionError(
                f"connection to the API failed ({type(exc).__name__}); it is retried "
                "when safe, check the network if it persists",
                request_sent=True,
                method=endpoint.method,
                path=endpoint.path,
            )
        finally:
            limiter.release(ticket, signal, retry_after, status=status)
        if failure is not None:
            # Raised outside the handler, unchained: aiohttp's exceptions carry the request
            # headers, the API key among them, in their repr.
            raise failure
        request_id = resp.headers.get("x-request-id")
        if truncated:
            raise ResponseTooLargeError(
                f"the API's answer is larger than max_response_bytes={self._max_body} "
                "(decoded); raise it if this answer is genuine, or report it with the "
                "request id",
                status_code=status or 0,
                request_id=request_id,
                body=self._scrub(raw[:_BODY_KEEP]).decode("utf-8", "replace"),
                method=endpoint.method,
                path=endpoint.path,
            )
        try:
            return decoder_for(endpoint.response).decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
            reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            match = _PATH_RE.search(reason)
            raise ResponseValidationError(
                f"the API's answer does not match the documented schema: {reason}. "
                "Please report it with the request id",
                json_path=match.group(1) if match else None,
                status_code=status or 0,
                request_id=request_id,
                body=self._scrub(raw[:_BODY_KEEP]).decode("utf-8", "replace"),
                method=endpoint.method,
                path=endpoint.path,
            ) from None


def _out_of_time(endpoint: Endpoint[Any], final: bool, waited: float) -> APITimeoutError:
    """The error of a call whose time ran out before it was sent (nothing reached the API).

    Past the retry deadline (``final``) no retry can help; past one attempt's timeout it may.
    """
    where = (
        f"after {waited:.1f}s waiting for the client's rate limiter (client.stats shows the pace)"
        if waited >= C.GATE_HELD_SECONDS
        else "before it could be sent"
    )
    return (DeadlineReached if final else APITimeoutError)(
        f"the call's time ran out {where}; raise timeout= or the retry policy's deadline, "
        "or send fewer calls at once",
        request_sent=False,
        method=endpoint.method,
        path=endpoint.path,
    )
