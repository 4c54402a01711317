"""The emulator's gateway: routing, faults, auth and rate limit, then an endpoint or storage.

Order of checks for an API call: the configured ``latency`` is awaited; a scripted or random
fault is applied (like a gateway, before anything else); an unknown path answers 404 and a
wrong method on a known path 405 (both before the key check, as a router in front of the
service would); a missing or unknown ``api-subscription-key`` answers 403; then the rate
limiter (only valid-key calls to known routes consume tokens); then the endpoint. Storage
requests skip latency, auth and rate limiting, and answer Azure-style XML errors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import msgspec
from aiohttp import web

from ._blobstore import BlobStore
from ._endpoints import Endpoints
from ._faults import Fault, FaultScript, RandomFaults
from ._http import (
    JSON,
    ApiError,
    Exchange,
    default_code,
    default_message,
    drop,
    error_response,
    new_request_id,
)
from ._ratelimit import RateLimiter, retry_headers
from ._recording import RecordedRequest, Recorder
from ._routing import Match, classify
from ._settings import Settings

_log = logging.getLogger("sarvam_async.testing")


class Server:
    """The emulator's request handler; ``handle`` is given to aiohttp's low-level server."""

    def __init__(
        self,
        settings: Settings,
        recorder: Recorder,
        script: FaultScript,
        random_faults: RandomFaults,
        limiter: RateLimiter,
        clock: Callable[[], float],
        endpoints: Endpoints,
        blobs: BlobStore,
    ) -> None:
        self._settings = settings
        self._recorder = recorder
        self._script = script
        self._random = random_faults
        self._limiter = limiter
        self._clock = clock
        self._endpoints = endpoints
        self._blobs = blobs

    # -- entry point -------------------------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Answer one request and record it."""
        arrived = self._clock()
        path, sep, _ = request.raw_path.partition("?")
        m = classify(request.method, path)
        storage = m.flow == "storage"
        rec = self._recorder
        record: RecordedRequest | None = None
        slot = (0, 0)
        if rec.enabled:
            headers = request.headers
            record = RecordedRequest(
                method=request.method,
                path=path,
                route=m.route,
                flow=m.flow,
                query=dict(request.query) if sep else {},
                headers={k.lower(): v for k, v in headers.items()},
                body=b"",
                body_size=0,
                status=0,
                time=arrived,
                key=headers.get("api-subscription-key"),
            )
            slot = rec.open(record)
        ex = Exchange()
        status = 0
        try:
            try:
                if storage:
                    resp = await self._blobs.handle(request, m, ex)
                else:
                    resp = await self._api(request, m, ex)
            except Exception:
                _log.exception("emulator failed to handle %s %s", request.method, path)
                rid = new_request_id()
                resp = error_response(500, default_message(500), "internal_server_error", rid)
            if not ex.dropped:
                status = resp.status
            return resp
        finally:
            rec.count(storage, status, m.route)
            if storage:
                rec.storage_received += ex.size
                rec.storage_sent += ex.sent
            if record is not None:
                rec.close(
                    slot,
                    msgspec.structs.replace(record, status=status, body=ex.body, body_size=ex.size),
                )

    # -- gateway -----------------------------------------------------------------------------

    async def _api(self, request: web.BaseRequest, m: Match, ex: Exchange) -> web.StreamResponse:
        rid = new_request_id()
        if request.body_exists:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return error_response(413, default_message(413), default_code(413), rid)
            ex.body = body
            ex.size = len(body)
        else:
            body = b""
        settings = self._settings
        if settings.latency > 0:
            await asyncio.sleep(settings.latency)
        fault = self._script.take(m.route)
        if fault is None and m.route != "unknown":
            fault = self._random.draw()
        if fault is not None:
            self._recorder.faults += 1
            faulted = await self._apply_api_fault(request, fault, rid, ex)
            if faulted is not None:
                return faulted
        if m.route == "unknown":
            return error_response(404, "Not Found", "not_found_error", rid)
        if not m.method_ok:
            return error_response(
                405,
                f"Method {request.method} not allowed; use {m.allow}",
                "invalid_request_error",
                rid,
                {"Allow": m.allow},
            )
        key = request.headers.get("api-subscription-key")
        if key is None or key not in settings.keys:
            return error_response(
                403,
                "Invalid API subscription key. Pass a valid key in the api-subscription-key "
                "header.",
                "invalid_api_key_error",
                rid,
            )
        wait = self._limiter.check(key)
        if wait > 0:
            return error_response(
                429,
                default_message(429),
                "rate_limit_exceeded_error",
                rid,
                retry_headers(wait, with_ms=settings.retry_after_ms),
            )
        try:
            return self._endpoints.handlers[m.route](request, m, body, rid)
        except ApiError as err:
            return error_response(err.status, err.message, err.code, rid, err.headers)

    async def _apply_api_fault(
        self, request: web.BaseRequest, fault: Fault, rid: str, ex: Exchange
    ) -> web.StreamResponse | None:
        if fault.delay > 0:
            await asyncio.sleep(fault.delay)
        if fault.drop:
            return drop(request, ex)
        if fault.status is None and fault.body is None:
            return None
        status = fault.status if fault.status is not None else 503
        headers = fault.headers()
        if fault.body is not None:
            headers["Content-Type"] = fault.content_type or JSON
            return web.Response(status=status, body=fault.body, headers=headers)
        return error_response(
            status,
            fault.message if fault.message is not None else default_message(status),
            fault.code if fault.code is not None else default_code(status),
            rid,
            headers,
        )
