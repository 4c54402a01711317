"""Callbacks on the command line: ``--callback-url`` / ``--callback-listen``, and the demo's
estimate of the status calls polling would have made.

The receiver runs in this process (a :class:`CallbackServer` on ``--callback-listen``,
serving the path of ``--callback-url``) with a fresh token per run; the URL is what the API
calls, so it must reach this machine (directly, or through a proxy that forwards the path).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from .. import CallbackConfig, CallbackReceiver, CallbackServer
from .._constants import CALLBACK_SAFETY_POLL, POLL_MAX_INTERVAL
from ..errors import ConfigurationError

__all__ = ["add_callback_options", "check_callback_options", "listening", "polls_needed"]


def _listen_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT such as 0.0.0.0:8080, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def add_callback_options(parser: argparse.ArgumentParser) -> None:
    """The transcribe command's callback options, in a group of their own."""
    group = parser.add_argument_group("callbacks (instead of polling: about five API calls a job)")
    group.add_argument(
        "--callback-url",
        metavar="URL",
        help="public URL the API calls when a job ends (needs --callback-listen)",
    )
    group.add_argument(
        "--callback-listen",
        type=_listen_address,
        metavar="HOST:PORT",
        help="where this process listens for callbacks; it serves the path of --callback-url",
    )
    group.add_argument(
        "--callback-safety-poll",
        type=_seconds,
        default=CALLBACK_SAFETY_POLL,
        metavar="S",
        help="seconds between status checks in case a callback is lost (default %(default)g)",
    )


def check_callback_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Exit 2 unless the callback options are given together and the URL is http(s)."""
    url, listen = getattr(args, "callback_url", None), getattr(args, "callback_listen", None)
    if url is None and listen is None:
        return
    if url is None or listen is None:
        parser.error("--callback-url and --callback-listen go together")
    try:  # the library's check, in the command's words
        CallbackConfig(url, safety_poll=getattr(args, "callback_safety_poll", CALLBACK_SAFETY_POLL))
    except ConfigurationError as exc:
        text = str(exc).replace("callback url", "--callback-url")
        parser.error(text.replace("safety_poll", "--callback-safety-poll"))


@contextlib.asynccontextmanager
async def listening(args: argparse.Namespace) -> AsyncIterator[CallbackConfig | None]:
    """The run's callback configuration, its receiver served meanwhile (None: polling)."""
    url: str | None = getattr(args, "callback_url", None)
    if url is None:
        yield None
        return
    host, port = args.callback_listen
    receiver = CallbackReceiver()  # a fresh token per run
    path = urlsplit(url).path or "/"
    async with CallbackServer(receiver, host=host, port=port, path=path):
        yield CallbackConfig(url, receiver, safety_poll=args.callback_safety_poll)


def polls_needed(duration: float, first: float, cap: float = POLL_MAX_INTERVAL) -> int:
    """Status calls polling makes on a job of ``duration`` s: one at once, then 1.5x apart.

    The middle of the jitter is assumed: an estimate for comparisons, not a count.
    """
    polls, elapsed, interval = 1, 0.0, first
    while elapsed < duration:
        elapsed += interval
        interval = min(cap, interval * 1.5)
        polls += 1
    return polls


def saved_row(status_calls: int, jobs: int, duration: float, first: float) -> tuple[str, Any]:
    """The demo's summary row: status calls made, and what polling would have made."""
    polling = jobs * polls_needed(duration, first)
    saved = polling - status_calls
    return (
        "Status calls",
        f"{status_calls} with callbacks; polling every {first:g} s rising to "
        f"{POLL_MAX_INTERVAL:g} s would have made about {polling} ({saved} saved)",
    )
