"""File names: the plain-name rule, unique names for inputs, and safe output paths.

A name sent to the API must be one plain path component (:func:`is_plain_file_name`).
A transcript is written to ``output_path(folder, name)``, which also refuses what would
leave the folder, or not be a file in it, under Windows rules (a drive letter such as
``C:evil``, a device name such as ``NUL``, a trailing dot or space), whatever the system the
code runs on: the same inputs behave the same everywhere. The emulator keeps its own copy of
the plain-name rule (it imports nothing from the client); a test keeps the two in step.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from .errors import InvalidParameterError, UnsafeFileNameError
from .models import MAX_FILES_PER_JOB

__all__ = ["check_file_names", "is_plain_file_name", "output_path", "unique_names"]

# CON, PRN, AUX, NUL, COM0-9, LPT0-9 (also with superscript digits), with or without an
# extension: Windows opens the device, not a file in the folder.
_WINDOWS_DEVICE = re.compile(r"CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|(COM|LPT)[0-9¹²³]", re.I)


def is_plain_file_name(name: str) -> bool:
    """True when ``name`` is one path component: not blank, ``.`` or ``..``, no separator.

    Control characters (NUL included) are refused too: the API answers 400 for them.
    """
    return (
        bool(name.strip())
        and name not in (".", "..")
        and not any(c in "/\\" or ord(c) < 32 for c in name)
    )


def unsafe_on_windows(name: str) -> str | None:
    """Why a plain ``name`` would not stay a file in its folder on Windows, or None."""
    if ":" in name:
        return "a colon names a drive or a stream on Windows"
    if name[-1] in ". ":
        return "Windows drops a trailing dot or space"
    if _WINDOWS_DEVICE.fullmatch(name.split(".", 1)[0].rstrip(" ")):
        return "a device name on Windows"
    return None


def output_path(folder: Path, name: str) -> Path:
    """``folder / name``, refusing a name that would land anywhere else on POSIX or Windows.

    Raises UnsafeFileNameError (nothing is written) for a name that is not plain, or that
    Windows would read as a drive, a stream or a device.
    """
    if not is_plain_file_name(name):
        raise UnsafeFileNameError(name)
    reason = unsafe_on_windows(name)
    if reason is not None:
        raise UnsafeFileNameError(name, reason)
    return folder / name


def check_file_names(files: list[str], field: str = "files") -> None:
    """Raise InvalidParameterError unless ``files`` is 1-20 unique plain file names."""
    if not files:
        raise InvalidParameterError(field, "give at least one file name")
    if len(files) > MAX_FILES_PER_JOB:
        raise InvalidParameterError(
            field, f"a job takes at most {MAX_FILES_PER_JOB} files, got {len(files)}"
        )
    if len(set(files)) != len(files):
        dupes = sorted({f for f in files if files.count(f) > 1})
        raise InvalidParameterError(field, f"file names must be unique: {dupes}")
    for name in files:
        if not is_plain_file_name(name):
            raise InvalidParameterError(field, f"not a plain file name: {name!r}")


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
