"""File names: the plain-name rule, unique names for inputs, and safe output paths.

A name sent to the API must be one plain path component (:func:`is_plain_file_name`).
Input ``name``'s transcript is written to ``transcript_path(folder, name)``, through a
temporary twin named by :func:`temporary_name`. :func:`output_path` refuses what would
leave the folder, or not be a file in it, under Windows rules (a drive letter such as
``C:evil``, a device name such as ``NUL``, a trailing dot or space), whatever the system the
code runs on: the same inputs behave the same everywhere. It also refuses a name whose
temporary twin would be longer than a file name may be (255 bytes). The emulator keeps its
own copy of the plain-name rule (it imports nothing from the client); a test keeps the two
in step.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from . import _constants as C
from .errors import InvalidParameterError, UnsafeFileNameError
from .models import MAX_FILES_PER_JOB

__all__ = [
    "check_file_names",
    "is_plain_file_name",
    "output_path",
    "temporary_name",
    "transcript_path",
    "unique_names",
]

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


def is_utf8(text: str) -> bool:
    """True unless ``text`` holds a lone surrogate (``os.fsdecode`` of undecodable bytes):
    JSON, URLs and the API carry only what encodes as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unsafe_on_windows(name: str) -> str | None:
    """Why a plain ``name`` would not stay a file in its folder on Windows, or None."""
    if ":" in name:
        return "a colon names a drive or a stream on Windows"
    if name[-1] in ". ":
        return "Windows drops a trailing dot or space"
    if _WINDOWS_DEVICE.fullmatch(name.split(".", 1)[0].rstrip(" ")):
        return "a device name on Windows"
    return None


def temporary_name(name: str, tag: str | None = None) -> str:
    """The hidden name output ``name`` is downloaded under before its rename into place.

    ``tag`` (random hex when not given) keeps two downloads of one output apart.
    """
    tag = tag if tag is not None else secrets.token_hex(C.PART_TAG_LENGTH // 2)
    return f".{name}.{tag}.part"


def output_path(folder: Path, name: str) -> Path:
    """``folder / name``, refusing a name that would land anywhere else on POSIX or Windows.

    Raises UnsafeFileNameError (nothing is written) for a name that is not plain, that
    Windows would read as a drive, a stream or a device, or whose temporary twin would be
    longer than ``MAX_FILE_NAME_BYTES``.
    """
    if not is_plain_file_name(name):
        raise UnsafeFileNameError(name)
    reason = unsafe_on_windows(name)
    if reason is not None:
        raise UnsafeFileNameError(name, reason)
    size = len(temporary_name(name, "0" * C.PART_TAG_LENGTH).encode("utf-8", "surrogateescape"))
    if size > C.MAX_FILE_NAME_BYTES:
        raise UnsafeFileNameError(
            name,
            f"with its temporary suffix it is {size} bytes long, more than the "
            f"{C.MAX_FILE_NAME_BYTES} a file name may have",
        )
    return folder / name


def transcript_path(folder: Path, name: str) -> Path:
    """Where input ``name``'s transcript goes (``<folder>/<name>.json``); see ``output_path``."""
    return output_path(folder, f"{name}.json")


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
    for index, name in enumerate(files):
        if not isinstance(name, str):
            raise InvalidParameterError(
                f"{field}[{index}]", f"a {type(name).__name__} is not a file name; give str names"
            )
        if not is_plain_file_name(name):
            raise InvalidParameterError(field, f"not a plain file name: {name!r}")
        if not is_utf8(name):
            raise InvalidParameterError(
                field,
                f"{name!r} is not valid Unicode (a name from bytes the file system could not "
                "decode): rename the file, or pass names=",
            )


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
