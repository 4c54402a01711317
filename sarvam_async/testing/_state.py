"""Jobs, their uploaded inputs and their lifecycle.

A job is ``Accepted`` until started. From start it is ``Pending`` for the first 20% of its
duration, ``Running`` until the duration has elapsed, then terminal: ``Completed`` (every file
succeeded), ``PartiallyCompleted`` (some failed; the live API's state that the published enum
lacks) or ``Failed`` (all failed). States are computed from the clock when observed, so a fake
clock drives the schedule. With a zero duration the job is terminal at its first observation
after start (the start answer itself says ``Pending``).

The job's files are fixed at start: the names given upload URLs (in the order they were first
requested) that have been PUT at least once. Names never PUT are not part of the job. File ids
are ``"0"``, ``"1"``, ... in that order and outputs are named ``<file_id>.json``. Zero-byte
inputs fail with ``API Error``.

Before start the status carries ``null`` counts (the docs allow it; the live API sends it).
Download-files refuses a job that is not terminal, and for ``download_lag`` seconds after it
became terminal still reports it ``Pending`` (the live endpoint lags behind status).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from ._clock import WallClock
from ._synth import render_output

TERMINAL = frozenset({"Completed", "PartiallyCompleted", "Failed"})
PENDING_FRACTION = 0.2


@dataclass(frozen=True, slots=True)
class StoredInput:
    """An input blob received by presigned PUT: its size, sha256 (hex), and request headers."""

    name: str
    size: int
    sha256: str
    content_type: str | None
    headers: dict[str, str]
    uploaded_at: float


@dataclass(frozen=True, slots=True)
class JobFile:
    """One file of a started job and its outcome (``state`` ``Success`` or a failing state)."""

    file_id: str
    name: str
    input: StoredInput
    state: str
    error_message: str

    @property
    def output_name(self) -> str | None:
        """``<file_id>.json`` for successful files, else None."""
        return f"{self.file_id}.json" if self.state == "Success" else None


class JobView(msgspec.Struct, frozen=True):
    """A read-only snapshot of a job, taken at the emulator clock's current reading.

    ``registered`` lists the names given upload URLs; ``inputs`` the blobs received (latest
    PUT per name); ``files`` the job's files once started (empty before). Times are emulator
    clock readings.
    """

    job_id: str
    flow: str
    state: str
    parameters: dict[str, Any]
    callback: dict[str, Any] | None
    ptu_id: int | None
    storage_container_type: str
    created_at: float
    started_at: float | None
    duration: float
    registered: tuple[str, ...]
    inputs: dict[str, StoredInput]
    files: tuple[JobFile, ...]
    error_message: str
    callback_status: int | str | None


class Job:
    """Mutable state of one batch job; see the module docstring for its lifecycle."""

    __slots__ = (
        "_output_cache",
        "_status_cache",
        "callback",
        "callback_status",
        "created",
        "duration",
        "error_message",
        "files",
        "flow",
        "inputs",
        "job_id",
        "outputs",
        "parameters",
        "ptu_id",
        "registered",
        "started",
        "storage_container_type",
        "touched",
    )

    def __init__(
        self,
        job_id: str,
        flow: str,
        parameters: dict[str, Any],
        callback: dict[str, Any] | None,
        ptu_id: int | None,
        storage_container_type: str,
        now: float,
    ) -> None:
        self.job_id = job_id
        self.flow = flow
        self.parameters = parameters
        self.callback = callback
        self.ptu_id = ptu_id
        self.storage_container_type = storage_container_type
        self.created = now
        self.touched = now
        self.registered: dict[str, None] = {}
        self.inputs: dict[str, StoredInput] = {}
        self.started: float | None = None
        self.duration = 0.0
        self.files: tuple[JobFile, ...] = ()
        self.outputs: dict[str, JobFile] = {}
        self.error_message = ""
        self.callback_status: int | str | None = None
        self._status_cache: dict[tuple[str, int], bytes] = {}
        self._output_cache: dict[str, bytes] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def terminal_state(self) -> str:
        """The state the job ends in, from its files' outcomes."""
        failed = sum(1 for f in self.files if f.state != "Success")
        if failed == 0:
            return "Completed"
        return "Failed" if failed == len(self.files) else "PartiallyCompleted"

    def ends_at(self) -> float:
        """Clock reading at which the job becomes terminal (inf before start)."""
        return math.inf if self.started is None else self.started + self.duration

    def state_at(self, now: float) -> str:
        """The job's state at clock reading ``now``."""
        started = self.started
        if started is None:
            return "Accepted"
        elapsed = now - started
        if elapsed >= self.duration:
            return self.terminal_state()
        return "Running" if elapsed >= PENDING_FRACTION * self.duration else "Pending"

    def download_refusal(self, now: float, lag: float) -> str | None:
        """The state download-files reports when refusing at ``now``; None once it serves."""
        state = self.state_at(now)
        if state not in TERMINAL:
            return state
        return "Pending" if now < self.ends_at() + lag else None

    def processed_at(self, now: float) -> int:
        """How many files are processed at ``now`` (grows linearly while ``Running``)."""
        if self.started is None:
            return 0
        running_from = self.started + PENDING_FRACTION * self.duration
        if now >= self.ends_at():
            return len(self.files)
        if now < running_from:
            return 0
        span = self.duration - PENDING_FRACTION * self.duration
        done = int(len(self.files) * (now - running_from) / span)
        return min(done, len(self.files) - 1)

    def start(
        self, now: float, duration: float, file_faults: Mapping[str, tuple[str, str]]
    ) -> None:
        """Freeze the job's files and schedule it; ``file_faults`` maps names to failures."""
        files: list[JobFile] = []
        for name in self.registered:
            blob = self.inputs.get(name)
            if blob is None:
                continue
            state, message = "Success", ""
            if name in file_faults:
                state, message = file_faults[name]
            elif blob.size == 0:
                state, message = "API Error", "Audio file is empty"
            files.append(JobFile(str(len(files)), name, blob, state, message))
        self.files = tuple(files)
        self.outputs = {f.output_name: f for f in files if f.output_name is not None}
        self.started = now
        self.touched = now
        self.duration = max(0.0, duration)
        if files and not self.outputs:
            first = files[0].error_message
            self.error_message = f"All {len(files)} files failed to process: {first}"
        self._status_cache.clear()

    # -- documents ---------------------------------------------------------------------------

    def _updated(self, state: str) -> float:
        started = self.started
        if started is None:
            return self.touched
        if state == "Pending":
            return started
        if state == "Running":
            return started + PENDING_FRACTION * self.duration
        return started + self.duration

    def status_body(
        self, now: float, wall: WallClock, state: str | None = None, *, null_counts: bool = True
    ) -> bytes:
        """Encoded ``JobStatusResponse`` at ``now`` (``state`` overrides the computed state).

        ``null_counts``: before start the three counts are ``null`` (else 0).
        """
        state = state or self.state_at(now)
        processed = self.processed_at(now) if state != "Pending" else 0
        key = (state, processed)
        cached = self._status_cache.get(key)
        if cached is not None:
            return cached
        terminal = state in TERMINAL
        done = self.files[:processed]
        failed = sum(1 for f in done if f.state != "Success")
        unset = None if null_counts and self.started is None else 0
        body = msgspec.json.encode(
            {
                "job_state": state,
                "created_at": wall.iso(self.created),
                "updated_at": wall.iso(self._updated(state)),
                "job_id": self.job_id,
                "storage_container_type": self.storage_container_type,
                "total_files": len(self.files) if self.started is not None else unset,
                "successful_files_count": len(done) - failed if self.started is not None else unset,
                "failed_files_count": failed if self.started is not None else unset,
                "error_message": self.error_message if state == "Failed" else "",
                "job_details": [_detail(f) for f in self.files] if terminal else [],
            }
        )
        if self.started is not None:  # before start, uploads change ``updated_at``
            self._status_cache[key] = body
        return body

    def output_body(self, name: str, wall: WallClock) -> bytes | None:
        """Encoded output JSON for output ``name`` (e.g. ``"0.json"``), None if there is none."""
        cached = self._output_cache.get(name)
        if cached is not None:
            return cached
        f = self.outputs.get(name)
        if f is None:
            return None
        date = wall.iso(self.created)[:10].replace("-", "")
        body = render_output(f.input.sha256, self.flow, self.parameters, date)
        self._output_cache[name] = body
        return body

    def view(self, now: float) -> JobView:
        """A snapshot for assertions."""
        return JobView(
            job_id=self.job_id,
            flow=self.flow,
            state=self.state_at(now),
            parameters=dict(self.parameters),
            callback=dict(self.callback) if self.callback is not None else None,
            ptu_id=self.ptu_id,
            storage_container_type=self.storage_container_type,
            created_at=self.created,
            started_at=self.started,
            duration=self.duration,
            registered=tuple(self.registered),
            inputs=dict(self.inputs),
            files=self.files,
            error_message=self.error_message,
            callback_status=self.callback_status,
        )


def _detail(f: JobFile) -> dict[str, Any]:
    out = f.output_name
    return {
        "inputs": [{"file_name": f.name, "file_id": f.file_id}],
        "outputs": [{"file_name": out, "file_id": f.file_id}] if out is not None else [],
        "state": f.state,
        "error_message": f.error_message,
        "exception_name": "",
    }


class JobsView(Mapping[str, JobView]):
    """Read-only mapping of job id to ``JobView``, evaluated at access time."""

    __slots__ = ("_clock", "_jobs")

    def __init__(self, jobs: dict[str, Job], wall: WallClock) -> None:
        self._jobs = jobs
        self._clock = wall

    def __getitem__(self, job_id: str) -> JobView:
        return self._jobs[job_id].view(self._clock.now())

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._jobs))

    def __len__(self) -> int:
        return len(self._jobs)
