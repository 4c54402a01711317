"""The two job resources: speech-to-text and speech-to-text-translate.

Both flows are the same five endpoints under another prefix; they differ in the job
parameter type and in where ``ptu_id`` is accepted. Each public method validates its input
locally (InvalidParameterError before anything is sent), then goes through the client's one
request path. Method names match the official SDK so that migrating is an import change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgspec

from ._callback_receiver import CallbackConfig, check_config
from ._download_lag import wait_out_lag
from ._filenames import check_file_names, is_utf8
from ._retry import RetryPolicy
from ._transport import Endpoint, Transport
from ._types import USE_CLIENT_DEFAULT, Timeout
from .errors import InvalidParameterError
from .models import (
    BulkJobCallback,
    BulkJobInitResponse,
    FilesDownloadResponse,
    FilesRequest,
    FilesUploadResponse,
    InitiateRequest,
    JobStatusResponse,
    SpeechToTextJobParameters,
    SpeechToTextTranslateJobParameters,
)

if TYPE_CHECKING:
    from ._batch_job import BatchJob
    from ._client import AsyncSarvam
    from ._storage import StorageAccess

__all__ = ["JobLinks", "SpeechToTextJobResource", "SpeechToTextTranslateJobResource"]

P = TypeVar("P", SpeechToTextJobParameters, SpeechToTextTranslateJobParameters)


@dataclass(frozen=True)
class _Endpoints:
    initiate: Endpoint[BulkJobInitResponse]
    upload: Endpoint[FilesUploadResponse]
    start: Endpoint[JobStatusResponse]
    status: Endpoint[JobStatusResponse]
    download: Endpoint[FilesDownloadResponse]


def _endpoints(prefix: str) -> _Endpoints:
    return _Endpoints(
        # initiate creates a job: a retry after the request went out could create two.
        initiate=Endpoint("initiate", "POST", prefix, BulkJobInitResponse, idempotent=False),
        # Every call after initiate carries on a job that exists: ahead of new jobs, so a
        # paced fan-out starts its first job seconds in, not after every job's initiate.
        upload=Endpoint(
            "upload-files", "POST", f"{prefix}/upload-files", FilesUploadResponse, finishing=True
        ),
        # start is refused the second time: only retried when the server refused it.
        start=Endpoint(
            "start",
            "POST",
            f"{prefix}/{{job_id}}/start",
            JobStatusResponse,
            idempotent=False,
            finishing=True,
        ),
        status=Endpoint(
            "status", "GET", f"{prefix}/{{job_id}}/status", JobStatusResponse, finishing=True
        ),
        download=Endpoint(
            "download-files",
            "POST",
            f"{prefix}/download-files",
            FilesDownloadResponse,
            finishing=True,
        ),
    )


def _query(ptu_id: int | None) -> dict[str, str] | None:
    if ptu_id is None:
        return None
    if isinstance(ptu_id, bool) or not isinstance(ptu_id, int):
        raise InvalidParameterError("ptu_id", f"must be an integer, got {ptu_id!r}")
    return {"ptu_id": str(ptu_id)}


def _job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not job_id or not is_utf8(job_id):
        raise InvalidParameterError("job_id", "must be a non-empty string (valid Unicode)")
    return job_id


def _files(job_id: str, files: Sequence[str], *, upload: bool) -> FilesRequest:
    if isinstance(files, str):
        raise InvalidParameterError("files", "give a list of file names, not one string")
    if not isinstance(files, Iterable):
        raise InvalidParameterError(
            "files", f"give a list of file names, not {type(files).__name__}"
        )
    names = list(files)
    for index, name in enumerate(names):
        if not isinstance(name, str):
            raise InvalidParameterError(
                f"files[{index}]", f"a {type(name).__name__} is not a file name; give str names"
            )
    if upload:
        check_file_names(names)
    elif not names or len(set(names)) != len(names):
        raise InvalidParameterError("files", "give one or more unique output file names")
    return FilesRequest(job_id=_job_id(job_id), files=names)


def _convert(value: Any, type_: type[Any], field: str) -> Any:
    """``value`` as ``type_``, its field types checked (Struct init does not check them)."""
    if value is None:
        return None
    if isinstance(value, type_):
        try:
            value = msgspec.to_builtins(value)
        except TypeError as exc:  # a field set to something JSON cannot carry
            raise InvalidParameterError(field, f"a field's value cannot be sent: {exc}") from None
    elif not isinstance(value, Mapping):
        raise InvalidParameterError(field, f"expected {type_.__name__} or a mapping")
    try:
        return msgspec.convert(dict(value), type_)
    except msgspec.ValidationError as exc:
        raise InvalidParameterError(field, str(exc)) from None


class _JobResource(Generic[P]):
    """Shared implementation of both flows; use the concrete subclasses."""

    _params_type: type[P]
    _ep: _Endpoints
    _ptu_routes: frozenset[str]
    flow: str

    def __init__(self, client: AsyncSarvam, transport: Transport, storage: StorageAccess) -> None:
        self.client: AsyncSarvam = client
        self.storage = storage
        """How this client's jobs reach presigned URLs."""
        self._transport = transport

    def _q(self, route: str, ptu_id: int | None) -> dict[str, str] | None:
        """The query of ``route``: ``ptu_id`` only where this flow's API accepts it."""
        return _query(ptu_id) if route in self._ptu_routes else None

    def parameters(self, job_parameters: P | Mapping[str, Any] | None) -> P:
        """``job_parameters`` as this flow's Struct (None: the defaults), every field checked.

        Raises InvalidParameterError; nothing is sent. Every job's body is built this way.
        """
        if job_parameters is None:
            return self._params_type()
        params: P = _convert(job_parameters, self._params_type, "job_parameters")
        return params

    async def _initialise(
        self,
        job_parameters: P | Mapping[str, Any],
        callback: BulkJobCallback | Mapping[str, Any] | None,
        ptu_id: int | None,
        timeout: Timeout,
        retry: RetryPolicy | None,
    ) -> BulkJobInitResponse:
        body = InitiateRequest(
            job_parameters=self.parameters(job_parameters),
            callback=_convert(callback, BulkJobCallback, "callback"),
        )
        return await self._transport.request(
            self._ep.initiate,
            query=self._q("initiate", ptu_id),
            body=body,
            timeout=timeout,
            retry=retry,
        )

    async def _get_upload_links(
        self,
        job_id: str,
        files: Sequence[str],
        ptu_id: int | None,
        timeout: Timeout,
        retry: RetryPolicy | None,
    ) -> FilesUploadResponse:
        body = _files(job_id, files, upload=True)
        return await self._transport.request(
            self._ep.upload,
            query=self._q("upload", ptu_id),
            body=body,
            timeout=timeout,
            retry=retry,
        )

    async def start(
        self,
        job_id: str,
        *,
        ptu_id: int | None = None,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        retry: RetryPolicy | None = None,
    ) -> JobStatusResponse:
        """Start a job whose files are uploaded; returns its status (``Pending``).

        Not retried after a dropped connection once sent (the job may have started; check
        ``get_status``). Raises BadRequestError if already started, NotFoundError if unknown.
        """
        return await self._transport.request(
            self._ep.start,
            job_id=_job_id(job_id),
            query=self._q("start", ptu_id),
            timeout=timeout,
            retry=retry,
        )

    async def get_status(
        self,
        job_id: str,
        *,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        retry: RetryPolicy | None = None,
    ) -> JobStatusResponse:
        """The job's current status. It never holds transcripts: see ``get_download_links``.

        Raises NotFoundError for an unknown job id.
        """
        return await self._transport.request(
            self._ep.status, job_id=_job_id(job_id), timeout=timeout, retry=retry
        )

    async def _get_download_links(
        self,
        job_id: str,
        files: Sequence[str],
        ptu_id: int | None,
        timeout: Timeout,
        retry: RetryPolicy | None,
    ) -> FilesDownloadResponse:
        """Download links; the one place download-files' lag behind status is waited out."""
        body = _files(job_id, files, upload=False)
        return await wait_out_lag(
            lambda: self._transport.request(
                self._ep.download,
                query=self._q("download", ptu_id),
                body=body,
                timeout=timeout,
                retry=retry,
            ),
            job_id=body.job_id,
            status=lambda: self.get_status(body.job_id, timeout=timeout, retry=retry),
            timeout=self.client.download_lag_timeout,
            policy=retry or self._transport.retry,
        )

    async def get_job(self, job_id: str, *, callback: CallbackConfig | None = None) -> BatchJob:
        """Re-attach to an existing job by id (no request is made).

        With ``callback`` (the job's token accepted by its receiver) the handle waits on the
        job's callback; it checks the status once first, in case the job already called.
        """
        from ._batch_job import BatchJob

        return BatchJob(self, _job_id(job_id), callback=check_config(callback))

    async def create_job(
        self,
        job_parameters: P | Mapping[str, Any] | None = None,
        *,
        callback: CallbackConfig | BulkJobCallback | Mapping[str, Any] | None = None,
        ptu_id: int | None = None,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        retry: RetryPolicy | None = None,
    ) -> BatchJob:
        """Initiate a job and return a handle to upload, start, wait and download it.

        With a :class:`CallbackConfig` the job calls back when it ends, its receiver watches
        it from now on, and the handle's ``wait_until_complete`` waits on the callback.
        """
        from ._batch_job import BatchJob

        config = callback if isinstance(callback, CallbackConfig) else None
        sent = callback.as_api() if isinstance(callback, CallbackConfig) else callback
        init = await self._initialise(self.parameters(job_parameters), sent, ptu_id, timeout, retry)
        if config is not None:
            config.receiver.watch(init.job_id)
        return BatchJob(
            self,
            init.job_id,
            storage=init.storage_container_type,
            ptu_id=ptu_id,
            callback=config,
            created=True,
        )


