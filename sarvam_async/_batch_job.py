"""``BatchJob``: a handle on one batch job -- upload, start, wait, download.

Names mirror the official SDK's job handle. Two methods serve the fan-out
(:mod:`sarvam_async._fanout`): :meth:`BatchJob.upload_inputs` uploads named inputs and
reports failures instead of raising, :meth:`BatchJob.collect` turns a final status into
one outcome per input, downloading the successes. Files move through the client's
:class:`~sarvam_async._storage.StorageAccess`, API calls through the job's resource.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _constants as C
from . import _options
from ._callback_receiver import CallbackConfig, check_config
from ._callback_wait import look_budget, pause_before_next_look, wait_for_callback
from ._filenames import check_file_names, is_plain_file_name, transcript_path
from ._preflight import check_output_dir, check_polling, local_paths, one_path
from ._resources import JobLinks
from ._results import FileOutcome, FileResult, ProgressCallback, emit, file_results, read_result
from ._tasks import gather_or_cancel
from .errors import (
    APIConnectionError,
    APIStatusError,
    BadRequestError,
    ConflictError,
    FileFailedError,
    InternalServerError,
    InvalidParameterError,
    JobError,
    LocalWriteError,
    NotFoundError,
    OutputsNotReadyError,
    SarvamError,
    StorageError,
    TooManyRequestsError,
    UnsafeFileNameError,
)
from .models import JobState, JobStatusResponse, StorageContainerType, TranscriptionResult

if TYPE_CHECKING:
    from ._resources import _JobResource
    from ._retry import RetryPolicy

    Resource = _JobResource[Any]

__all__ = ["BatchJob", "is_transient"]

logger = logging.getLogger("sarvam_async")

Settled = Callable[[FileOutcome], Awaitable[None]]
"""Awaited with each outcome of :meth:`BatchJob.collect` as soon as it is known."""


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TooManyRequestsError):
        return not exc.quota_exhausted
    # OutputsNotReadyError: download-files lagged past its bound; the outputs are not lost.
    return isinstance(exc, APIConnectionError | InternalServerError | OutputsNotReadyError)


class BatchJob:
    """A handle on one batch job: upload, start, wait, download.

    Get one from ``create_job()`` or, for an existing job id, ``get_job()``.
    """

    def __init__(
        self,
        resource: Resource,
        job_id: str,
        *,
        storage: StorageContainerType | None = None,
        ptu_id: int | None = None,
        callback: CallbackConfig | None = None,
        created: bool = False,
    ) -> None:
        self._resource = resource
        self._callback = callback
        self._unstarted = created  # made by create_job, and start() not called since
        self._told_accepted = False  # a wait logged that the job is still Accepted
        self.job_id = job_id
        self.storage = storage
        self._ptu_id = ptu_id
        self._retry = resource.client.retry
        self._links = JobLinks(resource, job_id, ptu_id)
        self._files = resource.storage

    def __repr__(self) -> str:
        return f"BatchJob(job_id={self.job_id!r}, flow={self._resource.flow!r})"

    # ------------------------------------------------------------------ upload

    async def upload_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        names: Sequence[str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> list[str]:
        """Upload local files (streamed from disk, concurrently); returns the names used.

        Names default to the files' base names and must be unique (``transcribe_files``
        renames collisions for you). Expired URLs are fetched afresh once. Raises
        InvalidParameterError before sending anything, StorageError if a file failed
        (after every other file has been tried).
        """
        pairs = _pairs(paths, names)
        failures = await self.upload_inputs(pairs, progress)
        if failures:
            raise next(iter(failures.values()))
        return [name for name, _ in pairs]

    async def upload_inputs(
        self, inputs: Sequence[tuple[str, Path]], progress: ProgressCallback | None = None
    ) -> dict[str, SarvamError]:
        """Upload ``(name, path)`` pairs; returns the failures by name (empty when all went up).

        Every file is tried, whatever happens to the others. The names must already be
        checked (see ``upload_files``).
        """
        links = await self._links.upload([name for name, _ in inputs])
        self.storage = links.storage_container_type
        failures: dict[str, SarvamError] = {}

        async def one(name: str, path: Path) -> None:
            details = links.upload_urls.get(name)
            try:
                await _with_fresh_url(
                    name,
                    details.file_url if details is not None else None,
                    lambda: self._links.fresh_upload_url(name),
                    lambda url: self._put(name, path, url, progress),
                )
            except SarvamError as exc:  # every file is tried; failures are reported
                failures[name] = exc
                return
            emit(progress, "file_uploaded", job_id=self.job_id, file=name)

        await gather_or_cancel(*(one(name, path) for name, path in inputs))
        return failures

    async def _put(
        self, name: str, path: Path, url: str, progress: ProgressCallback | None
    ) -> None:
        def sent(n: int) -> None:
            emit(progress, "bytes_sent", job_id=self.job_id, file=name, nbytes=n)

        await self._files.upload(
            url,
            path,
            name=name,
            storage=self.storage or StorageContainerType.AZURE,
            on_bytes=sent if progress is not None else None,
        )

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> JobStatusResponse:
        """Start the job; returns its status.

        Safe to call on a job that may already have started (a resumed run, a dropped
        connection): the job's status is checked, and returned if it did start.
        """
        self._unstarted = False
        try:
            return await self._resource.start(self.job_id, ptu_id=self._ptu_id)
        except (APIConnectionError, BadRequestError, ConflictError) as exc:
            status = await self.get_status()
            if status.job_state != JobState.ACCEPTED:
                return status
            raise exc

    async def get_status(self) -> JobStatusResponse:
        """The job's current status (retried per the client's policy)."""
        return await self._resource.get_status(self.job_id)

    async def exists(self) -> bool:
        """True if the API knows this job id (a 404 is False; other errors raise)."""
        try:
            await self.get_status()
        except NotFoundError:
            return False
        return True

    async def wait_until_complete(
        self,
        *,
        poll_interval: float = C.POLL_INTERVAL,
        max_interval: float = C.POLL_MAX_INTERVAL,
        timeout: float | None = None,
        callback: CallbackConfig | None = None,
    ) -> JobStatusResponse:
        """Poll until Completed, PartiallyCompleted or Failed; returns the final status.

        With ``callback`` (by default the one the job was created with, if any) it waits on
        the job's callback instead: one status call confirms each callback before it is
        believed, and a status call every ``callback.safety_poll`` seconds covers a lost one
        (a job not watched since creation is checked once first: it may have called back).

        Polls are jittered (±20 %) and back off by 1.5x from ``poll_interval`` to
        ``max_interval``. Transient errors (connection, 429, 5xx) are logged and polling
        goes on; others raise. With ``timeout``, the last status call goes a second before
        it (time for an answer; a timeout of a second or less gets one call, at once), then
        JobTimeoutError (with ``last_status``) is raised; the job keeps running:
        ``get_job(job_id)`` later. Each status call gets only the time left as its retry
        deadline (which also clips its attempts), so the wait ends by ``timeout``, not one
        call's retry budget later.
        Raises InvalidParameterError, before polling, for a ``poll_interval`` under 0.01 s, a
        ``max_interval`` under 1 s (no busy polling) or a ``timeout`` not over 0.
        """
        poll_interval, most, timeout = check_polling(poll_interval, max_interval, timeout)
        max_interval = C.POLL_MAX_INTERVAL if most is None else most
        policy = self._retry
        config = check_config(callback) if callback is not None else self._callback
        if config is not None:
            return await wait_for_callback(
                self.job_id,
                config,
                self._look,
                policy=policy,
                timeout=timeout,
                transient=is_transient,
            )
        clock, sleep, jitter = policy.clock, policy.sleep, policy.jitter
        deadline = None if timeout is None else clock() + timeout
        interval = poll_interval
        last: JobStatusResponse | None = None
        while True:
            try:
                retry = look_budget(policy, deadline, clock)
                last = await self._look(retry)
            except APIStatusError as exc:
                if not is_transient(exc):
                    raise
                logger.info("polling job %s: %s; will poll again", self.job_id, exc.status_code)
            except APIConnectionError as exc:
                logger.info("polling job %s: %s; will poll again", self.job_id, exc.message)
            else:
                if last.job_state.is_terminal:
                    return last
            delay = interval * (0.8 + 0.4 * jitter())
            delay = pause_before_next_look(delay, deadline, clock, self.job_id, timeout, last)
            state = last.job_state.value if last is not None else "unknown"
            logger.debug("polled job %s: %s; next poll in %.1fs", self.job_id, state, delay)
            await sleep(delay)
            interval = min(max_interval, interval * 1.5)

    async def _look(self, retry: RetryPolicy | None) -> JobStatusResponse:
        """One status call of a wait; a job still Accepted is not running.

        A job leaves Accepted when ``start`` is called. If this handle created it and
        ``start`` was never called, the wait could only end by its timeout: JobError at
        once. A handle that started it, or one attached by id, waits on (the job may be
        started by another task, or the status may lag the start), and logs it once.
        """
        status = await self._resource.get_status(self.job_id, retry=retry)
        if status.job_state == JobState.ACCEPTED:
            if self._unstarted:
                raise JobError(
                    f"job {self.job_id} was created but never started (state Accepted), so "
                    "waiting cannot end: upload its files and call start() first",
                    job_id=self.job_id,
                )
            if not self._told_accepted:
                self._told_accepted = True
                logger.warning(
                    "job %s is Accepted, not started: the wait ends when it starts and "
                    "finishes, or at its timeout",
                    self.job_id,
                )
        return status

    # ------------------------------------------------------------------ results

    async def get_file_results(self, status: JobStatusResponse | None = None) -> list[FileResult]:
        """One entry per input file of the job: state, output name, error message."""
        if status is None:
            status = await self.get_status()
        _options.instance(status, JobStatusResponse, "status", _options.parameter)
        return file_results(status)

    async def download_outputs(
        self,
        output_dir: str | os.PathLike[str],
        *,
        status: JobStatusResponse | None = None,
        progress: ProgressCallback | None = None,
    ) -> list[FileOutcome]:
        """Download every successful output as ``<output_dir>/<input name>.json``.

        Concurrent (bounded client-wide), streamed, atomic (temporary file + rename).
        Returns one outcome per input: parsed ``TranscriptionResult`` on success, the
        file's state and error message otherwise (nothing is dropped). Names from the
        server that are not plain file names are refused, never written. Raises JobError
        if the job has not finished.
        """
        folder = one_path(output_dir, "output_dir")
        if status is not None:
            _options.instance(status, JobStatusResponse, "status", _options.parameter)
        else:
            status = await self.get_status()
        return await self.collect(status, folder, {}, progress)

    async def collect(
        self,
        status: JobStatusResponse,
        output_dir: Path,
        paths: Mapping[str, Path],
        progress: ProgressCallback | None = None,
        only: Collection[str] | None = None,
        settled: Settled | None = None,
    ) -> list[FileOutcome]:
        """One outcome per input of a finished job (those in ``only``, when given).

        Successes are downloaded into ``output_dir``; ``paths`` maps input names to local
        paths for the outcomes. ``settled`` is awaited with each outcome as soon as it is
        known (to journal it). Raises JobError if the job has not finished.
        """
        if not status.job_state.is_terminal:
            raise JobError(
                f"job {self.job_id} is {status.job_state.value}; wait_until_complete() first",
                job_id=self.job_id,
            )
        outcomes, wanted = self._sort(file_results(status), output_dir, paths, progress, only)
        if settled is not None:
            for outcome in outcomes:
                await settled(outcome)
        if not wanted:
            return outcomes
        await asyncio.to_thread(check_output_dir, output_dir)  # before asking for links
        links = await self._links.download(list(wanted))

        async def one(output: str, name: str, dest: Path) -> FileOutcome:
            details = links.download_urls.get(output)
            outcome = await self._fetch(
                name, dest, details.file_url if details is not None else None, output, paths
            )
            if outcome.ok:
                emit(progress, "file_downloaded", job_id=self.job_id, file=name)
            else:
                emit(progress, "file_failed", job_id=self.job_id, file=name, state=outcome.state)
            if settled is not None:
                await settled(outcome)
            return outcome

        outcomes.extend(
            await gather_or_cancel(*(one(o, name, dest) for o, (name, dest) in wanted.items()))
        )
        return outcomes

    def _sort(
        self,
        results: list[FileResult],
        output_dir: Path,
        paths: Mapping[str, Path],
        progress: ProgressCallback | None,
        only: Collection[str] | None,
    ) -> tuple[list[FileOutcome], dict[str, tuple[str, Path]]]:
        """Failed outcomes, and the outputs to fetch: output name -> (input name, dest)."""
        failed: list[FileOutcome] = []
        wanted: dict[str, tuple[str, Path]] = {}
        for res in results:
            if only is not None and res.name not in only:
                continue
            path = paths.get(res.name)
            if not (res.ok and res.output_name is not None):
                error = res.error_message or f"the API reports state {res.state!r}"
                failed.append(self.verdict(res.name, path, res.state, error, progress))
                continue
            try:
                wanted[res.output_name] = (res.name, _destination(output_dir, res))
            except UnsafeFileNameError as exc:  # refused, never requested
                failed.append(self.failed(res.name, path, res.state, exc, progress))
        return failed, wanted

    async def _fetch(
        self, name: str, dest: Path, url: str | None, output: str, paths: Mapping[str, Path]
    ) -> FileOutcome:
        """Download one output to ``dest`` and parse it; a failure is an outcome, not raised."""
        try:
            await _with_fresh_url(
                name,
                url,
                lambda: self._links.fresh_download_url(output),
                lambda fresh: self._files.download(fresh, dest, name=name),
            )
            result = await asyncio.to_thread(_read_back, dest, name)
        except SarvamError as exc:
            return FileOutcome(
                name,
                paths.get(name),
                self.job_id,
                ok=False,
                state="Success",
                error=str(exc),
                exception=exc,
            )
        return FileOutcome(
            name=name,
            path=paths.get(name),
            job_id=self.job_id,
            ok=True,
            state="Success",
            output_path=dest,
            result=result,
        )

    def failed(
        self,
        name: str,
        path: Path | None,
        state: str | None,
        exc: SarvamError,
        progress: ProgressCallback | None = None,
        *,
        error: str | None = None,
    ) -> FileOutcome:
        """A failed outcome of input ``name`` (``error`` defaults to ``str(exc)``).

        Reported to ``progress`` as ``file_failed``.
        """
        emit(progress, "file_failed", job_id=self.job_id, file=name, state=state)
        return FileOutcome(
            name=name,
            path=path,
            job_id=self.job_id,
            ok=False,
            state=state,
            error=error if error is not None else str(exc),
            exception=exc,
        )

    def verdict(
        self,
        name: str,
        path: Path | None,
        state: str | None,
        message: str,
        progress: ProgressCallback | None = None,
    ) -> FileOutcome:
        """A failed outcome the API decided (``FileFailedError``): ``error`` is its message."""
        exc = FileFailedError(message, file_name=name, job_id=self.job_id, state=state)
        return self.failed(name, path, state, exc, progress, error=message)


def _destination(output_dir: Path, res: FileResult) -> Path:
    """Where input ``res.name``'s transcript goes; raises UnsafeFileNameError if unsafe."""
    for name in (res.name, res.output_name or ""):
        if not is_plain_file_name(name):
            raise UnsafeFileNameError(name)
    return transcript_path(output_dir, res.name)


