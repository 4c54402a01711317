"""Exit codes, one-line errors and the Ctrl-C-safe runner of ``sarvam-async``.

Exit codes: 0 success, 1 failure (an API error, or any file that did not transcribe),
2 usage error (a bad option, or a client the options cannot build: no key, a bad URL),
130 Ctrl-C (143 SIGTERM).
"""

from __future__ import annotations

import asyncio
import json
import re
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


class CommandError(Exception):
    """A failure the command found itself, before or between API calls (exit 1)."""


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


# The library's parameter names, as the command spells them: its errors are reported in
# the command's words (``--base-url``, not ``base_url``).
_CLI_WORDS = {
    "paths": "FILE",
    "output_dir": "--out",
    "job_id": "JOB_ID",
    "api_key": "--api-key",
    "base_url": "--base-url",
    "rate_limit": "--rate-limit",
    "max_concurrent_jobs": "--jobs-concurrency",
    "poll_interval": "--poll-interval",
    "job_timeout": "--job-timeout",
    "manifest": "--manifest",
    "language_code": "--language",
    "model": "--model",
    "mode": "--mode",
    "num_speakers": "--speakers",
    "with_diarization": "--diarize",
    "timestamp_granularity": "--timestamps",
    "with_timestamps": "--timestamps",
    "prompt": "--prompt",
    "input_audio_codec": "--codec",
    "timeout": "--request-timeout",
    "allow_insecure_http": "--allow-insecure-http",
}
# Plain words (``model``) are the library's names only as ``job_parameters.model`` or
# ``model=``; names with an underscore are never English.
_PLAIN = "|".join(k for k in _CLI_WORDS if "_" not in k)
_UNDERSCORED = "|".join(k for k in _CLI_WORDS if "_" in k)
_CODE_WORD = re.compile(
    r"AsyncSarvam\(api_key=\.\.\.\)"
    rf"|job_parameters\.(?P<field>{_PLAIN}|{_UNDERSCORED})\b(?P<fset>=True\b|=)?"
    rf"|\b(?P<name>{_UNDERSCORED})\b(?P<nset>=True\b|=)?"
    rf"|\b(?P<arg>{_PLAIN})(?P<aset>=)"
)


def _option(match: re.Match[str]) -> str:
    name = match.group("field") or match.group("name") or match.group("arg")
    if name is None:
        return _CLI_WORDS["api_key"]
    setting = match.group("fset") or match.group("nset") or match.group("aset") or ""
    glued = setting == "=" and not match.string[match.end() : match.end() + 1].isspace()
    return _CLI_WORDS[name] + (" " if glued else "")


def cli_words(text: str) -> str:
    """``text`` with the library's parameter names replaced by the command's options."""
    return _CODE_WORD.sub(_option, text)


def one_line(exc: BaseException) -> str:
    """``exc`` as a single line in the command's words, with the request id if it has one."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    else:
        text = str(exc)
    field = getattr(exc, "field", None)
    if isinstance(field, str) and text.startswith(f"{field}: "):
        name = field.removeprefix("job_parameters.")
        text = f"{_CLI_WORDS.get(name, field)}: {text[len(field) + 2 :]}"
    text = cli_words(" ".join(text.split())) or type(exc).__name__
    request_id = getattr(exc, "request_id", None)
    if request_id and str(request_id) not in text:
        text += f" [request_id={request_id}]"
    return text


def error(message: str, *, as_json: bool = False, exc: BaseException | None = None) -> None:
    """Print ``sarvam-async: error: message`` on stderr; with ``as_json`` also on stdout.

    The JSON form, ``{"error": {"message", "type", "request_id", "job_id"}}``, is for
    scripts that read a ``--json`` command's stdout.
    """
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()
    if as_json:
        body = {
            "message": message,
            "type": type(exc).__name__ if exc is not None else "UsageError",
            "request_id": getattr(exc, "request_id", None),
            "job_id": getattr(exc, "job_id", None),
        }
        sys.stdout.write(json.dumps({"error": body}, ensure_ascii=False) + "\n")
        sys.stdout.flush()