class SpeechToTextJobResource(_JobResource[SpeechToTextJobParameters]):
    """``client.speech_to_text_job``: the speech-to-text batch flow.

    ``ptu_id`` is accepted by ``start`` only (as in the API).
    """

    _params_type = SpeechToTextJobParameters
    _ep = _endpoints("/speech-to-text/job/v1")
    _ptu_routes = frozenset({"start"})
    flow = "stt"

    async def initialise(
        self,
        *,
        job_parameters: SpeechToTextJobParameters | Mapping[str, Any],
        callback: BulkJobCallback | Mapping[str, Any] | None = None,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        retry: RetryPolicy | None = None,
    ) -> BulkJobInitResponse:
        """Create a job (state ``Accepted``); unset parameters are omitted, never ``null``.

        Raises InvalidParameterError for bad parameters before sending. Retried on 429/503
        only: after a dropped connection the job may exist, so it is not sent again.
        """
        return await self._initialise(job_parameters, callback, None, timeout, retry)

    async def get_upload_links(
        self,
        *,
        job_id: str,
        files: Sequence[str],
        timeout: Timeout = USE_CLIENT_DEFAULT,
        retry: RetryPolicy | None = None,
    ) -> FilesUploadResponse:
        """Presigned PUT URLs for 1-20 unique input file names (not paths)."""
        return await self._get_upload_links(job_id, files, None, timeout, retry)

    async def get_download_links(
        self,
        *,
        job_id: str,
        files: Sequence[str],
        timeout: Timeout = USE_CLIENT_DEFAULT,
        retry: RetryPolicy | None = None,
    ) -> FilesDownloadResponse:
        """Presigned GET URLs for output names (``"0.json"``) of a finished job.

        Output names come from ``job_details[].outputs[].file_name`` of the job's status.
        Right after a job finishes, download-files can still answer "not in COMPLETED
        state" for a few seconds: that answer is asked again for up to the client's
        ``download_lag_timeout``. Raises OutputsNotReadyError if the job has not finished
        or the outputs stay refused.
        """
        return await self._get_download_links(job_id, files, None, timeout, retry)


