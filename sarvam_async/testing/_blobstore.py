"""The emulator's blob store: presigned PUT and GET of job files, Azure-style XML errors.

A request must carry a valid signature for its access kind (see ``_signing``); an input
PUT is streamed (hashed and counted, never held) and recorded on its job; an output GET
serves the job's transcript. Scripted faults apply; latency, auth and rate limits do not.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Mapping
from xml.sax.saxutils import escape

from aiohttp import web

from ._clock import WallClock
from ._faults import FaultScript
from ._http import JSON, XML, Exchange, drop
from ._recording import Recorder
from ._routing import Match
from ._signing import READ, WRITE, UrlSigner
from ._state import Job, StoredInput

_AZURE_TYPES = frozenset({"Azure", "Azure_V1"})
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_MS_VERSION = "2023-11-03"


def azure_error(code: str, message: str, request_id: str, detail: str = "") -> bytes:
    """An Azure Storage XML error body (``<Error><Code>…``)."""
    when = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime())
    extra = f"<AuthenticationErrorDetail>{escape(detail)}</AuthenticationErrorDetail>"
    return (
        '\ufeff<?xml version="1.0" encoding="utf-8"?><Error>'
        f"<Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}\nRequestId:{request_id}\nTime:{when}</Message>"
        f"{extra if detail else ''}</Error>"
    ).encode()


AZURE_MESSAGES = {
    "AuthenticationFailed": (
        "Server failed to authenticate the request. Make sure the value of Authorization "
        "header is formed correctly including the signature."
    ),
    "MissingRequiredHeader": "An HTTP header that's mandatory for this request is not specified.",
    "InvalidHeaderValue": ("The value for one of the HTTP headers is not in the correct format."),
    "MissingContentLengthHeader": "Content-Length HTTP header is missing.",
    "InvalidInput": "One of the request inputs is not valid.",
    "BlobNotFound": "The specified blob does not exist.",
    "ResourceNotFound": "The specified resource does not exist.",
    "UnsupportedHttpVerb": "The resource doesn't support specified Http Verb.",
    "ServerBusy": "Ingress is over the account limit.",
    "InternalError": "The server encountered an internal error. Please retry the request.",
}

STATUS_CODES = {
    400: "InvalidInput",
    403: "AuthenticationFailed",
    404: "ResourceNotFound",
    405: "UnsupportedHttpVerb",
    411: "MissingContentLengthHeader",
    429: "ServerBusy",
    500: "InternalError",
    503: "ServerBusy",
}


def _azure_response(
    status: int, code: str, detail: str = "", headers: Mapping[str, str] | None = None
) -> web.Response:
    rid = str(uuid.uuid4())
    message = AZURE_MESSAGES.get(code, "The request failed.")
    hdrs = {"Content-Type": XML, "x-ms-request-id": rid, "x-ms-error-code": code}
    if headers:
        hdrs.update(headers)
    return web.Response(status=status, body=azure_error(code, message, rid, detail), headers=hdrs)


class BlobStore:
    """Answers storage requests for the emulator's jobs."""

    def __init__(
        self,
        script: FaultScript,
        recorder: Recorder,
        signer: UrlSigner,
        wall: WallClock,
        jobs: dict[str, Job],
    ) -> None:
        self._script = script
        self._recorder = recorder
        self._signer = signer
        self._wall = wall
        self._clock = wall.clock
        self._jobs = jobs

    async def handle(self, request: web.BaseRequest, m: Match, ex: Exchange) -> web.StreamResponse:
        fault = self._script.take(m.route)
        if fault is not None:
            self._recorder.faults += 1
            if fault.delay > 0:
                await asyncio.sleep(fault.delay)
            if fault.drop:
                return drop(request, ex)
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
        self, request: web.BaseRequest, job: Job, name: str, ex: Exchange
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

    def _get(self, job: Job, name: str, ex: Exchange) -> web.Response:
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
