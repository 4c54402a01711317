"""Request handling: routing, gateway behaviour (faults, auth, rate limit) and the endpoints.

Order of checks for an API call: the configured ``latency`` is awaited; a scripted or random
fault is applied (like a gateway, before anything else); an unknown path answers 404 and a
wrong method on a known path 405 (both before the key check, as a router in front of the
service would); a missing or unknown ``api-subscription-key`` answers 403; then the rate
limiter (only valid-key calls to known routes consume tokens); then the endpoint. Storage
requests skip latency, auth and rate limiting, and answer Azure-style XML errors.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import msgspec
from aiohttp import web

from ._callbacks import CallbackSender
from ._clock import WallClock
from ._faults import Fault, FaultScript, RandomFaults
from ._http import (
    JSON,
    XML,
    ApiError,
    default_code,
    default_message,
    encode,
    error_response,
    json_response,
    new_request_id,
)
from ._params import (
    MAX_FILES,
    check_content_type,
    check_input_names,
    parse_files,
    parse_initiate,
    parse_ptu_id,
)
from ._ratelimit import RateLimiter, retry_headers
from ._recording import RecordedRequest, Recorder
from ._routing import Match, classify
from ._state import TERMINAL, Job, StoredInput
from ._storage import AZURE_MESSAGES, READ, STATUS_CODES, WRITE, UrlSigner, azure_error

_log = logging.getLogger("sarvam_async.testing")

_AZURE_TYPES = frozenset({"Azure", "Azure_V1"})
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_MS_VERSION = "2023-11-03"

_Handler = Callable[[web.BaseRequest, Match, bytes, str], web.Response]


class Settings:
    """Tunables read on every request; the emulator lets callers change them at run time."""

    __slots__ = (
        "base_url",
        "job_duration",
        "keys",
        "latency",
        "storage_container_type",
        "url_style",
        "url_ttl",
    )

    def __init__(
        self,
        keys: frozenset[str],
        latency: float,
        job_duration: float,
        url_ttl: float,
        storage_container_type: str,
        url_style: str,
    ) -> None:
        self.keys = keys
        self.latency = latency
        self.job_duration = job_duration
        self.url_ttl = url_ttl
        self.storage_container_type = storage_container_type
        self.url_style = url_style
        self.base_url = ""


class _Exchange:
    """Per-request facts gathered for the record."""

    __slots__ = ("body", "dropped", "sent", "size")

    def __init__(self) -> None:
        self.body = b""
        self.size = 0
        self.sent = 0
        self.dropped = False


def _drop(request: web.BaseRequest, ex: _Exchange) -> web.Response:
    """Close the connection without answering; the returned response is never written."""
    ex.dropped = True
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=500)


def _azure_response(
    status: int, code: str, detail: str = "", headers: Mapping[str, str] | None = None
) -> web.Response:
    rid = str(uuid.uuid4())
    message = AZURE_MESSAGES.get(code, "The request failed.")
    hdrs = {"Content-Type": XML, "x-ms-request-id": rid, "x-ms-error-code": code}
    if headers:
        hdrs.update(headers)
    return web.Response(status=status, body=azure_error(code, message, rid, detail), headers=hdrs)


@functools.lru_cache(maxsize=256)
def _iso_unix(unix: int) -> str:
    return datetime.fromtimestamp(unix, timezone.utc).isoformat()


class Server:
    """The emulator's request handler; ``handle`` is given to aiohttp's low-level server."""

    def __init__(
        self,
        settings: Settings,
        recorder: Recorder,
        script: FaultScript,
        random_faults: RandomFaults,
        limiter: RateLimiter,
        signer: UrlSigner,
        wall: WallClock,
        jobs: dict[str, Job],
        file_faults: dict[str, tuple[str, str]],
        callbacks: CallbackSender,
    ) -> None:
        self._settings = settings
        self._recorder = recorder
        self._script = script
        self._random = random_faults
        self._limiter = limiter
        self._signer = signer
        self._wall = wall
        self._clock = wall.clock
        self._jobs = jobs
        self._file_faults = file_faults
        self._callbacks = callbacks
        self._handlers: dict[str, _Handler] = {
            "initiate": self._initiate,
            "upload-files": self._upload_files,
            "start": self._start,
            "status": self._status,
            "download-files": self._download_files,
        }

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
        ex = _Exchange()
        status = 0
        try:
            try:
                if storage:
                    resp = await self._storage(request, m, ex)
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
            rec.count(storage, status)
            if storage:
                rec.storage_received += ex.size
                rec.storage_sent += ex.sent
            if record is not None:
                rec.close(
                    slot,
                    msgspec.structs.replace(record, status=status, body=ex.body, body_size=ex.size),
                )

    # -- gateway -----------------------------------------------------------------------------

    async def _api(self, request: web.BaseRequest, m: Match, ex: _Exchange) -> web.StreamResponse:
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
                retry_headers(wait),
            )
        try:
            return self._handlers[m.route](request, m, body, rid)
        except ApiError as err:
            return error_response(err.status, err.message, err.code, rid, err.headers)

    async def _apply_api_fault(
        self, request: web.BaseRequest, fault: Fault, rid: str, ex: _Exchange
    ) -> web.StreamResponse | None:
        if fault.delay > 0:
            await asyncio.sleep(fault.delay)
        if fault.drop:
            return _drop(request, ex)
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

    # -- API endpoints -------------------------------------------------------------------------

    def _job(self, flow: str, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None or job.flow != flow:
            raise ApiError(404, f"Job {job_id} not found", "not_found_error")
        return job

    @staticmethod
    def _ptu(request: web.BaseRequest) -> int | None:
        """``ptu_id`` where the route accepts it (422 if not an integer)."""
        return parse_ptu_id(request.query.get("ptu_id")) if request.query_string else None

    @staticmethod
    def _json_body(request: web.BaseRequest) -> None:
        header = request.headers.get("Content-Type")
        if header:
            check_content_type(header.partition(";")[0].strip().lower())

    def _url(self, kind: str, job: Job, name: str, meta: dict[str, Any]) -> Any:
        settings = self._settings
        url, expiry = self._signer.sign(settings.base_url, kind, job.job_id, name, settings.url_ttl)
        if settings.url_style == "string":
            return url
        meta["expires_at"] = _iso_unix(expiry)
        return {"file_url": url, "file_metadata": meta}

    def _initiate(self, request: web.BaseRequest, m: Match, body: bytes, rid: str) -> web.Response:
        ptu = self._ptu(request) if m.flow == "translate" else None
        self._json_body(request)
        params, callback = parse_initiate(m.flow, body)
        settings = self._settings
        job = Job(
            job_id=str(uuid.uuid4()),
            flow=m.flow,
            parameters=params,
            callback=msgspec.structs.asdict(callback) if callback is not None else None,
            ptu_id=ptu,
            storage_container_type=settings.storage_container_type,
            now=self._clock(),
        )
        self._jobs[job.job_id] = job
        doc = {
            "job_id": job.job_id,
            "storage_container_type": job.storage_container_type,
            "job_parameters": params,
            "job_state": "Accepted",
        }
        return json_response(202, encode(doc), rid)

    def _upload_files(
        self, request: web.BaseRequest, m: Match, body: bytes, rid: str
    ) -> web.Response:
        ptu = self._ptu(request) if m.flow == "translate" else None
        self._json_body(request)
        req = parse_files(body)
        job = self._job(m.flow, req.job_id)
        if ptu is not None:
            job.ptu_id = ptu
        if job.started is not None:
            raise ApiError(400, f"Job {job.job_id} has already been started; cannot upload files")
        check_input_names(req.files)
        new = [name for name in req.files if name not in job.registered]
        if len(job.registered) + len(new) > MAX_FILES:
            raise ApiError(400, f"A job accepts at most {MAX_FILES} files")
        for name in new:
            job.registered[name] = None
        job.touched = self._clock()
        urls = {name: self._url(WRITE, job, name, {"blob_name": name}) for name in req.files}
        doc = {
            "job_id": job.job_id,
            "job_state": "Accepted",
            "upload_urls": urls,
            "storage_container_type": job.storage_container_type,
        }
        return json_response(200, encode(doc), rid)

    def _start(self, request: web.BaseRequest, m: Match, body: bytes, rid: str) -> web.Response:
        # Any body is ignored: the SDK sends none, other clients send ``{}``.
        ptu = self._ptu(request)
        job = self._job(m.flow, m.job_id)
        if ptu is not None:
            job.ptu_id = ptu
        if job.started is not None:
            raise ApiError(400, f"Job {job.job_id} has already been started")
        if not any(name in job.inputs for name in job.registered):
            raise ApiError(400, f"No files have been uploaded for job {job.job_id}")
        now = self._clock()
        job.start(now, self._settings.job_duration, self._file_faults)
        self._callbacks.schedule(job)
        return json_response(200, job.status_body(now, self._wall, "Pending"), rid)

    def _status(self, request: web.BaseRequest, m: Match, body: bytes, rid: str) -> web.Response:
        job = self._job(m.flow, m.job_id)
        return json_response(200, job.status_body(self._clock(), self._wall), rid)

    def _download_files(
        self, request: web.BaseRequest, m: Match, body: bytes, rid: str
    ) -> web.Response:
        ptu = self._ptu(request) if m.flow == "translate" else None
        self._json_body(request)
        req = parse_files(body)
        job = self._job(m.flow, req.job_id)
        if ptu is not None:
            job.ptu_id = ptu
        state = job.state_at(self._clock())
        if state not in TERMINAL:
            raise ApiError(
                400,
                f"Job {job.job_id} is not complete (state: {state}); outputs can be "
                "downloaded once it is Completed or PartiallyCompleted",
            )
        if not req.files:
            raise ApiError(400, "files must contain at least one output file name")
        urls: dict[str, Any] = {}
        for name in req.files:
            output = job.output_body(name, self._wall)
            if output is None:
                raise ApiError(400, f"File {name!r} is not an output of job {job.job_id}")
            meta = {"blob_name": name, "content_type": JSON, "size_bytes": len(output)}
            urls[name] = self._url(READ, job, name, meta)
        doc = {
            "job_id": job.job_id,
            "job_state": state,
            "download_urls": urls,
            "storage_container_type": job.storage_container_type,
        }
        return json_response(200, encode(doc), rid)

    # -- storage -------------------------------------------------------------------------------

    async def _storage(
        self, request: web.BaseRequest, m: Match, ex: _Exchange
    ) -> web.StreamResponse:
        fault = self._script.take(m.route)
        if fault is not None:
            self._recorder.faults += 1
            if fault.delay > 0:
                await asyncio.sleep(fault.delay)
            if fault.drop:
                return _drop(request, ex)
            if fault.status is not None or fault.body is not None:
                ex.size = await _drain(request)
                status = fault.status if fault.status is not None else 503
                headers = fault.headers()
                if fault.body is not None:
                    headers["Content-Type"] = fault.content_type or XML
                    return web.Response(status=status, body=fault.body, headers=headers)
                code = fault.code or STATUS_CODES.get(status, "InternalError")
                return _azure_response(status, code, fault.message or "", headers)
        if m.route == "unknown":
            if not m.method_ok:
                return _azure_response(405, "UnsupportedHttpVerb", headers={"Allow": m.allow})
            return _azure_response(404, "ResourceNotFound")
        put = m.route == "storage-put"
        query = request.query
        kind = WRITE if m.area == "input" else READ
        detail = self._signer.verify(kind, m.job_id, m.blob, query.get("se"), query.get("sig"))
        if detail:
            return _azure_response(403, "AuthenticationFailed", detail)
        if put != (kind == WRITE):
            return _azure_response(
                403,
                "AuthorizationPermissionMismatch",
                "This request is not authorized to perform this operation using this permission.",
            )
        job = self._jobs.get(m.job_id)
        if job is None:
            return _azure_response(404, "BlobNotFound")
        if put:
            return await self._put(request, job, m.blob, ex)
        return self._get(job, m.blob, ex)

    async def _put(
        self, request: web.BaseRequest, job: Job, name: str, ex: _Exchange
    ) -> web.StreamResponse:
        headers = request.headers
        azure = job.storage_container_type in _AZURE_TYPES
        declared = request.content_length
        if azure:
            blob_type = headers.get("x-ms-blob-type")
            if blob_type is None:
                return _azure_response(400, "MissingRequiredHeader", "x-ms-blob-type")
            if blob_type != "BlockBlob":
                return _azure_response(400, "InvalidHeaderValue", f"x-ms-blob-type: {blob_type}")
            if declared is None:
                return _azure_response(411, "MissingContentLengthHeader")
        if headers.get("Expect", "").lower() == "100-continue":
            await request.writer.write(_CONTINUE)
        hasher = hashlib.sha256()
        size = 0
        try:
            # Stream: never hold the body; hash and count each chunk as it arrives.
            async for chunk in request.content.iter_any():
                hasher.update(chunk)
                size += len(chunk)
        except Exception:  # client went away or sent fewer bytes than declared
            ex.size = size
            transport = request.transport
            if transport is None or transport.is_closing():
                ex.dropped = True  # nobody left to answer
            return _azure_response(400, "InvalidInput", "The request body is incomplete.")
        ex.size = size
        if declared is not None and size != declared:
            return _azure_response(
                400, "InvalidInput", f"Content-Length {declared} but {size} bytes received."
            )
        now = self._clock()
        digest = hasher.hexdigest()
        job.inputs[name] = StoredInput(
            name=name,
            size=size,
            sha256=digest,
            content_type=headers.get("Content-Type"),
            headers={k.lower(): v for k, v in headers.items()},
            uploaded_at=now,
        )
        if job.started is None:
            job.touched = now
        # Azure's Put Blob answers 201 Created; a GCS signed-URL PUT answers 200.
        status = 200 if job.storage_container_type == "Google" else 201
        return web.Response(
            status=status,
            headers={
                "ETag": f'"0x{digest[:16].upper()}"',
                "Last-Modified": self._wall.http_date(now),
                "x-ms-request-id": str(uuid.uuid4()),
                "x-ms-version": _MS_VERSION,
                "x-ms-request-server-encrypted": "true",
            },
        )

    def _get(self, job: Job, name: str, ex: _Exchange) -> web.Response:
        body = job.output_body(name, self._wall)
        if body is None:
            return _azure_response(404, "BlobNotFound")
        ex.sent = len(body)
        end = job.ends_at()
        return web.Response(
            status=200,
            body=body,
            headers={
                "Content-Type": JSON,
                "ETag": f'"0x{hashlib.sha256(body).hexdigest()[:16].upper()}"',
                "Last-Modified": self._wall.http_date(end),
                "x-ms-blob-type": "BlockBlob",
                "x-ms-request-id": str(uuid.uuid4()),
                "x-ms-version": _MS_VERSION,
            },
        )


async def _drain(request: web.BaseRequest) -> int:
    """Read and discard the request body; returns its size (0 if the client went away)."""
    size = 0
    if not request.body_exists:
        return 0
    try:
        async for chunk in request.content.iter_any():
            size += len(chunk)
    except Exception:
        return size
    return size
