"""The batch workflow: upload -> start -> wait -> download, for one job or thousands of files.

:class:`BatchJob` drives one job (names mirror the official SDK's job handle).
:func:`transcribe_files` (also ``AsyncSarvam.transcribe_files``) splits any number of files
into jobs of at most 20, runs them concurrently under the client's adaptive limiter, and
yields one :class:`FileOutcome` per input as it finishes, failures included. With a
manifest, an interrupted run resumes: finished files are not downloaded again, created jobs
are re-attached, and no job is submitted twice.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from . import _constants as C
from ._manifest import FileEntry, JobEntry, Manifest, ManifestState, StartedEntry
from ._storage import download_to, storage_policy, upload_from
from ._transport import decoder_for
from .errors import (
    APIConnectionError,
    APIStatusError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InternalServerError,
    InvalidParameterError,
    JobError,
    JobTimeoutError,
    SarvamError,
    StorageError,
    TooManyRequestsError,
    UnauthorizedError,
    UnsafeFileNameError,
)
from .models import (
    MAX_FILES_PER_JOB,
    JobState,
    JobStatusResponse,
    StorageContainerType,
    TranscriptionResult,
    check_file_names,
    is_plain_file_name,
)

if TYPE_CHECKING:
    from ._resources import _JobResource

    Resource = _JobResource[Any]

__all__ = [
    "BatchJob",
    "FileOutcome",
    "FileResult",
    "ProgressCallback",
    "ProgressEvent",
    "transcribe_files",
]

logger = logging.getLogger("sarvam_async")
_result_decoder = decoder_for(TranscriptionResult)

ProgressKind = Literal[
    "planned",
    "job_created",
    "bytes_sent",
    "file_uploaded",
    "job_started",
    "job_finished",
    "file_downloaded",
    "file_failed",
]


@dataclass(frozen=True)
class ProgressEvent:
    """One step of progress, passed to a ``progress`` callback.

    ``planned`` gives ``total`` files and ``nbytes`` to upload; ``bytes_sent`` carries
    ``nbytes`` (negative when a retried upload starts over); ``job_finished`` carries the
    job's ``state``; the file events carry the file's API name in ``file``.
    """

    kind: ProgressKind
    job_id: str | None = None
    file: str | None = None
    nbytes: int = 0
    total: int = 0
    state: str | None = None


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class FileResult:
    """What a job's status says about one input: its state, output name and error."""

    name: str
    file_id: str | None
    state: str | None
    ok: bool
    output_name: str | None
    error_message: str | None


@dataclass(frozen=True)
class FileOutcome:
    """The end of one input file: transcribed (``ok``) or failed, and why.

    ``name`` is the file name sent to the API (made unique when inputs collide), ``path``
    the local input. On success ``output_path`` is ``<output_dir>/<name>.json`` and
    ``result`` its parsed content. ``resumed`` marks outcomes taken from a manifest.
    """

    name: str
    path: Path | None
    job_id: str | None
    ok: bool
    state: str | None = None
    output_path: Path | None = None
    result: TranscriptionResult | None = None
    error: str | None = None
    resumed: bool = False


def _emit(progress: ProgressCallback | None, kind: ProgressKind, **kw: Any) -> None:
    """Report progress; a callback that raises is logged, never allowed to lose work."""
    if progress is not None:
        try:
            progress(ProgressEvent(kind, **kw))
        except Exception:
            logger.exception("the progress callback raised on a %r event; ignored", kind)


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, TooManyRequestsError):
        return not exc.quota_exhausted
    return isinstance(exc, APIConnectionError | InternalServerError)


