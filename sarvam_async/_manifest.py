"""The resume manifest: an append-only, fsynced journal of a fan-out run, and its replay.

One JSON object per line. ``job`` records a created job and the inputs it carries (keyed by
absolute path, with the name sent to the API, and, if it calls back, the SHA-256 of its
callback token, never the token); ``started`` records that the job was
started; ``file`` records a finished input: transcribed (with its output path), or failed
by the API's verdict (``FileFailedError``). A failure on this side of the API -- a download,
the local disk, an output name refused -- is never journaled: a resume tries it again,
from the job already paid for.
Replaying the journal tells a new run which files are finished, which jobs exist and
which were started, so nothing is submitted or downloaded twice. A torn last line (a crash
mid-write) is cut off and a complete last line missing its newline gets one, so the next
entry starts on a line of its own; any other unreadable line is a ManifestError.

A write that fails (disk full, short write) is undone (the file is cut back to its last
whole entry) and the journal refuses every later write: a run stops on its first journal
failure and the file stays resumable.

:func:`plan_run` names a run's inputs, replays the journal and groups what is left into
jobs: the resume planning.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from ._filenames import unique_names
from ._results import FileOutcome, read_result
from ._tasks import wait_through_cancel
from ._transport import encoder
from .errors import FileFailedError, ManifestError
from .models import MAX_FILES_PER_JOB

__all__ = ["Manifest", "ManifestState", "Plan", "PlannedJob", "plan_run"]


class _Entry(msgspec.Struct, tag_field="event", omit_defaults=True):
    pass


class JobEntry(_Entry, tag="job"):
    job_id: str
    flow: str
    inputs: dict[str, str]  # API name -> absolute local path
    callback_token_sha256: str | None = None  # the job calls back; never the token itself


class StartedEntry(_Entry, tag="started"):
    job_id: str


class FileEntry(_Entry, tag="file"):
    path: str
    name: str
    job_id: str
    ok: bool
    output: str | None = None
    state: str | None = None
    error: str | None = None


_Line = JobEntry | StartedEntry | FileEntry
_decoder: msgspec.json.Decoder[_Line] = msgspec.json.Decoder(_Line)


@dataclass
class ManifestState:
    """What a journal says: jobs by id, started job ids, finished files by path."""

    jobs: dict[str, JobEntry] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)
    files: dict[str, FileEntry] = field(default_factory=dict)


class Manifest:
    """Append-only journal at ``path``; ``load()`` replays it, ``record()`` appends."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = asyncio.Lock()
        self._fd: int | None = None
        self._size = 0  # bytes of whole entries: where a failed write is cut back to
        self._failure: ManifestError | None = None

    def load(self) -> ManifestState:
        """Replay the journal (an absent file is an empty one). Raises ManifestError."""
        state = ManifestState()
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return state
        except OSError as exc:
            raise ManifestError(f"cannot read manifest {self.path}: {exc.strerror}") from None
        lines = data.split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = _decoder.decode(line)
            except (msgspec.MsgspecError, RecursionError):
                if number == len(lines):  # torn final write: the crash we exist for
                    self._truncate(len(data) - len(line))
                    break
                raise ManifestError(
                    f"manifest {self.path} line {number} is unreadable; it was not written "
                    "by this tool, or was edited. Move it away to start afresh"
                ) from None
            if isinstance(entry, JobEntry):
                state.jobs[entry.job_id] = entry
            elif isinstance(entry, StartedEntry):
                state.started.add(entry.job_id)
            else:
                state.files[entry.path] = entry
            if number == len(lines):  # whole, but its newline was never written
                self._terminate()
        return state

    def _terminate(self) -> None:
        """End a complete last entry with its missing newline."""
        try:
            with self.path.open("ab") as f:
                f.write(b"\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise ManifestError(
                f"cannot repair the last line of manifest {self.path}: {exc.strerror}"
            ) from None

    def _truncate(self, size: int) -> None:
        """Cut a torn last line off, so that the next record starts on a line of its own."""
        try:
            os.truncate(self.path, size)
        except OSError as exc:
            raise ManifestError(
                f"cannot repair the torn last line of manifest {self.path}: {exc.strerror}"
            ) from None

    async def record(self, entry: _Line) -> None:
        """Append one entry and fsync it before returning.

        Raises ManifestError, and again on every later call once a write has failed. A
        cancelled call raises CancelledError (never the write's error) once its write has
        ended.
        """
        line = encoder.encode(entry) + b"\n"
        async with self._lock:
            if self._failure is not None:
                raise self._failure
            write = asyncio.ensure_future(asyncio.to_thread(self._append, line))
            # the thread cannot be stopped: letting the caller go (and the lock with it)
            # would let the next entry, or close(), race a write still under way
            cancelled = await wait_through_cancel(write)
            error = write.exception()
            if isinstance(error, ManifestError):
                self._failure = error  # raised by every later call
            if cancelled:  # re-raised once the write has ended, whatever its fate:
                raise asyncio.CancelledError  # a caller told to stop must stop
            if error is not None:
                raise error

    def _append(self, line: bytes) -> None:
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                self._size = os.fstat(self._fd).st_size
            view = memoryview(line)
            while view:  # os.write may write less than asked
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        except OSError as exc:
            self._undo()
            raise ManifestError(
                f"cannot write manifest {self.path}: {exc.strerror or exc}; the run stopped "
                "and the manifest is resumable: free space and run again"
            ) from None
        self._size += len(line)

    def _undo(self) -> None:
        """Cut a partly written entry off, so that the journal ends on a whole entry."""
        if self._fd is not None:
            with contextlib.suppress(OSError):  # a torn last line is what load() repairs
                os.ftruncate(self._fd, self._size)

    def close(self) -> None:
        """Close the journal's file descriptor."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass
class PlannedJob:
    """A job of a run: its inputs, and what is known of it (id, uploaded, started, goes)."""

    inputs: list[tuple[str, Path]]
    job_id: str | None = None
    started: bool = False
    tries: int = 0
    uploaded: bool = False  # every input reached the job's storage in this run
    callback_token_sha256: str | None = None


@dataclass
class Plan:
    """A run's jobs to drive, its outcomes from the journal, and what is new."""

    pending: list[PlannedJob]
    resumed: list[FileOutcome]
    fresh_files: int
    fresh_bytes: int


