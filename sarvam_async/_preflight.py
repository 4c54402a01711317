"""A batch call's arguments, checked before its first request.

A careless call must cost nothing: not a request, and never a transcript paid for and then
lost. Each check raises InvalidParameterError naming the argument and what to do:

- :func:`local_paths`: a collection of ``str`` / ``os.PathLike`` paths, never one path
  (a lone string would be read as one path per character), never ``bytes`` or ``None``;
- :func:`one_path`: one such path (an output folder, a journal);
- :func:`distinct_files`: each a readable file, and each file once, however it was named
  (``a.wav``, ``dir/../a.wav``, a symlink to it);
- :func:`check_output_dir`: a folder that exists or can be made, and can be written in;
- :func:`check_output_names`: every input's transcript can be saved under its name;
- :func:`check_polling`: no busy polling (``_constants.MIN_POLL_INTERVAL``), no zero,
  negative or NaN time limit.

The job parameters are checked by building the flow's parameter Struct
(``_JobResource.parameters``), the same step that builds every request's body.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from . import _constants as C
from . import _options
from ._filenames import transcript_path
from .errors import InvalidParameterError, UnsafeFileNameError

__all__ = [
    "Inputs",
    "check_output_dir",
    "check_output_names",
    "check_polling",
    "distinct_files",
    "local_paths",
    "one_path",
]

logger = logging.getLogger("sarvam_async")

_SHOWN = 3
"""Problems quoted in one error message; the rest are counted."""


def _listing(problems: list[str]) -> str:
    more = len(problems) - _SHOWN
    return "; ".join(problems[:_SHOWN]) + (f"; and {more} more" if more > 0 else "")


def local_paths(paths: object, field: str = "paths") -> list[Path]:
    """The caller's ``paths`` as Paths; raises InvalidParameterError for anything else."""
    if isinstance(paths, str | bytes | os.PathLike):
        raise InvalidParameterError(field, "got one path; give a list of paths, such as [path]")
    if not isinstance(paths, Iterable):
        raise InvalidParameterError(field, f"give a list of paths, not {type(paths).__name__}")
    return [_local_path(item, i, field) for i, item in enumerate(paths)]


def _as_path(value: object) -> Path | None:
    """``value`` as a Path if it is a ``str`` or a ``str`` ``os.PathLike``; else None."""
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(text, str) or not text or "\x00" in text:  # "": the current folder
        return None
    return Path(text)


def _not_a_path(value: object) -> str:
    """Why ``value`` is no path, for a message; the value itself is never quoted (it may be
    a whole file's bytes)."""
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    if text == "":
        return "an empty path would mean the current folder"
    if isinstance(text, str):
        return "a path cannot hold a NUL character (no file system takes one)"
    return f"a {type(value).__name__} is not a path"


def one_path(value: object, field: str) -> Path:
    """One ``str`` / ``os.PathLike`` path as a Path; raises InvalidParameterError for
    anything else (None, a number, bytes)."""
    path = _as_path(value)
    if path is None:
        raise InvalidParameterError(
            field, f"{_not_a_path(value)}; give a folder or file path as a str or pathlib.Path"
        )
    return path


def _local_path(item: object, index: int, field: str) -> Path:
    path = _as_path(item)
    if path is None:
        # The item itself is not quoted: it may be a whole file's bytes.
        raise InvalidParameterError(
            f"{field}[{index}]",
            f"{_not_a_path(item)}; give a str or pathlib.Path for each file (decode bytes "
            "paths with os.fsdecode)",
        )
    return path


@dataclass(frozen=True)
class Inputs:
    """Distinct input files: resolved, in the order first given, with their other names."""

    files: list[Path]
    duplicates: dict[Path, tuple[Path, ...]]
    """Resolved file -> the later paths given for it (as given, made absolute)."""


def distinct_files(paths: Iterable[Path], field: str = "paths") -> Inputs:
    """Resolve ``paths`` (symlinks, ``..``), keep each file once; blocking.

    Raises InvalidParameterError naming every path that is not a readable file.
    """
    given: dict[Path, list[Path]] = {}
    problems: list[str] = []
    for path in paths:
        try:
            real = path.resolve(strict=True)
            readable = real.is_file() and os.access(real, os.R_OK)
        except (OSError, RuntimeError):  # missing, a symlink loop, no permission
            readable = False
        if not readable:
            problems.append(str(path))
            continue
        given.setdefault(real, []).append(path.absolute())
    if problems:
        raise InvalidParameterError(
            field, f"not a readable file: {_listing(problems)}; nothing was sent"
        )
    duplicates = {real: tuple(names[1:]) for real, names in given.items() if len(names) > 1}
    if duplicates:
        count = sum(len(d) for d in duplicates.values())
        logger.warning(
            "%d of the paths given name a file given earlier (a symlink, '..'); each file "
            "is sent once and its outcome lists the other paths in `duplicates`",
            count,
        )
    return Inputs(list(given), duplicates)


def check_output_dir(folder: Path) -> None:
    """Create ``folder`` if needed and prove a file can be written in it; blocking.

    Raises InvalidParameterError (field ``output_dir``) naming what is in the way: a file
    where the folder or one of its parents should be, or a folder that is not writable.
    """
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        where = "is a file" if existing == folder else f"cannot be made: {existing} is a file"
        raise InvalidParameterError(
            "output_dir", f"{folder} {where}, not a folder; give a folder for the transcripts"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InvalidParameterError(
            "output_dir",
            f"cannot write in {folder}: {exc.strerror or exc}; give a folder you can write to",
        ) from None


def check_output_names(folder: Path, inputs: Iterable[tuple[str, Path]]) -> None:
    """Refuse inputs whose transcript could not be saved under their API name."""
    problems: list[str] = []
    for name, path in inputs:
        try:
            transcript_path(folder, name)
        except UnsafeFileNameError as exc:
            problems.append(f"{path} ({exc})")
    if problems:
        raise InvalidParameterError(
            "paths",
            f"{len(problems)} input(s) could be transcribed but their transcript not saved, "
            f"so nothing was sent: {_listing(problems)}",
        )


def check_polling(
    poll_interval: object,
    max_interval: object = None,
    timeout: object = None,
    *,
    timeout_field: str = "timeout",
) -> tuple[float, float | None, float | None]:
    """Refuse a busy poll (below the floors in ``_constants``) and a bad time limit; returns
    the three as floats (a Fraction, a Decimal or an int past float's range converted).

    A time limit of zero is refused too: a wait looks at the job over the network, and no
    answer comes in no time (``get_status()`` looks once, on the client's own timeout).
    """
    poll = _at_least("poll_interval", poll_interval, C.MIN_POLL_INTERVAL)
    most = None
    if max_interval is not None:
        most = _at_least("max_interval", max_interval, C.MIN_POLL_MAX_INTERVAL)
    limit = None
    if timeout is not None:
        limit = _at_least(timeout_field, timeout, 0.0, strictly=True)
    return poll, most, limit


def _at_least(field: str, value: object, floor: float, *, strictly: bool = False) -> float:
    try:  # a number of seconds, as everywhere (_options); then this bound
        seconds = _options.seconds(value, field, fail=_options.parameter, zero=True)
    except InvalidParameterError:
        seconds = None
    if seconds is None or seconds < floor or (strictly and seconds == floor):
        bound = "more than" if strictly else "at least"
        raise InvalidParameterError(
            field, f"must be a number of seconds, {bound} {floor:g}; got {value!r}"
        )
    return seconds
