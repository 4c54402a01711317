"""The resume manifest: an append-only, fsynced journal of a fan-out run.

One JSON object per line. ``job`` records a created job and the inputs it carries (keyed by
absolute path, with the name sent to the API); ``started`` records that the job was
started; ``file`` records a finished input (``ok`` or failed, with its output path).
Replaying the journal tells a new run which files are finished, which jobs exist and
which were started, so nothing is submitted or downloaded twice. A torn last line (a crash
mid-write) is ignored; any other unreadable line is a ManifestError.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from ._transport import encoder
from .errors import ManifestError

__all__ = ["Manifest", "ManifestState"]


class _Entry(msgspec.Struct, tag_field="event", omit_defaults=True):
    pass


class JobEntry(_Entry, tag="job"):
    job_id: str
    flow: str
    inputs: dict[str, str]  # API name -> absolute local path


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
            except msgspec.MsgspecError:
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
        return state

    def _truncate(self, size: int) -> None:
        """Cut a torn last line off, so that the next record starts on a line of its own."""
        try:
            os.truncate(self.path, size)
        except OSError as exc:
            raise ManifestError(
                f"cannot repair the torn last line of manifest {self.path}: {exc.strerror}"
            ) from None

    async def record(self, entry: _Line) -> None:
        """Append one entry and fsync it before returning."""
        line = encoder.encode(entry) + b"\n"
        async with self._lock:
            await asyncio.to_thread(self._append, line)

    def _append(self, line: bytes) -> None:
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(self._fd, line)
            os.fsync(self._fd)
        except OSError as exc:
            raise ManifestError(f"cannot write manifest {self.path}: {exc.strerror}") from None

    def close(self) -> None:
        """Close the journal's file descriptor."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
