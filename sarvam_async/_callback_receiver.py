"""The callback receiver's core: bytes and headers in, a ``JobCallback`` or a typed error out.

:class:`CallbackReceiver` is framework-neutral: a web handler of any framework passes it the
request's body and headers and answers ``exc.status_code`` for a :class:`CallbackError`, 200
otherwise (see :mod:`sarvam_async._callback_http` for the ready aiohttp handler). The token is
checked first, in constant time, before the body is looked at; a refused request records
nothing. Accepted events wake the waits of this process (``wait_until_complete`` with a
:class:`CallbackConfig`) of jobs the receiver watches; a duplicate wakes nobody twice, and an
event for a job no wait knows is ignored and logged once.

Events may arrive on another thread or event loop than the waits: a lock guards the state and
waits are woken on their own loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping

import msgspec

from . import _constants as C
from . import _options
from ._redact import redact_url
from .errors import (
    CallbackForbiddenError,
    CallbackPayloadError,
    CallbackTooLargeError,
    CallbackUnauthorizedError,
    ConfigurationError,
    InvalidParameterError,
)
from .models import BulkJobCallback, JobCallback

__all__ = ["CallbackConfig", "CallbackReceiver", "check_config", "token_hash"]

logger = logging.getLogger("sarvam_async")

_decoder = msgspec.json.Decoder(JobCallback)


def token_hash(token: str) -> str:
    """The SHA-256 of a callback token, in hex: what a manifest keeps instead of the token.

    The generated tokens carry 256 random bits, so a plain hash cannot be reversed.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


class _Watch:
    """One watched job: an arrival not yet taken, the deliveries seen, the waits parked."""

    __slots__ = ("pending", "seen", "waiters")

    def __init__(self) -> None:
        self.pending: JobCallback | None = None
        self.seen: set[tuple[str, str | None]] = set()
        self.waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[JobCallback]]] = []


