"""The ``sarvam-async`` argument parser: commands, options, their checks and help.

Nothing here imports rich, so ``--help`` and usage errors work without it.
"""

from __future__ import annotations

import argparse
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

from .. import __version__
from .._constants import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_TIMEOUT,
    DEMO_MAX_FILES,
    JOB_RETRIES,
    JOB_RETRY_PAUSE,
    MAX_CONCURRENT_JOBS,
)
from ._callbacks import add_callback_options, check_callback_options
from ._runner import PROG


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _demo_files(text: str) -> int:
    value = _positive_int(text)
    if value > DEMO_MAX_FILES:
        raise argparse.ArgumentTypeError(f"at most {DEMO_MAX_FILES:,} files, got {value:,}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):  # NaN compares false to everything; inf never ends
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _positive(text: str) -> float:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def _probability(text: str) -> float:
    value = _non_negative(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"is a probability: between 0 and 1, got {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535 (0: any free port)")
    return value


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=30)


def _globals(
    parser: argparse.ArgumentParser, *, top: bool, client: bool = True, account: bool = True
) -> None:
    """The global options; on subcommands too (defaults suppressed) so either place works.

    ``account=False`` (the demo) hides the options that name a real account from its help;
    they are still parsed, so that ``validate`` can say why they do not apply.
    """
    default: Any = None if top else argparse.SUPPRESS

    def shown(text: str) -> str:
        return text if account else argparse.SUPPRESS

    group = parser.add_argument_group("global options")
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="show the library's log (retries, polling); secrets are never logged",
    )
    if not client:
        return
    group.add_argument(
        "--base-url",
        metavar="URL",
        default=default,
        help=shown(f"API base URL (default: ${BASE_URL_ENV}, else https://api.sarvam.ai)"),
    )
    group.add_argument(
        "--api-key",
        metavar="KEY",
        default=default,
        help=shown(f"API subscription key (default: ${API_KEY_ENV})"),
    )
    group.add_argument(
        "--request-timeout",
        metavar="S",
        type=_positive,
        default=default,
        help=f"seconds one API call may take before it is retried (default {DEFAULT_TIMEOUT:g})",
    )
    group.add_argument(
        "--allow-insecure-http",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help=shown(
            "allow a plain http:// --base-url that is not this machine (keys travel in clear)"
        ),
    )


