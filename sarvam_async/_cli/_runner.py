"""Exit codes, one-line errors and the Ctrl-C-safe runner of ``sarvam-async``.

Exit codes: 0 success, 1 failure (an API error, or any file that did not transcribe),
2 usage error, 130 Ctrl-C (143 SIGTERM).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Coroutine
from typing import Any

PROG = "sarvam-async"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class UsageError(Exception):
    """A bad option value found while running (exit 2, like argparse's own errors)."""


class Interrupted(BaseException):
    """The command was stopped by a signal; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# ----------------------------------------------------------------------------- runner


def run(coro: Coroutine[Any, Any, int]) -> int:
    """Run ``coro`` in a fresh event loop; Ctrl-C or SIGTERM cancel it cleanly.

    The first signal cancels the command's task, so every ``finally`` and ``async with``
    runs (jobs are cancelled, the manifest is closed, half-downloaded files are removed);
    then :class:`Interrupted` is raised.
    """
    received: list[int] = []

    async def supervised() -> int:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []

        def on_signal(signum: int) -> None:
            received.append(signum)
            if task is not None:
                task.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, on_signal, signum)
            except (NotImplementedError, RuntimeError, ValueError):  # not POSIX / not main
                continue
            installed.append(signum)
        try:
            return await coro
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)

    try:
        return asyncio.run(supervised())
    except asyncio.CancelledError:
        if received:
            raise Interrupted(received[0]) from None
        raise


# ----------------------------------------------------------------------------- errors


def one_line(exc: BaseException) -> str:
    """``exc`` as a single line, with the request id when the error carries one."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    else:
        text = str(exc)
    text = " ".join(text.split()) or type(exc).__name__
    request_id = getattr(exc, "request_id", None)
    if request_id and str(request_id) not in text:
        text += f" [request_id={request_id}]"
    return text


def error(message: str) -> None:
    """Print ``sarvam-async: error: message`` on stderr."""
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()