class SpeechToTextTranslateJobResource(_JobResource[SpeechToTextTranslateJobParameters]):
    """``client.speech_to_text_translate_job``: speech to English text, as a batch.

    ``ptu_id`` is accepted by initialise, get_upload_links, start and get_download_links.
    """

    _params_type = SpeechToTextTranslateJobParameters
    _ep = _endpoints("/speech-to-text-translate/job/v1")
    _ptu_routes = frozenset({"initiate", "upload", "start", "download"})
    flow = "translate"

    async def initialise(
        self,
        *,
        job_parameters: SpeechToTextTranslateJobParameters | Mapping[str, Any],
        callback: BulkJobCallback | Mapping[str, Any] | None = None,
        ptu_id: int | None = None,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        retry: RetryPolicy | None = None,
    ) -> BulkJobInitResponse:
        """Create a translate job (state ``Accepted``); see the STT ``initialise``."""
        return await self._initialise(job_parameters, callback, ptu_id, timeout, retry)

    async def get_upload_links(
        self,
        *,
        job_id: str,
        files: Sequence[str],
        ptu_id: int | None = None,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        retry: RetryPolicy | None = None,
    ) -> FilesUploadResponse:
        """Presigned PUT URLs for 1-20 unique input file names (not paths)."""
        return await self._get_upload_links(job_id, files, ptu_id, timeout, retry)

    async def get_download_links(
        self,
        *,
        job_id: str,
        files: Sequence[str],
        ptu_id: int | None = None,
        timeout: Timeout = USE_CLIENT_DEFAULT,
        retry: RetryPolicy | None = None,
    ) -> FilesDownloadResponse:
        """Presigned GET URLs for output names (``"0.json"``) of a finished job.

        Waits out download-files' lag behind status as the STT ``get_download_links`` does.
        """
        return await self._get_download_links(job_id, files, ptu_id, timeout, retry)


class JobLinks:
    """The presigned URLs of one job of either flow; ``ptu_id`` goes where the flow takes it."""

    def __init__(self, resource: _JobResource[Any], job_id: str, ptu_id: int | None) -> None:
        self._resource = resource
        self._job_id = job_id
        self._ptu_id = ptu_id

    async def upload(self, names: Sequence[str]) -> FilesUploadResponse:
        """PUT URLs for input ``names`` (1-20 unique plain file names)."""
        return await self._resource._get_upload_links(
            self._job_id, names, self._ptu_id, USE_CLIENT_DEFAULT, None
        )

    async def download(self, outputs: Sequence[str]) -> FilesDownloadResponse:
        """GET URLs for the job's output names."""
        return await self._resource._get_download_links(
            self._job_id, outputs, self._ptu_id, USE_CLIENT_DEFAULT, None
        )

    async def fresh_upload_url(self, name: str) -> str | None:
        """A new PUT URL for one input (after its signature expired), or None if not given."""
        details = (await self.upload([name])).upload_urls.get(name)
        return details.file_url if details is not None else None

    async def fresh_download_url(self, output: str) -> str | None:
        """A new GET URL for one output (after its signature expired), or None if not given."""
        details = (await self.download([output])).download_urls.get(output)
        return details.file_url if details is not None else None
