"""What the command shows: live fan-out progress, summary and failure tables, JSON.

Progress, notes and logs go to stderr; results (tables, JSON) to stdout, so
``sarvam-async ... --json > out.json`` and pipes keep working. Each job id is printed as the
job is created. When stderr is not a terminal :class:`FanOutProgress` prints a plain line
when the run is planned, every tenth of the files (at most one a second) and at least every
few seconds while nothing else is said, then the final bars once, at the end; nothing is
redrawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

import msgspec
from rich import box
from rich.console import Console, Group, RenderableType
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .. import ClientStats
from .._constants import CLI_PLAIN_PROGRESS_EVERY
from ..jobs import FileOutcome, ProgressEvent
from ..models import MAX_FILES_PER_JOB


class UI:
    """The two consoles of a run, and logging when ``verbose``."""

    def __init__(self, *, verbose: bool) -> None:
        self.out = Console(highlight=False, soft_wrap=False)
        self.err = Console(stderr=True, highlight=False)
        self.verbose = verbose
        self.retries = RetryCauses()
        log = logging.getLogger("sarvam_async")
        log.addHandler(self.retries)
        if log.getEffectiveLevel() > logging.INFO:
            log.setLevel(logging.INFO)  # the counter's records; nothing else prints them
        if verbose:
            handler = RichHandler(console=self.err, show_path=False, markup=False)
            handler.setFormatter(logging.Formatter("%(message)s", datefmt="%H:%M:%S"))
            log = logging.getLogger("sarvam_async")
            log.addHandler(handler)
            log.setLevel(logging.DEBUG)

    def spinner(self, message: str) -> AbstractContextManager[object]:
        """A spinner on stderr while waiting; nothing at all when stderr is not a terminal."""
        if not self.err.is_terminal:
            return contextlib.nullcontext()
        return self.err.status(message)

    def note(self, message: str) -> None:
        """A line of commentary on stderr (kept out of stdout's results)."""
        self.err.print(message, markup=False, highlight=False, soft_wrap=True)

    def line(self, message: str) -> None:
        """A plain result line on stdout (never wrapped: paths stay copyable)."""
        self.out.print(message, markup=False, highlight=False, soft_wrap=True)


def human_bytes(n: float) -> str:
    """``1536`` -> ``1.5 KB``."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 retry``, ``2 retries``, ``0 files``."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


_CAUSES = {
    "429": "429",
    "503": "503",
    "APIConnectionError": "dropped connections",
    "APITimeoutError": "timeouts",
}


class RetryCauses(logging.Handler):
    """Counts the client's retries by what caused them, from its retry log records."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counts: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        cause = getattr(record, "retry_cause", None)
        if cause is not None:
            fallback = f"HTTP {cause}" if isinstance(cause, int) else str(cause)
            name = _CAUSES.get(str(cause), fallback)
            self.counts[name] = self.counts.get(name, 0) + 1

    def describe(self, total: int) -> str:
        """``5 retries (429: 2, 503: 1, dropped connections: 2)``: the causes add up."""
        causes = dict(self.counts)
        other = total - sum(causes.values())
        if other > 0:
            causes["other"] = other
        parts = ", ".join(f"{name}: {n}" for name, n in causes.items())
        return plural(total, "retry", "retries") + (f" ({parts})" if total and parts else "")


def stats_text(stats: ClientStats, *, final: bool = False) -> Text:
    """One short line of client counters: calls, retries, throttling, pace, in flight.

    ``final``: the run is over, so the pace is told as what happened, not what is going on.
    """
    if stats.rate_per_minute is not None:
        pace = f"{stats.rate_per_minute:,.0f}/min"
        if final:
            pace = f"paced at {pace} at the end"
    elif stats.phase == "start":
        pace = "unpaced at the end (no limit in evidence)" if final else "unpaced"
    else:
        pace = "off"
    if stats.hold_seconds > 0 and not final:
        pace += f", held {stats.hold_seconds:.1f}s"
    parts = [
        plural(stats.requests, "API call"),
        plural(stats.retries, "retry", "retries"),
        f"429/503 {stats.throttled}",
        f"pace {pace}" if not final else pace,
    ]
    if not final:
        parts.append(f"in flight {stats.in_flight}")
    return Text(" · ".join(parts), style="dim")


class FanOutProgress(Progress):
    """Live bars of a ``transcribe_files`` run; call it with progress events and outcomes.

    Counts are kept as sets of names / job ids, so a second pass over the same files (a
    resumed or repeated run) never counts anything twice. Enter it inside the running loop:
    in plain mode it keeps a heartbeat task there.
    """

    def __init__(
        self, console: Console, stats: Callable[[], ClientStats], total_files: int
    ) -> None:
        self._stats = stats  # before Progress.__init__, which may render
        self.final = False
        super().__init__(
            TextColumn("{task.description:<15}"),
            BarColumn(bar_width=32),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(),
            console=console,
            refresh_per_second=8,
            disable=not console.is_terminal,  # plain output: lines, then the final bars
        )
        self.total_files = total_files
        self.uploaded: set[str] = set()
        self.uploads = 0  # file uploads completed, a file sent again counted again
        self.jobs_seen: list[str] = []  # in order of creation (or re-attachment)
        self.started: set[str] = set()
        self.jobs_done: set[str] = set()
        self.transcribed: set[str] = set()
        self.failed: dict[str, FileOutcome] = {}
        self.outcomes: dict[str, FileOutcome] = {}
        self.resumed = 0
        self.planned_uploads: int | None = None
        self.planned_jobs = 0
        self.bytes_sent = 0  # net: what the files weigh once uploaded
        self.bytes_resent = 0  # sent again after an upload attempt failed part way
        self._plain = not console.is_terminal
        self._next_milestone = 1
        self._t0 = self._last_line = time.monotonic()
        self._beat: asyncio.Task[None] | None = None
        self._up = self.add_task("Uploaded", total=None, note="")
        self._jobs = self.add_task("Jobs finished", total=None, note="")
        self._done = self.add_task("Transcribed", total=total_files, note="")

    # -- inputs ----------------------------------------------------------------------------

    def __call__(self, event: ProgressEvent) -> None:
        """The ``progress=`` callback of ``transcribe_files``."""
        kind = event.kind
        if kind == "planned":
            if self.planned_uploads is None:  # later passes only redo part of the first
                self.planned_uploads = event.total
                self.planned_jobs = math.ceil(event.total / MAX_FILES_PER_JOB)
                self._plain_line(
                    f"Planned: {plural(self.total_files, 'file')}, "
                    f"{plural(event.total, 'new upload')} ({human_bytes(event.nbytes)}) "
                    f"in {plural(self.planned_jobs, 'new job')}"
                )
        elif kind == "bytes_sent":
            self.bytes_sent += event.nbytes
            if event.nbytes < 0:
                self.bytes_resent -= event.nbytes
        elif kind == "file_uploaded" and event.file is not None:
            self.uploaded.add(event.file)
            self.uploads += 1
        elif event.job_id is not None:
            if event.job_id not in self.jobs_seen:
                self.jobs_seen.append(event.job_id)
                if kind == "job_created":  # printed at once: status, wait, download need it
                    self.console.print(
                        f"job {event.job_id} created ({plural(event.total, 'file')})",
                        markup=False,
                        highlight=False,
                        soft_wrap=True,
                    )
            if kind == "job_started":
                self.started.add(event.job_id)
            elif kind == "job_finished":
                self.jobs_done.add(event.job_id)
        self._sync()

    def outcome(self, outcome: FileOutcome) -> None:
        """Count one file's end (from the ``transcribe_files`` iterator)."""
        self.outcomes[outcome.name] = outcome
        if outcome.ok:
            self.transcribed.add(outcome.name)
            self.failed.pop(outcome.name, None)
        else:
            self.failed[outcome.name] = outcome
        if outcome.resumed and outcome.ok:
            self.resumed += 1
        self._sync()
        if self._plain:
            self._milestone()

    # -- display ---------------------------------------------------------------------------

    def _sync(self) -> None:
        running = len(self.started - self.jobs_done)
        self.update(
            self._up,
            total=max(self.planned_uploads or 0, len(self.uploaded)) or None,
            completed=len(self.uploaded),
            note=human_bytes(max(self.bytes_sent, 0)),
        )
        self.update(
            self._jobs,
            total=max(self.planned_jobs, len(self.jobs_seen)),
            completed=len(self.jobs_done),
            note=f"{running} running",
        )
        failed = f"{len(self.failed)} failed" if self.failed else ""
        self.update(self._done, completed=len(self.transcribed), note=failed)

    def status_line(self) -> str:
        """Where the run is, in one plain line."""
        done = len(self.transcribed) + len(self.failed)
        stats = self._stats()
        return (
            f"{done:>6}/{self.total_files} files done, {len(self.failed)} failed; "
            f"{len(self.uploaded)} uploaded; jobs {len(self.jobs_seen)} created, "
            f"{len(self.started - self.jobs_done)} running, {len(self.jobs_done)} finished; "
            f"{plural(stats.requests, 'API call')}, {plural(stats.retries, 'retry', 'retries')} "
            f"({time.monotonic() - self._t0:.1f}s)"
        )

    def _plain_line(self, text: str) -> None:
        if self._plain:
            self._last_line = time.monotonic()
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _milestone(self) -> None:
        """A plain line per tenth of the files done, at most one a second (but the last)."""
        done = len(self.transcribed) + len(self.failed)
        total = max(self.total_files, 1)
        now = time.monotonic()
        crossed = done * 10 >= self._next_milestone * total
        if not crossed or (done < total and now - self._last_line < 1.0):
            return
        while done * 10 >= self._next_milestone * total:
            self._next_milestone += 1
        self._plain_line(self.status_line())

    async def _heartbeat(self) -> None:
        """In plain mode, a status line whenever nothing was said for a few seconds."""
        while True:
            quiet = time.monotonic() - self._last_line
            if quiet >= CLI_PLAIN_PROGRESS_EVERY:
                self._plain_line(self.status_line())
                quiet = 0.0
            await asyncio.sleep(CLI_PLAIN_PROGRESS_EVERY - quiet)

    def __enter__(self) -> FanOutProgress:
        super().__enter__()
        if self._plain:
            self._beat = asyncio.get_running_loop().create_task(self._heartbeat())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if self._beat is not None:
            self._beat.cancel()
        if exc_type is not None:  # the error (or the interruption) says it all: no bars
            self.live.transient = True
        self.final = exc_type is None
        super().__exit__(exc_type, exc_val, exc_tb)
        if self._plain and exc_type is None:
            self.console.print(Group(*self.get_renderables()))

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        yield stats_text(self._stats(), final=self.final)

    def upload_text(self) -> str:
        """``1.5 MB in 200 files`` plus what was sent again, for the summary."""
        text = f"{human_bytes(max(self.bytes_sent, 0))} in {plural(len(self.uploaded), 'file')}"
        again = self.uploads - len(self.uploaded)
        if again > 0 or self.bytes_resent > 0:
            text += (
                f"; re-sent: {plural(again, 'whole file')}, "
                f"{human_bytes(self.bytes_resent)} of interrupted uploads"
            )
        return text

    def renamed(self) -> list[FileOutcome]:
        """Outcomes of inputs sent under another name (their base name collided)."""
        return sorted(
            (o for o in self.outcomes.values() if o.path is not None and o.path.name != o.name),
            key=lambda o: o.name,
        )


class TimedCount:
    """Words or segments counted over a run's transcripts, for ``--timestamps``."""

    def __init__(self, requested: str | None) -> None:
        self.kind = requested if requested in ("word", "segment") else None
        self.items = 0
        self.transcripts = 0

    def add(self, outcome: FileOutcome) -> None:
        """Count the timed words or segments of one transcript."""
        if self.kind is None or outcome.result is None:
            return
        result = outcome.result
        self.items += len(result.words if self.kind == "word" else result.segments)
        self.transcripts += 1

    def describe(self) -> str:
        """``1,234 timed words in 10 transcripts``."""
        return f"{self.items:,} timed {self.kind}s in {self.transcripts} transcripts"


# ----------------------------------------------------------------------------- tables


def summary_table(title: str, rows: Sequence[tuple[str, str]]) -> Table:
    """Two columns, label and value."""
    table = Table(
        title=title, title_justify="left", show_header=False, box=None, padding=(0, 2, 0, 2)
    )
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, value in rows:
        table.add_row(label, value)
    return table


def failures_table(failures: Sequence[FileOutcome], limit: int = 50) -> Table:
    """File, state and error of each failed file (the first ``limit``)."""
    table = Table(
        title=f"Failed files ({len(failures)})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("File", overflow="fold")
    table.add_column("State")
    table.add_column("Error", overflow="fold")
    for o in failures[:limit]:
        table.add_row(o.name, o.state or "-", o.error or "-")
    if len(failures) > limit:
        table.add_row(f"... and {len(failures) - limit} more", "", "")
    return table


def renamed_table(renamed: Sequence[FileOutcome]) -> Table:
    """The name each renamed input was sent and written under, and the input itself."""
    table = Table(
        title=f"Renamed inputs ({len(renamed)}): their base names collided",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("Sent and written as", overflow="fold")
    table.add_column("Input", overflow="fold")
    for o in renamed:
        table.add_row(o.name, str(o.path))
    return table


# ----------------------------------------------------------------------------- JSON


def outcome_dict(o: FileOutcome) -> dict[str, Any]:
    """A FileOutcome as plain JSON-ready values (paths as strings, no parsed transcript)."""
    return {
        "name": o.name,
        "ok": o.ok,
        "state": o.state,
        "job_id": o.job_id,
        "path": str(o.path) if o.path is not None else None,
        "output_path": str(o.output_path) if o.output_path is not None else None,
        "error": o.error,
        "resumed": o.resumed,
    }


def print_json(obj: Any) -> None:
    """``obj`` (msgspec Structs, dicts, lists) as indented JSON on stdout."""
    data = msgspec.json.format(msgspec.json.encode(obj), indent=2)
    sys.stdout.write(data.decode() + "\n")
    sys.stdout.flush()