def _job_command(sub: Any, name: str, help_text: str, description: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        name, help=help_text, description=description, formatter_class=_Formatter
    )
    p.add_argument("job_id", metavar="JOB_ID", help="the job id printed when the job was created")
    p.add_argument(
        "--translate",
        action="store_true",
        help="the job belongs to the speech-to-text-translate flow",
    )
    p.add_argument("--json", action="store_true", help="print JSON on stdout, for scripts")
    return p


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser and its subcommand parsers by name."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=_Formatter,
        description="Transcribe audio in bulk with Sarvam AI's speech-to-text batch API.",
        epilog=(
            "examples:\n"
            f"  {PROG} demo                       # no key, no network: a local emulator\n"
            f"  {PROG} transcribe *.wav --out transcripts --language hi-IN "
            "--manifest run.manifest\n"
            f"  {PROG} wait JOB_ID --json\n\n"
            "exit codes: 0 ok, 1 failed (API error or any file not transcribed), "
            "2 usage error, 130 interrupted"
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _globals(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parsers: dict[str, argparse.ArgumentParser] = {}

    # demo ---------------------------------------------------------------------------------
    p = sub.add_parser(
        "demo",
        help="transcribe synthetic audio against a local emulator (no key, no network)",
        formatter_class=_Formatter,
        description=(
            "Start the API emulator in-process on loopback, generate N short WAV files and\n"
            "transcribe them all through the public API with live progress, then print a\n"
            "summary. Needs no API key and no network. Exit status 0 only if every file was\n"
            "transcribed. With --fault-rate the emulator answers that share of API calls with\n"
            "429, 503 or a dropped connection; the client absorbs them (retries, adaptive\n"
            "pacing) and files of a job lost to a fault are resubmitted from the manifest."
        ),
    )
    p.add_argument(
        "--files",
        type=_demo_files,
        default=200,
        metavar="N",
        help=f"default 200, at most {DEMO_MAX_FILES:,}",
    )
    p.add_argument(
        "--jobs-concurrency",
        type=_positive_int,
        default=MAX_CONCURRENT_JOBS,
        metavar="K",
        help="jobs (of up to 20 files) in flight at once (default %(default)s)",
    )
    p.add_argument(
        "--fault-rate",
        type=_probability,
        default=0.0,
        metavar="R",
        help=(
            "share of API calls answered 429/503 or dropped, 0..1 (default 0); try 0.2. "
            "Each refused call waits its Retry-After (a second) and a job whose calls ran "
            f"out of retries waits {JOB_RETRY_PAUSE:g}-{JOB_RETRY_PAUSE * JOB_RETRIES:g} "
            "s for another go, so rates above ~0.3 can make the demo take minutes"
        ),
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        help="where to write the transcripts (default: a temporary folder, removed at the end)",
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary audio and transcript folders, and print where they are",
    )
    p.add_argument(
        "--job-duration",
        type=_non_negative,
        default=1.0,
        metavar="S",
        help="seconds each emulated job runs (default 1)",
    )
    p.add_argument(
        "--rate-limit",
        type=_positive,
        default=None,
        metavar="RPM",
        help="the emulator's account rate limit in requests per minute (default: none)",
    )
    p.add_argument(
        "--download-lag",
        type=_non_negative,
        default=0.5,
        metavar="S",
        help=(
            "seconds after a job ends during which the emulator's download-files still "
            "says 'not in COMPLETED state', as the live API does (default 0.5)"
        ),
    )
    p.add_argument(
        "--seed", type=int, default=None, help="seed of the random faults (default: random)"
    )
    p.add_argument(
        "--callbacks",
        action="store_true",
        help="wait on job callbacks (a receiver on loopback) instead of polling",
    )
    _globals(p, top=False, account=False)
    parsers["demo"] = p

    # transcribe ---------------------------------------------------------------------------
    p = sub.add_parser(
        "transcribe",
        help="transcribe audio files (resumable with --manifest)",
        formatter_class=_Formatter,
        description=(
            "Transcribe FILES with the batch API: jobs of up to 20 files, several at once,\n"
            "one <name>.json per input in --out. The inputs (audio formats the API documents,\n"
            "not empty) and --out are checked before anything is sent; each job id is printed\n"
            "as the job is created. With --manifest every step is journaled:\n"
            "run the same command again after an interruption or a failure and finished\n"
            "files are kept, created jobs are re-attached (never submitted twice) and the\n"
            "rest is sent again. Exit status 1 when any file failed (they are listed)."
        ),
    )
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="audio files, or folders (their audio files, recursively; hidden ones skipped)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the transcripts")
    p.add_argument(
        "--force",
        action="store_true",
        help="send files whose extension is not an audio format the API documents",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the job ids, every file's outcome and the summary as JSON on stdout",
    )
    params = p.add_argument_group("job parameters")
    params.add_argument(
        "--language", metavar="CODE", help="e.g. hi-IN, ta-IN, en-IN; 'unknown' to detect"
    )
    params.add_argument(
        "--model", metavar="MODEL", help="saaras:v3 (the API's default) or saaras:v4 (the latest)"
    )
    params.add_argument(
        "--mode",
        metavar="MODE",
        help="transcribe, translate, verbatim, translit or codemix (saaras:v3/v4)",
    )
    params.add_argument("--diarize", action="store_true", help="label speakers")
    params.add_argument(
        "--speakers", type=_positive_int, metavar="N", help="number of speakers (with --diarize)"
    )
    params.add_argument(
        "--timestamps",
        nargs="?",
        const="chunk",
        choices=("chunk", "word", "segment"),
        metavar="word|segment",
        help=(
            "'word': one timestamp per word (saaras:v4); 'segment': one per chunk of audio "
            "(saaras:v3/v4); alone: the older chunk-level timestamps"
        ),
    )
    params.add_argument(
        "--translate",
        action="store_true",
        help="use the speech-to-text-translate flow (English output)",
    )
    params.add_argument("--prompt", metavar="TEXT", help="context prompt (with --translate)")
    params.add_argument(
        "--codec", metavar="CODEC", help="input audio codec; only needed for raw PCM"
    )
    run_opts = p.add_argument_group("run options")
    run_opts.add_argument(
        "--manifest", metavar="PATH", help="journal file that makes the run resumable"
    )
    run_opts.add_argument(
        "--jobs-concurrency",
        type=_positive_int,
        default=MAX_CONCURRENT_JOBS,
        metavar="K",
        help="jobs in flight at once (default %(default)s)",
    )
    run_opts.add_argument(
        "--poll-interval",
        type=_positive,
        default=5.0,
        metavar="S",
        help="first pause between status polls; backs off to 30 s (default 5)",
    )
    run_opts.add_argument(
        "--job-timeout",
        type=_positive,
        metavar="S",
        help="give up waiting for a job after S seconds (default: wait)",
    )
    run_opts.add_argument(
        "--rate-limit",
        type=_positive,
        metavar="RPM",
        help="your plan's requests per minute (default: learned from the API's answers)",
    )
    add_callback_options(p)
    _globals(p, top=False)
    parsers["transcribe"] = p

    # status / wait / download -------------------------------------------------------------
    p = _job_command(sub, "status", "show a job's state", "Show a job's state and its files.")
    _globals(p, top=False)
    parsers["status"] = p

    p = _job_command(
        sub,
        "wait",
        "wait until a job has finished",
        "Poll a job until it has finished and show the outcome. Exit status 0 when the job\n"
        "Completed, 1 when it Failed or PartiallyCompleted, or on --timeout.",
    )
    p.add_argument("--timeout", type=_positive, metavar="S", help="stop waiting after S seconds")
    p.add_argument(
        "--poll-interval",
        type=_positive,
        default=5.0,
        metavar="S",
        help="first pause between polls; backs off to 30 s (default 5)",
    )
    _globals(p, top=False)
    parsers["wait"] = p

    p = _job_command(
        sub,
        "download",
        "download a finished job's transcripts",
        "Download every transcript of a finished job as <input name>.json in --out.\n"
        "Exit status 1 when any file of the job has no transcript.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the transcripts")
    _globals(p, top=False)
    parsers["download"] = p

    # emulator -----------------------------------------------------------------------------
    p = sub.add_parser(
        "emulator",
        help="run the local API emulator as a server",
        formatter_class=_Formatter,
        description=(
            "Serve the API emulator until Ctrl-C: point SARVAM_BASE_URL at it and use\n"
            "its key. It prints both. Jobs live in memory; transcripts are synthetic.\n\n"
            "Faults: --fault-429 X and --fault-503 Y are probabilities per API call. The\n"
            "emulator draws one fault with probability X+Y (at most 1), and picks its status\n"
            "from a list weighted X:Y (the ratio rounded to a fraction of denominator at\n"
            "most 20: 0.1 and 0.05 give 429, 429, 503). Faulted and rate-limited answers\n"
            "carry Retry-After in whole seconds, as the live API sends; --retry-after-ms adds\n"
            "the precise retry-after-ms header too. Storage (presigned URL) traffic is never\n"
            "faulted."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port", type=_port, default=0, metavar="P", help="port (default 0: any free port)"
    )
    p.add_argument(
        "--api-key",
        metavar="K",
        default=argparse.SUPPRESS,
        help="the key the emulator accepts (default: test-key)",
    )
    p.add_argument(
        "--rate-limit",
        type=_positive,
        metavar="R",
        help="account rate limit, requests per minute (429 beyond it; default: none)",
    )
    p.add_argument(
        "--fault-429",
        type=_probability,
        default=0.0,
        metavar="X",
        help="probability that an API call is answered 429 (default 0)",
    )
    p.add_argument(
        "--fault-503",
        type=_probability,
        default=0.0,
        metavar="Y",
        help="probability that an API call is answered 503 (default 0)",
    )
    p.add_argument(
        "--latency",
        type=_non_negative,
        default=0.0,
        metavar="MS",
        help="milliseconds before each API answer (default 0)",
    )
    p.add_argument(
        "--job-duration",
        type=_non_negative,
        default=0.0,
        metavar="S",
        help="seconds from a job's start to its end (default 0)",
    )
    p.add_argument(
        "--retry-after-ms",
        action="store_true",
        help="also send retry-after-ms (milliseconds) on 429/503, which the live API does not",
    )
    p.add_argument(
        "--download-lag",
        type=_non_negative,
        default=0.0,
        metavar="S",
        help="seconds after a job ends that download-files still says 'not yet' (default 0)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random faults")
    _globals(p, top=False, client=False)
    parsers["emulator"] = p
    return parser, parsers


def fault_statuses(p429: float, p503: float) -> tuple[float, tuple[int, ...]]:
    """The emulator's ``fault_rate`` and weighted ``fault_statuses`` for X 429s and Y 503s."""
    rate = p429 + p503
    if rate <= 0:
        return 0.0, (429, 503)
    share = Fraction(p429 / rate).limit_denominator(20)
    n429, total = share.numerator, share.denominator
    return rate, (429,) * n429 + (503,) * (total - n429)


def validate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Option combinations argparse cannot express; exits 2 with the command's usage."""
    # An empty path is the current folder: '' from an unset variable would transcribe, or
    # write into, whatever folder the command runs in.
    files = getattr(args, "files", None)  # transcribe's FILEs (the demo's is a count)
    if isinstance(files, list) and "" in files:
        parser.error("FILE: an empty path (an unset variable?) would mean the current folder")
    manifest = getattr(args, "manifest", None)
    if manifest and Path(manifest).is_dir():
        parser.error(f"--manifest: {manifest} is a folder; give the journal's file path")
    for flag, dest in (("--out", "out"), ("--manifest", "manifest")):
        if getattr(args, dest, None) == "":
            parser.error(
                f"{flag}: an empty path (an unset variable?) would mean the current folder"
            )
    if args.command == "transcribe":
        if args.speakers is not None and not args.diarize:
            parser.error("--speakers needs --diarize")
        if args.translate:
            given = [
                flag
                for flag, value in (
                    ("--language", args.language),
                    ("--mode", args.mode),
                    ("--timestamps", args.timestamps),
                )
                if value
            ]
            if given:
                parser.error(f"{', '.join(given)} cannot be used with --translate")
        elif args.prompt is not None:
            parser.error("--prompt needs --translate")
        check_callback_options(args, parser)
    elif args.command == "demo":
        # the demo talks only to its own emulator: a real URL or key given here would be
        # silently unused, and the user would think the demo had tried their account
        given = [
            flag
            for flag, dest in (("--base-url", "base_url"), ("--api-key", "api_key"))
            if getattr(args, dest, None) is not None
        ]
        if getattr(args, "allow_insecure_http", False):
            given.append("--allow-insecure-http")
        if given:
            parser.error(
                f"{', '.join(given)}: demo runs its own emulator in this process (no key, no "
                "network); to try an account, use transcribe, status, wait or download"
            )
    elif args.command == "emulator":
        if getattr(args, "base_url", None) is not None:  # given before the command
            parser.error("--base-url: the emulator serves on --host/--port; it calls no API")
        if args.fault_429 + args.fault_503 > 1:
            parser.error("--fault-429 plus --fault-503 must not exceed 1")
