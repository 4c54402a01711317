"""The emulator's five API endpoints: initiate, upload-files, start, status, download-files.

Each handler runs after the gateway (``_server``) has applied faults, the key check and the
rate limit; it validates the body (``_params``), acts on the job store and answers JSON.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import msgspec
from aiohttp import web

from ._callbacks import CallbackSender
from ._clock import WallClock
from ._http import JSON, ApiError, encode, json_response
from ._params import (
    MAX_FILES,
    FilesBody,
    check_content_type,
    check_input_names,
    parse_files,
    parse_initiate,
    parse_ptu_id,
)
from ._recording import Recorder
from ._routing import Match
from ._settings import Settings
from ._signing import READ, WRITE, UrlSigner
from ._state import TERMINAL, Job

Handler = Callable[[web.BaseRequest, Match, bytes, str], web.Response]


@functools.lru_cache(maxsize=256)
def _iso_unix(unix: int) -> str:
    return datetime.fromtimestamp(unix, timezone.utc).isoformat()


class Endpoints:
    """The API's endpoint handlers over the emulator's jobs; ``handlers`` maps routes to them."""

    def __init__(
        self,
        settings: Settings,
        signer: UrlSigner,
        wall: WallClock,
        jobs: dict[str, Job],
        file_faults: dict[str, tuple[str, str]],
        callbacks: CallbackSender,
        recorder: Recorder,
    ) -> None:
        self._settings = settings
        self._signer = signer
        self._wall = wall
        self._clock = wall.clock
        self._jobs = jobs
        self._file_faults = file_faults
        self._callbacks = callbacks
        self._recorder = recorder
        self.handlers: dict[str, Handler] = {
            "initiate": self.initiate,
            "upload-files": self.upload_files,
            "start": self.start,
            "status": self.status,
            "download-files": self.download_files,
        }

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

    def initiate(self, request: web.BaseRequest, m: Match, body: bytes, rid: str) -> web.Response:
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

    def _files_request(
        self, request: web.BaseRequest, m: Match, body: bytes
    ) -> tuple[FilesBody, Job]:
        """The ``FilesRequest`` of upload-files / download-files and the job it names."""
        ptu = self._ptu(request) if m.flow == "translate" else None
        self._json_body(request)
        req = parse_files(body)
        job = self._job(m.flow, req.job_id)
        if ptu is not None:
            job.ptu_id = ptu
        return req, job

    def upload_files(
        self, request: web.BaseRequest, m: Match, body: bytes, rid: str
    ) -> web.Response:
        req, job = self._files_request(request, m, body)
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

    def start(self, request: web.BaseRequest, m: Match, body: bytes, rid: str) -> web.Response:
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

    def status(self, request: web.BaseRequest, m: Match, body: bytes, rid: str) -> web.Response:
        job = self._job(m.flow, m.job_id)
        body = job.status_body(self._clock(), self._wall, null_counts=self._settings.null_counts)
        return json_response(200, body, rid)

    def download_files(
        self, request: web.BaseRequest, m: Match, body: bytes, rid: str
    ) -> web.Response:
        req, job = self._files_request(request, m, body)
        now = self._clock()
        refused = job.download_refusal(now, self._settings.download_lag)
        if refused is not None:
            if refused == "Pending" and job.state_at(now) in TERMINAL:
                self._recorder.not_ready += 1
            raise ApiError(
                400, f"Job {job.job_id} is not in COMPLETED state. Current state: {refused}"
            )
        state = job.state_at(now)
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
