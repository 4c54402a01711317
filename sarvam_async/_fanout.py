"""The fan-out: any number of files through jobs of at most 20, run concurrently.

:class:`FanOut` is one run of ``AsyncSarvam.transcribe_files``. It owns the run's state:
the resource and parameters, the output folder, the journal, the progress callback, the
queue of jobs to drive, the queue of outcomes to yield, the count of jobs outstanding, the
fatal error if one came, and the steps that must finish even if the run is cancelled.
Each job goes: create (or re-attach) -> upload -> start -> wait -> collect.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import AsyncGenerator, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _constants as C
from . import _options
from ._batch_job import BatchJob, is_transient
from ._callback_receiver import CallbackConfig, check_config
from ._limiter import CLOSED
from ._manifest import FileEntry, JobEntry, Manifest, Plan, PlannedJob, StartedEntry, plan_run
from ._preflight import (
    check_output_dir,
    check_output_names,
    check_polling,
    distinct_files,
    local_paths,
    one_path,
)
from ._results import FileOutcome, ProgressCallback, emit
from .errors import (
    BadRequestError,
    ClientClosedError,
    FileFailedError,
    ForbiddenError,
    JobError,
    ManifestError,
    SarvamError,
    TooManyRequestsError,
    UnauthorizedError,
    UnprocessableEntityError,
)
from .models import JobState, JobStatusResponse

if TYPE_CHECKING:
    from ._resources import _JobResource

    Resource = _JobResource[Any]

__all__ = ["FanOut", "is_fatal"]

logger = logging.getLogger("sarvam_async")


def is_fatal(exc: BaseException) -> bool:
    """Errors that no other job of the run could escape: stop the whole run.

    A journal that cannot be written is one: the run stops while the journal still
    describes it, rather than transcribing files it could not resume.
    """
    if isinstance(exc, TooManyRequestsError):
        return exc.quota_exhausted
    return isinstance(exc, ForbiddenError | UnauthorizedError | ManifestError | ClientClosedError)


class FanOut:
    """One run of ``transcribe_files``; iterate :meth:`run` for its outcomes.

    The arguments are those of ``AsyncSarvam.transcribe_files`` (which documents them),
    with ``resource`` the flow's job resource.
    """

    def __init__(
        self,
        resource: Resource,
        paths: Sequence[str | os.PathLike[str]],
        *,
        output_dir: str | os.PathLike[str],
        job_parameters: Any,
        max_concurrent_jobs: int,
        manifest: str | os.PathLike[str] | None,
        progress: ProgressCallback | None,
        poll_interval: float,
        job_timeout: float | None,
        callback: CallbackConfig | None = None,
    ) -> None:
        self._resource = resource
        self._callback = callback
        self._paths = paths
        self._out_dir_arg: object = output_dir  # checked with the rest in _prepare
        self._out_dir = Path()
        self._params = job_parameters
        self._max_jobs = max_concurrent_jobs
        self._manifest = manifest
        self._journal: Manifest | None = None
        self._progress = progress
        self._poll_interval = poll_interval
        self._job_timeout = job_timeout
        self._work: asyncio.Queue[PlannedJob] = asyncio.Queue()
        self._outcomes: asyncio.Queue[FileOutcome | None] = asyncio.Queue()  # None: re-check
        self._outstanding = 0  # jobs queued or in progress
        self._fatal: list[BaseException] = []
        self._stopping = False  # the run is over: workers take no more jobs
        self._critical: set[asyncio.Future[Any]] = set()
        self._duplicates: dict[Path, tuple[Path, ...]] = {}
        self._accepted = False  # has the API accepted one job of this run yet?
        self._first = asyncio.Lock()  # one creation at a time until it has

    # ------------------------------------------------------------------ the run

    async def run(self) -> AsyncGenerator[FileOutcome, None]:
        """Plan, drive every job, and yield each file's outcome as soon as it is known.

        Raises InvalidParameterError for bad arguments, missing inputs or an output folder
        that cannot be written, before anything is sent; then the first fatal error (a bad
        key, no credits, a journal that cannot be written), once every job has stopped.
        """
        plan = await self._prepare()
        for outcome in plan.resumed:
            self._outcomes.put_nowait(outcome)
        for work in plan.pending:
            if self._callback is not None and work.callback_token_sha256 is not None:
                # A job of an earlier run calls back with that run's token: accept it too.
                self._callback.receiver.accept_token_hash(work.callback_token_sha256)
            self._queue(work)
        emit(self._progress, "planned", total=plan.fresh_files, nbytes=plan.fresh_bytes)
        workers = [asyncio.ensure_future(self._worker()) for _ in range(self._max_jobs)]
        try:
            while True:
                if self._fatal:
                    raise self._fatal[0]
                if self._outstanding == 0 and self._outcomes.empty():
                    return
                item = await self._outcomes.get()
                if item is not None:
                    yield self._with_duplicates(item)
        finally:
            self._stopping = True  # one whose cancellation was lost takes no job after this
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            # A job created as the run was cancelled is journaled before we let go of it.
            await asyncio.gather(*self._critical, return_exceptions=True)
            if self._journal is not None:
                self._journal.close()

    async def _prepare(self) -> Plan:
        """Check every argument and plan the run; nothing is sent before this returns."""
        if self._resource.client.closed:
            raise ClientClosedError(CLOSED)
        check_config(self._callback)
        self._out_dir = one_path(self._out_dir_arg, "output_dir")
        self._max_jobs = int(
            _options.count(self._max_jobs, "max_concurrent_jobs", fail=_options.parameter)
        )
        self._poll_interval, _, self._job_timeout = check_polling(
            self._poll_interval, timeout=self._job_timeout, timeout_field="job_timeout"
        )
        self._params = self._resource.parameters(self._params)
        paths = local_paths(self._paths)
        if self._manifest is not None:
            self._journal = Manifest(one_path(self._manifest, "manifest"))
        return await asyncio.to_thread(self._plan, paths, self._journal)

    def _plan(self, paths: list[Path], journal: Manifest | None) -> Plan:
        """The blocking part of :meth:`_prepare`: the file system and the journal."""
        inputs = distinct_files(paths)
        self._duplicates = inputs.duplicates
        check_output_dir(self._out_dir)
        plan = plan_run(inputs.files, journal, self._resource.flow)
        # Inputs about to be uploaded: their transcripts must be savable under their names.
        uploads = (item for work in plan.pending if not work.started for item in work.inputs)
        check_output_names(self._out_dir, uploads)
        return plan

    def _with_duplicates(self, outcome: FileOutcome) -> FileOutcome:
        duplicates = self._duplicates.get(outcome.path) if outcome.path is not None else None
        return dataclasses.replace(outcome, duplicates=duplicates) if duplicates else outcome

    def _queue(self, work: PlannedJob) -> None:
        self._outstanding += 1
        self._work.put_nowait(work)

    async def _worker(self) -> None:
        while not self._stopping:
            work = await self._work.get()
            await self._go(work)

    async def _go(self, work: PlannedJob) -> None:
        """Drive one job; its outcomes, or its failure, go to the outcome queue."""
        try:
            for outcome in await self._drive(work):
                self._outcomes.put_nowait(outcome)
        except Exception as exc:  # cancellation passes through
            await self._after_failure(work, exc)
        finally:
            if self._callback is not None and work.job_id is not None:
                self._callback.receiver.release(work.job_id)  # a job that never got to wait
            self._outstanding -= 1
            self._outcomes.put_nowait(None)  # wake the consumer to re-check

    async def _after_failure(self, work: PlannedJob, exc: Exception) -> None:
        """Stop the run, give the job another go, or fail its files."""
        rejected = work.job_id is None and isinstance(
            exc, BadRequestError | UnprocessableEntityError
        )
        if is_fatal(exc) or rejected:  # parameters refused for one job are for all of them
            self._fatal.append(exc)
        elif is_transient(exc) and work.tries < C.JOB_RETRIES:
            # The call's own retries ran out (a long 429 storm, an outage): give the
            # whole job another go later rather than failing its files. Its state
            # (job id, started) is kept, so nothing is submitted twice.
            work.tries += 1
            logger.info("job %s: %s; trying the job again", work.job_id, exc)
            policy = self._resource.client.retry
            if getattr(exc, "attempts", 1) > 1:  # retries ran out: let the storm pass
                pause = C.JOB_RETRY_PAUSE * work.tries
            else:  # one attempt, never re-sent (a dropped start): try again soon
                pause = policy.backoff(work.tries)
            await policy.sleep(pause)
            self._queue(work)
        else:
            if not isinstance(exc, SarvamError):  # a defect: keep it visible, typed for callers
                logger.error("job %s failed unexpectedly", work.job_id, exc_info=exc)
                exc = JobError(
                    f"job {work.job_id} failed unexpectedly ({type(exc).__name__}); please "
                    "report this",
                    job_id=work.job_id,
                )
            for name, path in work.inputs:
                emit(self._progress, "file_failed", job_id=work.job_id, file=name)
                self._outcomes.put_nowait(
                    FileOutcome(name, path, work.job_id, ok=False, error=str(exc), exception=exc)
                )

    # ------------------------------------------------------------------ one job

    async def _drive(self, work: PlannedJob) -> list[FileOutcome]:
        """Drive one job to its end; returns its files' outcomes."""
        outcomes: list[FileOutcome] = []
        attached = work.job_id is not None
        journaled_start = work.started
        if work.job_id is not None:
            job = await self._attach(work, work.job_id)
        else:
            job = await self._create(work)
        if not work.started:
            if not work.uploaded:  # a go after a lost start only starts: inputs are there
                outcomes = await self._upload(job, work)
                if len(outcomes) == len(work.inputs):
                    return outcomes
                work.uploaded = not outcomes
            await job.start()
            emit(self._progress, "job_started", job_id=job.job_id)
        if self._journal is not None and not journaled_start:
            await self._journal.record(StartedEntry(job.job_id))
        status = await job.wait_until_complete(
            poll_interval=self._poll_interval, timeout=self._job_timeout
        )
        emit(self._progress, "job_finished", job_id=job.job_id, state=status.job_state.value)
        outcomes.extend(await self._collect(job, work, status, {o.name for o in outcomes}))
        outcomes.extend(self._unlisted(job, work, status, attached, outcomes))
        return outcomes

    async def _create(self, work: PlannedJob) -> BatchJob:
        """Create the job; it is journaled even if the run is cancelled meanwhile.

        Until the API has accepted one job of the run, jobs are created one at a time: job
        parameters it rejects (a 400 or 422, which stops the run) then cost one request.
        """
        if not self._accepted:
            async with self._first:
                if self._fatal:  # the creation before this one stopped the run
                    raise self._fatal[0]
                if not self._accepted:
                    job = await self._protect(self._create_and_journal(work))
                    self._accepted = True
                    return self._created(work, job)
        return self._created(work, await self._protect(self._create_and_journal(work)))

    def _created(self, work: PlannedJob, job: BatchJob) -> BatchJob:
        work.job_id = job.job_id
        emit(self._progress, "job_created", job_id=job.job_id, total=len(work.inputs))
        return job

    async def _create_and_journal(self, work: PlannedJob) -> BatchJob:
        # Creating and journaling are one step: a job the API created is never lost.
        config = self._callback
        created = await self._resource.create_job(self._params, callback=config)
        if config is not None:
            work.callback_token_sha256 = config.receiver.token_hash
        if self._journal is not None:
            inputs = {name: str(path) for name, path in work.inputs}
            token = work.callback_token_sha256
            entry = JobEntry(created.job_id, self._resource.flow, inputs, token)
            await self._journal.record(entry)
        return created

    async def _protect(self, step: Coroutine[Any, Any, BatchJob]) -> BatchJob:
        """Run ``step`` to its end even if the run is cancelled meanwhile."""
        task = asyncio.ensure_future(step)
        self._critical.add(task)
        task.add_done_callback(self._critical.discard)
        return await asyncio.shield(task)

    async def _attach(self, work: PlannedJob, job_id: str) -> BatchJob:
        """A handle on a journaled job; asks whether it started if the journal does not say.

        It waits on callbacks only if it was created to call back (and this run listens).
        """
        calls_back = work.callback_token_sha256 is not None
        job = BatchJob(self._resource, job_id, callback=self._callback if calls_back else None)
        if not work.started:
            # The journal can miss a start (a crash or cancel between the call and the
            # fsync): ask the job before uploading to it again.
            current = await job.get_status()
            work.started = current.job_state != JobState.ACCEPTED
        return job

    async def _upload(self, job: BatchJob, work: PlannedJob) -> list[FileOutcome]:
        """Upload the job's inputs; returns the outcomes of those that failed."""
        failures = await job.upload_inputs(work.inputs, self._progress)
        paths = dict(work.inputs)
        return [
            job.failed(name, paths[name], None, exc, self._progress, error=f"upload failed: {exc}")
            for name, exc in failures.items()
        ]

    async def _collect(
        self, job: BatchJob, work: PlannedJob, status: JobStatusResponse, done: set[str]
    ) -> list[FileOutcome]:
        """Outcomes of the inputs not in ``done``, each journaled as soon as it is known."""
        paths = dict(work.inputs)
        only = set(paths) - done

        async def settle(outcome: FileOutcome) -> None:
            await self._settle(job.job_id, paths, outcome)

        if status.job_state.has_outputs or status.job_details:
            return await job.collect(
                status, self._out_dir, paths, self._progress, only=only, settled=settle
            )
        message = status.error_message or f"job ended {status.job_state.value}"
        state = status.job_state.value
        failed = [job.verdict(n, paths[n], state, message, self._progress) for n in only]
        for outcome in failed:
            await settle(outcome)
        return failed

    async def _settle(self, job_id: str, paths: Mapping[str, Path], o: FileOutcome) -> None:
        """Journal an outcome the moment it is known: a crash then re-fetches little.

        Only a transcript or the API's verdict is final. A failure on this side (a download,
        the local disk, a refused output name) is not journaled: a resume re-attaches the
        job, already paid for, and tries again.
        """
        if not (o.ok or isinstance(o.exception, FileFailedError)):
            return
        if self._journal is not None:
            await self._journal.record(
                FileEntry(
                    path=str(paths[o.name]),
                    name=o.name,
                    job_id=job_id,
                    ok=o.ok,
                    output=str(o.output_path) if o.output_path else None,
                    state=o.state,
                    error=o.error,
                )
            )

    def _unlisted(
        self,
        job: BatchJob,
        work: PlannedJob,
        status: JobStatusResponse,
        attached: bool,
        outcomes: list[FileOutcome],
    ) -> list[FileOutcome]:
        """Inputs the final status does not list: a new job for them, or failed outcomes."""
        seen = {o.name for o in outcomes}
        missing = [(n, p) for n, p in work.inputs if n not in seen]
        if missing and attached:
            # An earlier run lost these inputs' uploads: submit them in a new job.
            self._queue(PlannedJob(missing))
            return []
        message = "the job's final status does not list this file"  # not journaled: a
        state = status.job_state.value  # resume re-checks this job
        return [job.verdict(n, p, state, message, self._progress) for n, p in missing]
