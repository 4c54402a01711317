"""What a command checks before its first request: the inputs, the output folder, the URL.

Nothing here sends an API request, so a mistake found here costs nothing: ``transcribe``
refuses every problem with its inputs in one message (exit 2) before anything is uploaded,
and a command whose ``--base-url`` has nothing listening fails within seconds instead of
retrying for minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .._constants import CLI_CONNECT_CHECK_TIMEOUT
from .._preflight import check_output_dir
from .._storage import AUDIO_EXTENSIONS
from .._tasks import within
from ..errors import InvalidParameterError
from ._runner import CommandError, UsageError, one_line

__all__ = ["Inputs", "check_output_folder", "check_reachable", "collect_inputs"]

_SHOWN_PER_PROBLEM = 10  # names listed per kind of problem; the rest are counted


@dataclass
class Inputs:
    """The files a run will send, and what the command line said that it will not send."""

    files: list[Path] = field(default_factory=list)
    repeated: dict[Path, int] = field(default_factory=dict)  # resolved path -> times given
    skipped: int = 0  # files of folders that are not audio, or hidden


def collect_inputs(arguments: Sequence[str], *, force: bool = False) -> Inputs:
    """The audio files named by ``arguments`` (files and folders), each once.

    A folder gives its audio files, recursively, in name order; hidden files and folders
    (``.DS_Store``, ``.git``) and files of other types are skipped. A file named directly
    must exist, be readable, not be empty, and have an extension the API documents as
    audio (``force`` lifts the last rule only). A file given twice, under any spelling,
    is sent once. Raises UsageError naming every problem at once.
    """
    inputs = Inputs()
    seen: dict[Path, int] = {}
    problems: dict[str, list[str]] = {}

    def add(path: Path, *, named: bool) -> None:
        why = _problem(path, named=named, force=force)
        if why is not None:
            problems.setdefault(why, []).append(str(path))
            return
        key = path.resolve()
        if key in seen:
            seen[key] += 1
            return
        seen[key] = 1
        inputs.files.append(path)

    for arg in arguments:
        path = Path(arg)
        if path.is_dir():
            found = 0
            for entry, audio in _walk(path):
                if audio and entry.stat().st_size > 0:
                    add(entry, named=False)
                    found += 1
                else:
                    inputs.skipped += 1
            if not found:
                problems.setdefault("folders without audio files", []).append(
                    f"{arg} (types: {_extensions()})"
                )
        else:
            add(path, named=True)
    if problems:
        count = sum(len(v) for v in problems.values())
        parts = [f"{why}: {_names(names)}" for why, names in problems.items()]
        noun = "input" if count == 1 else "inputs"
        raise UsageError(f"{count} {noun} cannot be sent, so nothing was: " + "; ".join(parts))
    inputs.repeated = {p: n for p, n in seen.items() if n > 1}
    return inputs


def _problem(path: Path, *, named: bool, force: bool) -> str | None:
    """Why ``path`` cannot be sent (a short label shared by files alike), or None."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return "not found"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if not os.access(path, os.R_OK):
        return "not readable (permissions)"
    if named and not force and path.suffix.lower() not in AUDIO_EXTENSIONS:
        return (
            f"not a format the API documents ({_extensions()}; --force sends other "
            "extensions anyway)"
        )
    if info.st_size == 0:
        return "empty (0 bytes)"
    return None


def _walk(folder: Path) -> Iterator[tuple[Path, bool]]:
    """Every file under ``folder``, sorted, with whether to send it (a non-hidden audio file).

    Hidden folders are not entered.
    """
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root, name)
            audio = path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file()
            yield path, audio and not name.startswith(".")


def _extensions() -> str:
    return " ".join(sorted(AUDIO_EXTENSIONS))


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN_PER_PROBLEM])
    if len(names) > _SHOWN_PER_PROBLEM:
        shown += f" and {len(names) - _SHOWN_PER_PROBLEM} more"
    return shown


def check_output_folder(folder: Path) -> None:
    """Make sure paid results have somewhere to go, before the first request.

    The library's own check of ``output_dir``; its typed error is reported in the command's
    words (``--out``).
    """
    try:
        check_output_dir(folder)
    except InvalidParameterError as exc:
        raise UsageError(one_line(exc)) from None


async def check_reachable(
    base_url: str,
    option_hint: str,
    timeout: float = CLI_CONNECT_CHECK_TIMEOUT,
    bound_by: tuple[str, float] | None = None,
) -> None:
    """Open and close one TCP connection to ``base_url``'s host; CommandError if none.

    A refused connection on a run's first call is almost always a wrong URL, and the
    client's retry policy would spend minutes on it: this says so within seconds
    (``timeout``, for a host that drops the attempt). ``bound_by`` is the option that cut
    ``timeout`` short and its value, ``("--timeout", 1.0)``, for the message. It sends
    nothing (no key, no request) and costs no API call.
    """
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    where = f"{parts.scheme}://{host}:{port}"
    try:
        _, writer = await within(asyncio.open_connection(host, port), timeout)
    except asyncio.TimeoutError:
        if bound_by is None:
            within_, remedy = f"{timeout:.2g}s", ""
        else:
            within_, remedy = f"{bound_by[0]} {bound_by[1]:g}s", f", or raise {bound_by[0]}"
        raise CommandError(
            f"cannot reach the API at {where}: no answer within {within_}; check "
            f"{option_hint} and the network{remedy}"
        ) from None
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in reason:
            reason = "connection refused, nothing is listening there"
        raise CommandError(
            f"cannot reach the API at {where}: {reason.lower()}; check {option_hint}"
        ) from None
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