def _is_fatal(exc: BaseException) -> bool:
    """Errors that no other job of the run could escape: stop the whole run."""
    if isinstance(exc, TooManyRequestsError):
        return exc.quota_exhausted
    return isinstance(exc, ForbiddenError | UnauthorizedError)


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
    ) -> None:
        self._resource = resource
        self.job_id = job_id
        self.storage = storage
        self._ptu_id = ptu_id
        self._client = resource.client
        self._storage_policy = storage_policy(self._client.retry)

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
        failures = await self._upload(pairs, progress)
        if failures:
            raise next(iter(failures.values()))
        return [name for name, _ in pairs]

    async def _upload(
        self, pairs: list[tuple[str, Path]], progress: ProgressCallback | None
    ) -> dict[str, SarvamError]:
        """Upload every pair; returns the failures by name (empty when all went up)."""
        names = [name for name, _ in pairs]
        links = await self._resource._get_upload_links(self.job_id, names, self._ptu_id, None, None)
        self.storage = links.storage_container_type
        failures: dict[str, SarvamError] = {}

        async def refresh(name: str) -> str | None:
            fresh = await self._resource._get_upload_links(
                self.job_id, [name], self._ptu_id, None, None
            )
            details = fresh.upload_urls.get(name)
            return details.file_url if details is not None else None

        async def one(name: str, path: Path) -> None:
            details = links.upload_urls.get(name)
            try:
                await _with_fresh_url(
                    name,
                    details.file_url if details is not None else None,
                    lambda: refresh(name),
                    lambda url: self._put(name, path, url, progress),
                )
            except SarvamError as exc:  # every file is tried; failures are reported
                failures[name] = exc
                return
            _emit(progress, "file_uploaded", job_id=self.job_id, file=name)

        await asyncio.gather(*(one(name, path) for name, path in pairs))
        return failures

    async def _put(
        self, name: str, path: Path, url: str, progress: ProgressCallback | None
    ) -> None:
        def sent(n: int) -> None:
            _emit(progress, "bytes_sent", job_id=self.job_id, file=name, nbytes=n)

        async with self._client._transfers:
            await upload_from(
                self._client._get_session(),
                url,
                path,
                name=name,
                storage=self.storage or StorageContainerType.AZURE,
                policy=self._storage_policy,
                on_bytes=sent if progress is not None else None,
            )

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> JobStatusResponse:
        """Start the job; returns its status.

        Safe to call on a job that may already have started (a resumed run, a dropped
        connection): the job's status is checked, and returned if it did start.
        """
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
        from .errors import NotFoundError

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
    ) -> JobStatusResponse:
        """Poll until Completed, PartiallyCompleted or Failed; returns the final status.

        Polls are jittered (±20 %) and back off by 1.5x from ``poll_interval`` to
        ``max_interval``. Transient errors (connection, 429, 5xx) are logged and polling
        goes on; others raise. Raises JobTimeoutError (with ``last_status``) once
        ``timeout`` seconds have passed; the job keeps running: ``get_job(job_id)`` later.
        """
        policy = self._client.retry
        clock, sleep, jitter = policy.clock, policy.sleep, policy.jitter
        deadline = None if timeout is None else clock() + timeout
        interval = poll_interval
        last: JobStatusResponse | None = None
        while True:
            try:
                last = await self.get_status()
            except APIStatusError as exc:
                if not _is_transient(exc):
                    raise
                logger.info("polling job %s: %s; will poll again", self.job_id, exc.status_code)
            except APIConnectionError as exc:
                logger.info("polling job %s: %s; will poll again", self.job_id, exc.message)
            else:
                if last.job_state.is_terminal:
                    return last
            delay = interval * (0.8 + 0.4 * jitter())
            if deadline is not None:
                remaining = deadline - clock()
                if remaining <= 0:
                    state = last.job_state.value if last is not None else "unknown"
                    raise JobTimeoutError(
                        f"job {self.job_id} still {state} after {timeout:g}s; it keeps "
                        "running: call get_job(job_id) later to wait again",
                        job_id=self.job_id,
                        last_status=last,
                    )
                delay = min(delay, remaining)
            await sleep(delay)
            interval = min(max_interval, interval * 1.5)

    # ------------------------------------------------------------------ results

    async def get_file_results(self, status: JobStatusResponse | None = None) -> list[FileResult]:
        """One entry per input file of the job: state, output name, error message."""
        if status is None:
            status = await self.get_status()
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
        if status is None:
            status = await self.get_status()
        return await self._download(status, Path(output_dir), {}, progress)

    async def _download(
        self,
        status: JobStatusResponse,
        output_dir: Path,
        paths: Mapping[str, Path],
        progress: ProgressCallback | None,
        only: Collection[str] | None = None,
        settled: Callable[[FileOutcome], Awaitable[None]] | None = None,
    ) -> list[FileOutcome]:
        """Outcomes of the job's inputs (those in ``only``, when given); downloads successes.

        ``settled`` is awaited with each outcome as soon as it is known (to journal it).
        """
        if not status.job_state.is_terminal:
            raise JobError(
                f"job {self.job_id} is {status.job_state.value}; wait_until_complete() first",
                job_id=self.job_id,
            )
        outcomes: list[FileOutcome] = []
        wanted: dict[str, str] = {}  # output name -> input name
        for res in file_results(status):
            if only is not None and res.name not in only:
                continue
            if res.ok and res.output_name is not None:
                bad = next(
                    (n for n in (res.name, res.output_name) if not is_plain_file_name(n)), None
                )
                if bad is None:
                    wanted[res.output_name] = res.name
                    continue
                error = str(UnsafeFileNameError(bad))
            else:
                error = res.error_message or f"the API reports state {res.state!r}"
            outcomes.append(self._failed(res.name, paths, res.state, error, progress))
        if settled is not None:
            for outcome in outcomes:
                await settled(outcome)
        if not wanted:
            return outcomes
        try:
            await asyncio.to_thread(output_dir.mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise JobError(
                f"cannot create the output folder {output_dir}: {exc.strerror}", job_id=self.job_id
            ) from None
        links = await self._resource._get_download_links(
            self.job_id, list(wanted), self._ptu_id, None, None
        )

        async def refresh(output: str) -> str | None:
            fresh = await self._resource._get_download_links(
                self.job_id, [output], self._ptu_id, None, None
            )
            details = fresh.download_urls.get(output)
            return details.file_url if details is not None else None

        async def one(output: str, name: str) -> FileOutcome:
            dest = output_dir / f"{name}.json"
            details = links.download_urls.get(output)
            try:
                await _with_fresh_url(
                    name,
                    details.file_url if details is not None else None,
                    lambda: refresh(output),
                    lambda url: self._get(name, url, dest),
                )
                result = await asyncio.to_thread(_read_result, dest)
            except (SarvamError, ValueError, OSError) as exc:
                outcome = self._failed(name, paths, "Success", str(exc), progress)
            else:
                _emit(progress, "file_downloaded", job_id=self.job_id, file=name)
                outcome = FileOutcome(
                    name=name,
                    path=paths.get(name),
                    job_id=self.job_id,
                    ok=True,
                    state="Success",
                    output_path=dest,
                    result=result,
                )
            if settled is not None:
                await settled(outcome)
            return outcome

        outcomes.extend(await asyncio.gather(*(one(o, n) for o, n in wanted.items())))
        return outcomes

    async def _get(self, name: str, url: str, dest: Path) -> None:
        async with self._client._transfers:
            await download_to(
                self._client._get_session(), url, dest, name=name, policy=self._storage_policy
            )

    def _failed(
        self,
        name: str,
        paths: Mapping[str, Path],
        state: str | None,
        error: str,
        progress: ProgressCallback | None,
    ) -> FileOutcome:
        _emit(progress, "file_failed", job_id=self.job_id, file=name, state=state)
        return FileOutcome(
            name=name, path=paths.get(name), job_id=self.job_id, ok=False, state=state, error=error
        )


async def _with_fresh_url(
    name: str,
    url: str | None,
    refresh: Callable[[], Awaitable[str | None]],
    transfer: Callable[[str], Awaitable[None]],
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


def _read_result(path: Path) -> TranscriptionResult:
    try:
        return _result_decoder.decode(path.read_bytes())
    except msgspec.MsgspecError as exc:
        raise ValueError(f"downloaded output is not a transcript ({exc})") from None


def file_results(status: JobStatusResponse) -> list[FileResult]:
    """Per-input results from a status (inputs without a name are skipped)."""
    results = []
    for detail in status.job_details:
        if not detail.inputs:
            continue
        first = detail.inputs[0]
        state = detail.state
        ok = state is not None and state.is_success and bool(detail.outputs)
        results.append(
            FileResult(
                name=first.file_name,
                file_id=first.file_id,
                state=state.value if state is not None else None,
                ok=ok,
                output_name=detail.outputs[0].file_name if detail.outputs else None,
                error_message=detail.error_message or None,
            )
        )
    return results


def _pairs(
    paths: Sequence[str | os.PathLike[str]], names: Sequence[str] | None
) -> list[tuple[str, Path]]:
    if isinstance(paths, str | os.PathLike):
        raise InvalidParameterError("paths", "give a list of paths, not one path")
    resolved = [Path(p) for p in paths]
    chosen = list(names) if names is not None else [p.name for p in resolved]
    if len(chosen) != len(resolved):
        raise InvalidParameterError("names", "give one name per path")
    check_file_names(chosen, "files")
    for p in resolved:
        if not p.is_file():
            raise InvalidParameterError("paths", f"not a readable file: {p}")
    return list(zip(chosen, resolved, strict=True))


def unique_names(paths: Iterable[Path], reserved: Mapping[str, str] | None = None) -> list[str]:
    """Base names made unique in order: the second ``a.wav`` becomes ``a-2.wav``.

    ``reserved`` maps paths to names they already have (from a manifest): those paths keep
    them, and no other path gets one.
    """
    reserved = reserved or {}
    taken = set(reserved.values())
    names = []
    for p in paths:
        name = reserved.get(str(p))
        if name is None:
            name = p.name
            n = 1
            while name in taken:
                n += 1
                name = f"{p.stem}-{n}{p.suffix}"
            taken.add(name)
        names.append(name)
    return names


@dataclass
class _Work:
    inputs: list[tuple[str, Path]]
    job_id: str | None = None
    started: bool = False
    tries: int = 0


_DONE = object()
_JOB_TRIES = 3  # extra goes a job gets after a transient failure outlived its call's retries
_JOB_RETRY_PAUSE = 5.0  # seconds before the first extra go, times the number of goes, after
# a call's retries ran out; a call made once (not safe to re-send) gets the policy's backoff


async def transcribe_files(
    resource: Resource,
    paths: Sequence[str | os.PathLike[str]],
    *,
    output_dir: str | os.PathLike[str],
    job_parameters: Any = None,
    max_concurrent_jobs: int = 8,
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

    With ``manifest``, every step is journaled (append-only, fsynced); running the same
    call again resumes: finished files are yielded from the journal without downloading,
    created jobs are re-attached and never submitted twice, and inputs a job lost are
    submitted in a new one. A bad key or exhausted credits stop the whole run (the error
    is raised). A transient failure that outlives a call's retries (429/503/5xx, a lost
    connection) gets its job up to three more goes; anything else fails only the files
    it touches. Raises
    InvalidParameterError for missing inputs before anything is sent.
    """
    if max_concurrent_jobs < 1:
        raise InvalidParameterError("max_concurrent_jobs", "must be at least 1")
    out_dir = Path(output_dir)
    journal = Manifest(manifest) if manifest is not None else None
    plan = await asyncio.to_thread(_plan, paths, journal, resource.flow)
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for outcome in plan.resumed:
        queue.put_nowait(outcome)
    pending = plan.pending
    _emit(progress, "planned", total=plan.fresh_files, nbytes=plan.fresh_bytes)

    params = job_parameters
    work_queue: asyncio.Queue[_Work] = asyncio.Queue()
    for w in pending:
        work_queue.put_nowait(w)
    outstanding = len(pending)
    fatal: list[BaseException] = []

    async def run(work: _Work) -> None:
        nonlocal outstanding
        try:
            for outcome in await _run_job(
                resource,
                work,
                params,
                out_dir,
                journal,
                progress,
                poll_interval,
                job_timeout,
                requeue=_requeue,
                protect=protect,
            ):
                queue.put_nowait(outcome)
        except Exception as exc:  # cancellation passes through
            if _is_fatal(exc):
                fatal.append(exc)
            elif _is_transient(exc) and work.tries < _JOB_TRIES:
                # The call's own retries ran out (a long 429 storm, an outage): give the
                # whole job another go later rather than failing its files. Its state
                # (job id, started) is kept, so nothing is submitted twice.
                work.tries += 1
                logger.info("job %s: %s; trying the job again", work.job_id, exc)
                policy = resource.client.retry
                if getattr(exc, "attempts", 1) > 1:  # retries ran out: let the storm pass
                    pause = _JOB_RETRY_PAUSE * work.tries
                else:  # one attempt, never re-sent (a dropped start): try again soon
                    pause = policy.backoff(work.tries)
                await policy.sleep(pause)
                _requeue(work)
            else:
                for name, path in work.inputs:
                    _emit(progress, "file_failed", job_id=work.job_id, file=name)
                    queue.put_nowait(FileOutcome(name, path, work.job_id, ok=False, error=str(exc)))
        finally:
            outstanding -= 1
            queue.put_nowait(_DONE)  # wake the consumer to re-check

    critical: set[asyncio.Future[Any]] = set()

    async def protect(step: Coroutine[Any, Any, BatchJob]) -> BatchJob:
        """Run ``step`` to its end even if the run is cancelled meanwhile."""
        task = asyncio.ensure_future(step)
        critical.add(task)
        task.add_done_callback(critical.discard)
        return await asyncio.shield(task)

    def _requeue(w: _Work) -> None:
        nonlocal outstanding
        outstanding += 1
        work_queue.put_nowait(w)

    async def worker() -> None:
        while True:
            work = await work_queue.get()
            await run(work)

    workers = [asyncio.ensure_future(worker()) for _ in range(max_concurrent_jobs)]
    try:
        while True:
            if fatal:
                raise fatal[0]
            if outstanding == 0 and queue.empty():
                return
            item = await queue.get()
            if item is not _DONE:
                yield item
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        # A job created as the run was cancelled is journaled before we let go of it.
        await asyncio.gather(*critical, return_exceptions=True)
        if journal is not None:
            journal.close()


@dataclass
class _Plan:
    pending: list[_Work]
    resumed: list[FileOutcome]
    fresh_files: int
    fresh_bytes: int


def _plan(paths: Sequence[str | os.PathLike[str]], journal: Manifest | None, flow: str) -> _Plan:
    """Name the inputs, replay the journal, and group what is left into jobs (blocking).

    A path the journal knows keeps the name its job was created with, whatever the order
    of this run's inputs; new paths get names no journaled path uses.
    """
    files = list(dict.fromkeys(Path(p).absolute() for p in paths))  # a path given twice: once
    for p in files:
        if not p.is_file():
            raise InvalidParameterError("paths", f"not a readable file: {p}")
    state = journal.load() if journal is not None else ManifestState()
    recorded: dict[str, str] = {}  # path -> name, as journaled
    for job in state.jobs.values():
        for name, path in job.inputs.items():
            recorded[path] = name
    for key, entry in state.files.items():
        recorded.setdefault(key, entry.name)
    names = unique_names(files, recorded)
    by_path = dict(zip((str(p) for p in files), names, strict=True))
    claimed: set[str] = set()  # paths with an outcome or a job already
    pending: list[_Work] = []
    resumed: list[FileOutcome] = []
    for key, entry in state.files.items():
        if key in by_path:
            outcome = _resumed_outcome(entry, key)
            if outcome is not None:
                claimed.add(key)
                resumed.append(outcome)
    for job in reversed(list(state.jobs.values())):  # the latest job holding a path wins
        if job.flow != flow:
            continue
        inputs = [
            (by_path[path], Path(path))
            for path in job.inputs.values()
            if path in by_path and path not in claimed
        ]
        if inputs:
            claimed.update(str(p) for _, p in inputs)
            pending.append(_Work(inputs, job.job_id, job.job_id in state.started))
    pending.reverse()
    fresh = [(by_path[str(p)], p) for p in files if str(p) not in claimed]
    for i in range(0, len(fresh), MAX_FILES_PER_JOB):
        pending.append(_Work(fresh[i : i + MAX_FILES_PER_JOB]))
    return _Plan(pending, resumed, len(fresh), sum(p.stat().st_size for _, p in fresh))


def _resumed_outcome(entry: FileEntry, key: str) -> FileOutcome | None:
    """The journaled outcome, or None when a finished output has gone (download it again)."""
    result = None
    output = Path(entry.output) if entry.output else None
    if entry.ok:
        if output is None:
            return None
        try:
            result = _read_result(output)
        except (OSError, ValueError):
            return None
    return FileOutcome(
        name=entry.name,
        path=Path(key),
        job_id=entry.job_id,
        ok=entry.ok,
        state=entry.state,
        output_path=output if entry.ok else None,
        result=result,
        error=entry.error,
        resumed=True,
    )


async def _run_job(
    resource: Resource,
    work: _Work,
    params: Any,
    out_dir: Path,
    journal: Manifest | None,
    progress: ProgressCallback | None,
    poll_interval: float,
    job_timeout: float | None,
    *,
    requeue: Callable[[_Work], None],
    protect: Callable[[Coroutine[Any, Any, BatchJob]], Awaitable[BatchJob]],
) -> list[FileOutcome]:
    """Drive one job of the fan-out to its end; returns its files' outcomes."""
    outcomes: list[FileOutcome] = []
    paths = dict(work.inputs)
    attached = work.job_id is not None
    journaled_start = work.started
    if work.job_id is None:

        async def create() -> BatchJob:
            # Creating and journaling are one step: a job the API created is never lost.
            created = await resource.create_job(params)
            if journal is not None:
                inputs = {name: str(path) for name, path in work.inputs}
                await journal.record(JobEntry(created.job_id, resource.flow, inputs))
            return created

        job = await protect(create())
        work.job_id = job.job_id
        _emit(progress, "job_created", job_id=job.job_id, total=len(work.inputs))
    else:
        job = BatchJob(resource, work.job_id)
        if not work.started:
            # The journal can miss a start (a crash or cancel between the call and the
            # fsync): ask the job before uploading to it again.
            current = await job.get_status()
            work.started = current.job_state != JobState.ACCEPTED
    if not work.started:
        failures = await job._upload(work.inputs, progress)
        for name, exc in failures.items():
            outcomes.append(job._failed(name, paths, None, f"upload failed: {exc}", progress))
        if len(failures) == len(work.inputs):
            return outcomes
        await job.start()
        _emit(progress, "job_started", job_id=job.job_id)
    if journal is not None and not journaled_start:
        await journal.record(StartedEntry(job.job_id))
    status = await job.wait_until_complete(poll_interval=poll_interval, timeout=job_timeout)
    _emit(progress, "job_finished", job_id=job.job_id, state=status.job_state.value)

    async def settle(o: FileOutcome) -> None:
        """Journal an outcome the moment it is known: a crash then re-fetches little."""
        if journal is not None:
            await journal.record(
                FileEntry(
                    path=str(paths[o.name]),
                    name=o.name,
                    job_id=job.job_id,
                    ok=o.ok,
                    output=str(o.output_path) if o.output_path else None,
                    state=o.state,
                    error=o.error,
                )
            )

    only = {name for name, _ in work.inputs} - {o.name for o in outcomes}
    if status.job_state.has_outputs or status.job_details:
        done = await job._download(status, out_dir, paths, progress, only=only, settled=settle)
    else:
        message = status.error_message or f"job ended {status.job_state.value}"
        done = [job._failed(n, paths, status.job_state.value, message, progress) for n in only]
        for o in done:
            await settle(o)
    outcomes.extend(done)
    seen = {o.name for o in outcomes}
    missing = [(n, p) for n, p in work.inputs if n not in seen]
    if missing and attached:
        # An earlier run lost these inputs' uploads: submit them in a new job.
        requeue(_Work(missing))
    else:
        for name, _ in missing:  # not journaled: a resume re-checks this job
            message = "the job's final status does not list this file"
            outcomes.append(job._failed(name, paths, status.job_state.value, message, progress))
    return outcomes