def plan_run(files: Sequence[Path], journal: Manifest | None, flow: str) -> Plan:
    """Name the inputs, replay the journal, and group what is left into jobs (blocking).

    ``files`` are distinct resolved paths of readable files (``_preflight.distinct_files``):
    the journal knows each file by its resolved path. A path the journal knows keeps the
    name its job was created with, whatever the order of this run's inputs; new paths get
    names no journaled path uses.
    """
    state = journal.load() if journal is not None else ManifestState()
    names = unique_names(files, _recorded_names(state))
    by_path = dict(zip((str(p) for p in files), names, strict=True))
    resumed = _resumed(state, by_path)
    claimed = {str(o.path) for o in resumed}  # paths with an outcome or a job already
    pending = _reattached(state, by_path, claimed, flow)
    fresh = [(by_path[str(p)], p) for p in files if str(p) not in claimed]
    for i in range(0, len(fresh), MAX_FILES_PER_JOB):
        pending.append(PlannedJob(fresh[i : i + MAX_FILES_PER_JOB]))
    return Plan(pending, resumed, len(fresh), sum(p.stat().st_size for _, p in fresh))


def _recorded_names(state: ManifestState) -> dict[str, str]:
    """Path -> the name the journal gave it (a job's name first, else a file's)."""
    recorded: dict[str, str] = {}
    for job in state.jobs.values():
        for name, path in job.inputs.items():
            recorded[path] = name
    for key, entry in state.files.items():
        recorded.setdefault(key, entry.name)
    return recorded


def _resumed(state: ManifestState, by_path: dict[str, str]) -> list[FileOutcome]:
    """The journaled outcomes of this run's inputs (not those whose output has gone)."""
    resumed: list[FileOutcome] = []
    for key, entry in state.files.items():
        if key in by_path:
            outcome = _resumed_outcome(entry, key)
            if outcome is not None:
                resumed.append(outcome)
    return resumed


def _reattached(
    state: ManifestState, by_path: dict[str, str], claimed: set[str], flow: str
) -> list[PlannedJob]:
    """Journaled jobs of ``flow`` that still carry unclaimed inputs; claims those inputs."""
    pending: list[PlannedJob] = []
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
            started = job.job_id in state.started
            token = job.callback_token_sha256
            pending.append(PlannedJob(inputs, job.job_id, started, callback_token_sha256=token))
    pending.reverse()
    return pending


def _resumed_outcome(entry: FileEntry, key: str) -> FileOutcome | None:
    """The journaled outcome, or None when a finished output has gone (download it again)."""
    result = None
    output = Path(entry.output) if entry.output else None
    if entry.ok:
        if output is None:
            return None
        try:
            result = read_result(output)
        except (OSError, ValueError):
            return None
    verdict = None
    if not entry.ok:
        verdict = FileFailedError(
            entry.error or f"the API reported {entry.state}",
            file_name=entry.name,
            job_id=entry.job_id,
            state=entry.state,
        )
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
        exception=verdict,
    )