class CallbackReceiver:
    """Checks, decodes and dispatches the API's job callbacks; mount it in a web service.

    ``token`` is the secret the API sends back in ``X-SARVAM-JOB-CALLBACK-TOKEN``; by default
    a fresh random one (use one receiver per run). It never appears in a repr, a log line or
    an error. ``max_body_bytes`` caps the body read. Call :meth:`receive` from your handler,
    or use ``aiohttp_callback_handler(receiver)`` / ``CallbackServer``.
    """

    __slots__ = ("_accepted", "_finished", "_lock", "_logged", "_token", "_watches", "max_body")

    def __init__(
        self, token: str | None = None, *, max_body_bytes: int = C.CALLBACK_MAX_BODY
    ) -> None:
        if token is None:
            token = secrets.token_urlsafe(C.CALLBACK_TOKEN_BYTES)
        elif not isinstance(token, str) or not token or not token.isascii():
            raise ConfigurationError("a callback token must be a non-empty ASCII string")
        elif not token.isprintable() or token != token.strip():
            raise ConfigurationError(
                "a callback token travels in a header: no spaces at its ends, no control characters"
            )
        limit = int(_options.count(max_body_bytes, "max_body_bytes"))
        self._token = token
        self.max_body = limit
        """Largest body accepted, in bytes."""
        self._accepted = [bytes.fromhex(token_hash(token))]
        self._lock = threading.Lock()
        self._watches: dict[str, _Watch] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._logged: OrderedDict[str, None] = OrderedDict()

    def __repr__(self) -> str:
        return f"CallbackReceiver(watching={len(self._watches)})"

    @property
    def token(self) -> str:
        """The secret token to send at initiate (a credential: do not log it)."""
        return self._token

    @property
    def token_hash(self) -> str:
        """SHA-256 (hex) of :attr:`token`: safe to store, enough to accept it again later."""
        return token_hash(self._token)

    def accept_token_hash(self, digest: str) -> None:
        """Also accept the token whose :func:`token_hash` is ``digest`` (a resumed run's jobs).

        Raises ConfigurationError if ``digest`` is not a SHA-256 in hex.
        """
        try:
            raw = bytes.fromhex(digest)
        except (TypeError, ValueError):
            raw = b""
        if len(raw) != hashlib.sha256().digest_size:
            raise ConfigurationError("a callback token hash is a SHA-256 in hex (64 digits)")
        with self._lock:
            if raw not in self._accepted:
                self._accepted.append(raw)

    # ------------------------------------------------------------------ receiving

    def check_token(self, headers: Mapping[str, str]) -> None:
        """Raise CallbackUnauthorizedError (no token) or CallbackForbiddenError (wrong one).

        The comparison takes the same time whichever accepted token, if any, matches.
        """
        if not isinstance(headers, Mapping):
            raise InvalidParameterError("headers", "give the request's headers as a mapping")
        given = _header(headers, C.CALLBACK_TOKEN_HEADER)
        if isinstance(given, bytes | bytearray):  # raw ASGI / WSGI header values
            given = bytes(given).decode("latin-1")
        if not isinstance(given, str):
            raise CallbackUnauthorizedError(
                f"no {C.CALLBACK_TOKEN_HEADER} header: this endpoint only takes Sarvam job "
                "callbacks sent with the token given at initiate"
            )
        digest = hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest()
        matched = False
        for accepted in list(self._accepted):
            matched |= hmac.compare_digest(digest, accepted)
        if not matched:
            raise CallbackForbiddenError(
                f"the {C.CALLBACK_TOKEN_HEADER} header does not match this receiver's token; "
                "was the job created by another run?"
            )

    def receive(self, body: bytes, headers: Mapping[str, str]) -> JobCallback:
        """Check the token, decode ``body`` and dispatch it; returns the event.

        ``headers`` may be any mapping of header names to values (any letter case). Raises
        a CallbackError subclass, whose ``status_code`` is the answer to send; nothing is
        recorded then. Delivering the same event again is harmless (waits wake once).
        """
        self.check_token(headers)
        if not isinstance(body, bytes | bytearray | memoryview):
            raise InvalidParameterError("body", "give the request's body as bytes")
        if len(body) > self.max_body:
            raise CallbackTooLargeError(
                f"callback body of {len(body)} bytes is over the {self.max_body}-byte limit"
            )
        try:
            event = _decoder.decode(body)
        except msgspec.ValidationError as exc:
            text = str(exc)
            path = text.rpartition(" - at `")[2].rstrip("`") if " - at `" in text else None
            raise CallbackPayloadError(f"not a callback payload: {text}", json_path=path) from None
        except (msgspec.DecodeError, RecursionError):
            raise CallbackPayloadError("not a job callback payload: the body is not JSON") from None
        self._dispatch(event)
        return event

    def _dispatch(self, event: JobCallback) -> None:
        job_id = event.job_id
        with self._lock:
            watch = self._watches.get(job_id)
            if watch is None:
                self._unknown(job_id)
                return
            identity = (event.job_state.value.casefold(), event.completed_at)
            if identity in watch.seen:
                return  # a duplicate delivery: its first copy already woke the wait
            watch.seen.add(identity)
            if not watch.waiters:
                watch.pending = event
                return
            loop, future = watch.waiters.pop(0)
        loop.call_soon_threadsafe(self._hand_over, job_id, future, event)

    def _unknown(self, job_id: str) -> None:
        """Log a callback for a job no wait knows, once per job (called under the lock)."""
        if job_id in self._finished or job_id in self._logged:
            return
        _remember(self._logged, job_id)
        logger.info("callback for job %s ignored: no wait of this process knows it", job_id)

    def _hand_over(self, job_id: str, future: asyncio.Future[JobCallback], ev: JobCallback) -> None:
        """Wake a wait (on its own loop); a wait gone meanwhile leaves the event pending."""
        if not future.done():
            future.set_result(ev)
            return
        with self._lock:
            watch = self._watches.get(job_id)
            if watch is not None:
                watch.pending = ev

    # ------------------------------------------------------------------ waiting (internal)

    def watching(self, job_id: str) -> bool:
        """True while a run waits, or will wait, on ``job_id``'s callback."""
        with self._lock:
            return job_id in self._watches

    def watch(self, job_id: str) -> None:
        """Start keeping ``job_id``'s callbacks (before it is started, so none is missed)."""
        with self._lock:
            self._watches.setdefault(job_id, _Watch())
            self._finished.pop(job_id, None)

    def release(self, job_id: str) -> None:
        """Stop keeping ``job_id``'s callbacks; later copies are dropped silently."""
        with self._lock:
            if self._watches.pop(job_id, None) is not None:
                _remember(self._finished, job_id)

    def arrival(self, job_id: str) -> asyncio.Future[JobCallback]:
        """A future resolved by ``job_id``'s next new callback (at once if one is pending)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[JobCallback] = loop.create_future()
        with self._lock:
            watch = self._watches.setdefault(job_id, _Watch())
            if watch.pending is not None:
                future.set_result(watch.pending)
                watch.pending = None
            else:
                watch.waiters.append((loop, future))
        future.add_done_callback(lambda f: self._forget_waiter(job_id, f))
        return future

    def _forget_waiter(self, job_id: str, future: asyncio.Future[JobCallback]) -> None:
        with self._lock:
            watch = self._watches.get(job_id)
            if watch is not None:
                watch.waiters = [(lp, f) for lp, f in watch.waiters if f is not future]


class CallbackConfig:
    """Wait on callbacks instead of polling: where the API calls back and who hears it.

    Pass it as ``callback=`` to ``create_job``, ``wait_until_complete`` or
    ``transcribe_files``. ``url`` is the public http(s) address the API POSTs to;
    ``receiver`` the :class:`CallbackReceiver` mounted there, in this process (default: a
    new one with a fresh token). ``safety_poll`` is the seconds between status checks in
    case a callback is lost. Raises ConfigurationError for a bad URL or interval.
    """

    __slots__ = ("receiver", "safety_poll", "url")

    def __init__(
        self,
        url: str,
        receiver: CallbackReceiver | None = None,
        *,
        safety_poll: float = C.CALLBACK_SAFETY_POLL,
    ) -> None:
        _options.http_url(url, "callback url", "https://your-service.example/sarvam-callback")
        # infinite: a lost callback would be waited on for ever; tiny: a busy poll
        poll = _options.seconds(safety_poll, "safety_poll", finite=True)
        if poll < C.MIN_POLL_INTERVAL:
            raise ConfigurationError(
                f"safety_poll must be at least {C.MIN_POLL_INTERVAL:g} seconds, got {safety_poll!r}"
            )
        if receiver is not None:
            _options.instance(receiver, CallbackReceiver, "receiver")
        self.url = url
        self.receiver = receiver if receiver is not None else CallbackReceiver()
        self.safety_poll = poll

    def __repr__(self) -> str:
        return f"CallbackConfig(url={redact_url(self.url)!r}, safety_poll={self.safety_poll:g})"

    def as_api(self) -> BulkJobCallback:
        """The ``callback`` object sent at initiate (the token included)."""
        return BulkJobCallback(url=self.url, auth_token=self.receiver.token)


def check_config(value: object, field: str = "callback") -> CallbackConfig | None:
    """A call's ``callback=``: None or a CallbackConfig; else InvalidParameterError."""
    if value is not None and not isinstance(value, CallbackConfig):
        raise InvalidParameterError(
            field, f"must be a CallbackConfig(url, receiver), got {type(value).__name__}"
        )
    return value


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """``headers[name]`` in any letter case (plain dicts from ASGI are lower case)."""
    value = headers.get(name)
    if value is None:
        folded = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == folded), None)
    return value


def _remember(memory: OrderedDict[str, None], key: str) -> None:
    memory[key] = None
    while len(memory) > C.CALLBACK_REMEMBERED_JOBS:
        memory.popitem(last=False)