def _read_back(dest: Path, name: str) -> TranscriptionResult:
    """Parse a downloaded transcript (blocking); failures as typed errors of the download."""
    try:
        return read_result(dest)
    except ValueError as exc:
        raise StorageError(f"{exc}; run again to download it again", file_name=name) from None
    except OSError as exc:
        raise LocalWriteError(
            f"cannot read back {dest}: {exc.strerror or exc}", file_name=name
        ) from None


async def _with_fresh_url(
    name: str,
    url: str | None,
    refresh: Callable[[], Awaitable[str | None]],
    transfer: Callable[[str], Awaitable[object]],
) -> None:
    """Run ``transfer(url)``; on a 403 (expired signature) fetch a fresh URL once and retry.

    Raises StorageError, or the APIError of the refresh call.
    """
    if url is None:
        raise StorageError("the API returned no presigned URL for this file", file_name=name)
    try:
        await transfer(url)
    except StorageError as exc:
        if exc.status_code != 403:
            raise
        fresh = await refresh()
        if fresh is None:
            raise
        await transfer(fresh)


def _pairs(
    paths: Sequence[str | os.PathLike[str]], names: Sequence[str] | None
) -> list[tuple[str, Path]]:
    resolved = local_paths(paths)
    if names is not None and (isinstance(names, str) or not isinstance(names, Iterable)):
        raise InvalidParameterError("names", "give a list of names, one per path")
    chosen = list(names) if names is not None else [p.name for p in resolved]
    if len(chosen) != len(resolved):
        raise InvalidParameterError("names", "give one name per path")
    check_file_names(chosen, "files")
    for p in resolved:
        if not p.is_file():
            raise InvalidParameterError("paths", f"not a readable file: {p}")
    return list(zip(chosen, resolved, strict=True))
