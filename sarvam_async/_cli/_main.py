"""The entry point of ``sarvam-async``: parse, check rich is there, dispatch, exit status.

Nothing here imports rich: ``--help`` and usage errors work without it, and a missing rich is
reported as one line saying how to install it.
"""

from __future__ import annotations

import importlib
import signal
import sys
import traceback
from collections.abc import Sequence

from ..errors import InvalidParameterError, SarvamError
from ._parser import build_parser, validate
from ._runner import (
    EXIT_FAILED,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_USAGE,
    PROG,
    CommandError,
    Interrupted,
    UsageError,
    error,
    one_line,
)

INSTALL_HINT = (
    "pip install -e '.[cli]' in a checkout of sarvam-async "
    "(or pip install 'sarvam-async[cli]' once it is published)"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sarvam-async`` command; returns the exit status."""
    parser, parsers = build_parser()
    args = parser.parse_args(argv)
    validate(args, parsers[args.command])
    try:
        importlib.import_module("rich")
    except ImportError:
        error(f"the command line needs the 'rich' package, which is missing: {INSTALL_HINT}")
        return EXIT_FAILED

    from ._app import dispatch  # imports rich

    as_json = bool(getattr(args, "json", False))
    try:
        return dispatch(args)
    except (Interrupted, KeyboardInterrupt) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        sys.stderr.write(f"{PROG}: interrupted\n")
        return EXIT_SIGTERM if signum == signal.SIGTERM else EXIT_SIGINT
    except (UsageError, InvalidParameterError) as exc:
        error(one_line(exc), as_json=as_json, exc=exc)
        return EXIT_USAGE
    except (SarvamError, CommandError, OSError) as exc:
        error(one_line(exc), as_json=as_json, exc=exc)
        return EXIT_FAILED
    except Exception as exc:
        if args.verbose:
            traceback.print_exc()
        error(
            f"unexpected {type(exc).__name__}: {one_line(exc)} (this is a bug: please report "
            "it, with the output of --verbose)",
            as_json=as_json,
            exc=exc,
        )
        return EXIT_FAILED
