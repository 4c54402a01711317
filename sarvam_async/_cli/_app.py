"""The commands: transcribe, status, wait, download, emulator (demo lives in ``_demo``).

Each API command is one coroutine run by ``_runner.run``, so Ctrl-C cancels it cleanly.
Errors are not caught here: ``_main.main`` turns them into one line and an exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import time
from pathlib import Path

from .. import AsyncSarvam, JobState, JobStatusResponse, SpeechToTextJobParameters
from .. import SpeechToTextTranslateJobParameters as TranslateParameters
from .._constants import API_KEY_ENV, BASE_URL_ENV, CLI_CONNECT_CHECK_TIMEOUT, DEFAULT_TIMEOUT
from .._tasks import within
from ..errors import (
    BadRequestError,
    ConfigurationError,
    JobError,
    JobTimeoutError,
    UnprocessableEntityError,
)
from ..jobs import BatchJob
from ._callbacks import listening
from ._display import (
    UI,
    FanOutProgress,
    TimedCount,
    failures_table,
    outcome_dict,
    plural,
    print_json,
    renamed_table,
    stats_text,
    summary_table,
)
from ._parser import fault_statuses
from ._preflight import check_output_folder, check_reachable, collect_inputs
from ._runner import EXIT_FAILED, EXIT_OK, CommandError, UsageError, one_line, run

DEFAULT_EMULATOR_KEY = "test-key"
BASE_URL_HINT = f"--base-url or {BASE_URL_ENV}"


def dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command; returns its exit status."""
    ui = UI(verbose=args.verbose)
    command = args.command
    if command == "demo":
        from ._demo import demo

        return demo(args, ui)
    if command == "emulator":
        return run(emulator(args, ui))
    if command == "transcribe":
        return run(transcribe(args, ui))
    if command == "status":
        return run(status(args, ui))
    if command == "wait":
        return run(wait(args, ui))
    if command == "download":
        return run(download(args, ui))
    raise AssertionError(f"unknown command {command!r}")


def make_client(args: argparse.Namespace, *, rate_limit: float | None = None) -> AsyncSarvam:
    """The client of a real-API command, keyed from ``--api-key`` or the environment."""
    # A client the options cannot build is a usage error (exit 2): nothing was sent, and the
    # command line (or the environment) is what to change.
    key = args.api_key or os.environ.get(API_KEY_ENV)
    if not key:
        raise UsageError(
            f"no API key: pass --api-key KEY or set {API_KEY_ENV} "
            "(keys are on the Sarvam dashboard)"
        )
    try:
        return AsyncSarvam(
            # None: the client reads the variable itself, and names it if the key is bad
            api_key=args.api_key or None,
            base_url=args.base_url,
            rate_limit=rate_limit,
            timeout=getattr(args, "request_timeout", None) or DEFAULT_TIMEOUT,
            allow_insecure_http=getattr(args, "allow_insecure_http", False),
        )
    except ConfigurationError as exc:
        text = str(exc)
        if args.base_url is None:  # the URL came from the environment: name it
            text = text.replace("base_url", BASE_URL_ENV)
        raise UsageError(text) from None


# ----------------------------------------------------------------------------- transcribe


def job_parameters(
    args: argparse.Namespace,
) -> SpeechToTextJobParameters | TranslateParameters:
    """The job parameters named on the command line (InvalidParameterError if bad)."""
    diarize = True if args.diarize else None
    if args.translate:
        return TranslateParameters(
            prompt=args.prompt,
            model=args.model,
            with_diarization=diarize,
            num_speakers=args.speakers,
            input_audio_codec=args.codec,
        )
    return SpeechToTextJobParameters(
        language_code=args.language,
        model=args.model,
        mode=args.mode,
        with_timestamps=True if args.timestamps == "chunk" else None,
        timestamp_granularity=args.timestamps if args.timestamps in ("word", "segment") else None,
        with_diarization=diarize,
        num_speakers=args.speakers,
        input_audio_codec=args.codec,
    )


async def transcribe(args: argparse.Namespace, ui: UI) -> int:
    """``sarvam-async transcribe``: the fan-out against the real API.

    Everything that can be checked without a request is checked first: the job parameters,
    the inputs, the output folder and that something listens at the API's address.
    """
    params = job_parameters(args)
    inputs = collect_inputs(args.files, force=args.force)
    out = Path(args.out)
    paths = inputs.files
    for path, times in inputs.repeated.items():
        ui.note(f"{path} was given {times} times; it is sent once")
    if inputs.skipped:
        ui.note(f"skipped {plural(inputs.skipped, 'file')} in the folders: hidden, or not audio")
    timed = TimedCount(args.timestamps)
    async with (
        make_client(args, rate_limit=args.rate_limit) as client,
        listening(args) as callback,
    ):
        await check_reachable(client.base_url, BASE_URL_HINT)
        check_output_folder(out)  # made only once the key and the address are good
        display = FanOutProgress(ui.err, lambda: client.stats, len(paths))
        started = time.monotonic()
        try:
            with display:
                stream = client.transcribe_files(
                    paths,
                    output_dir=out,
                    job_parameters=params,
                    translate=args.translate,
                    max_concurrent_jobs=args.jobs_concurrency,
                    manifest=args.manifest,
                    progress=display,
                    poll_interval=args.poll_interval,
                    job_timeout=args.job_timeout,
                    callback=callback,
                )
                async with contextlib.aclosing(stream) as outcomes:  # Ctrl-C cancels jobs
                    async for outcome in outcomes:
                        display.outcome(outcome)
                        timed.add(outcome)
        except (BadRequestError, UnprocessableEntityError) as exc:
            raise UsageError(
                "the API refused the job parameters, so the run stopped at its first job "
                f"(no file was uploaded): {one_line(exc)}"
            ) from None
        except asyncio.CancelledError:
            done = len(display.transcribed)
            hint = (
                f"run the same command again to resume from {args.manifest}"
                if args.manifest
                else "pass --manifest PATH next time to make a run resumable"
            )
            ui.note(f"stopped: {done} of {len(paths)} files transcribed into {out}; {hint}")
            raise
        elapsed = time.monotonic() - started
        stats = client.stats
    failed = sorted(display.failed.values(), key=lambda o: o.name)
    ok = len(display.transcribed)
    files = f"{len(paths)}: {ok} transcribed, {len(failed)} failed"
    if display.resumed:
        files += f" ({display.resumed} already done, from the manifest)"
    rows = [
        ("Files", files),
        ("Jobs", f"{len(display.jobs_seen)} (up to {args.jobs_concurrency} at a time)"),
        ("API calls", f"{stats.requests:,}"),
        ("Retries", ui.retries.describe(stats.retries)),
        ("Uploaded", display.upload_text()),
        ("Pace", stats_text(stats, final=True).plain.split(" · ")[-1]),
        ("Wall time", f"{elapsed:.1f} s"),
        ("Transcripts", str(out)),
    ]
    if timed.kind is not None:
        rows.append(("Timestamps", timed.describe()))
    if args.manifest:
        rows.append(("Manifest", str(args.manifest)))
    if callback is not None:
        rows.append(("Callbacks", f"{callback.url} (safety poll every {callback.safety_poll:g} s)"))
    if args.json:
        print_json(
            {
                "jobs": display.jobs_seen,
                "files": [outcome_dict(display.outcomes[n]) for n in sorted(display.outcomes)],
                "summary": dict(rows),
            }
        )
    else:
        ui.out.print(summary_table("Summary", rows))
        renamed = display.renamed()
        if renamed:
            ui.out.print(renamed_table(renamed))
        if failed:
            ui.out.print(failures_table(failed))
    if failed:
        again = (
            "run the same command again to retry what can be retried"
            if args.manifest
            else "re-run with only the failed files, or use --manifest to resume"
        )
        ui.note(f"{len(failed)} of {len(paths)} files failed; {again}")
        return EXIT_FAILED
    return EXIT_OK


# ----------------------------------------------------------------------------- one job


def _status_rows(st: JobStatusResponse) -> list[tuple[str, str]]:
    rows = [
        ("State", st.job_state.value),
        (
            "Files",
            f"{st.total_files} ({st.successful_files_count} succeeded, "
            f"{st.failed_files_count} failed)",
        ),
    ]
    if st.created_at:
        rows.append(("Created", st.created_at))
    if st.updated_at:
        rows.append(("Updated", st.updated_at))
    if st.error_message:
        rows.append(("Error", st.error_message))
    return rows


def never_started(job_id: str) -> CommandError:
    """The error of a command that needs a job to run, about a job nobody started."""
    return CommandError(
        f"job {job_id} was created but never started (state Accepted), so it will never "
        "finish. If it came from 'sarvam-async transcribe --manifest PATH', run that command "
        "again: it uploads what is missing and starts the job. Otherwise transcribe the files "
        "again"
    )


async def _job(
    client: AsyncSarvam,
    args: argparse.Namespace,
    connect_timeout: float = CLI_CONNECT_CHECK_TIMEOUT,
    bound_by: tuple[str, float] | None = None,
) -> BatchJob:
    """The job named on the command line, in the flow ``--translate`` picks.

    Checks first, within ``connect_timeout`` seconds (cut short by the option ``bound_by``
    names, if any), that something listens at the API's address (no request is made).
    """
    await check_reachable(client.base_url, BASE_URL_HINT, connect_timeout, bound_by)
    if args.translate:
        return await client.speech_to_text_translate_job.get_job(args.job_id)
    return await client.speech_to_text_job.get_job(args.job_id)


async def status(args: argparse.Namespace, ui: UI) -> int:
    """``sarvam-async status JOB_ID``."""
    async with make_client(args) as client:
        job = await _job(client, args)
        st = await job.get_status()
        results = await job.get_file_results(st)
    if args.json:
        print_json(st)
        return EXIT_OK
    ui.out.print(summary_table(f"Job {st.job_id}", _status_rows(st)))
    if results:
        from rich.table import Table

        table = Table("File", "State", "Output", "Error", title_justify="left")
        for r in results:
            table.add_row(r.name, r.state or "-", r.output_name or "-", r.error_message or "")
        ui.out.print(table)
    return EXIT_OK


async def wait(args: argparse.Namespace, ui: UI) -> int:
    """``sarvam-async wait JOB_ID``: exit 0 only when the job Completed."""
    # --timeout bounds the whole command: the first status call too, with its retries
    deadline = None if args.timeout is None else time.monotonic() + args.timeout

    def left() -> float:
        return math.inf if deadline is None else max(deadline - time.monotonic(), 0.0)

    async with make_client(args) as client:
        check = min(CLI_CONNECT_CHECK_TIMEOUT, left())
        # the check's time is what --timeout left of itself: name the option, not the rest
        cut = None if check == CLI_CONNECT_CHECK_TIMEOUT else ("--timeout", args.timeout)
        job = await _job(client, args, check, cut)
        try:
            first = await within(job.get_status(), left())
        except asyncio.TimeoutError:
            raise CommandError(
                f"the API gave no status of job {args.job_id} within --timeout "
                f"{args.timeout:g}s; check the network (or --base-url), or raise --timeout"
            ) from None
        if first.job_state == JobState.ACCEPTED:
            raise never_started(args.job_id)
        st = first
        if not first.job_state.is_terminal:  # over already: nothing to wait for
            with ui.spinner(f"waiting for job {args.job_id}"):
                try:
                    st = await job.wait_until_complete(
                        poll_interval=args.poll_interval,
                        timeout=None if deadline is None else left(),
                    )
                except JobTimeoutError as exc:
                    last = first if exc.last_status is None else exc.last_status
                    raise CommandError(
                        f"job {args.job_id} is still {last.job_state.value} as its --timeout "
                        f"{args.timeout:g}s ran out; it keeps running: run 'sarvam-async wait "
                        f"{args.job_id}' again later"
                    ) from None
    if args.json:
        print_json(st)
    else:
        ui.out.print(summary_table(f"Job {st.job_id}", _status_rows(st)))
    if st.job_state != JobState.COMPLETED:
        ui.note(f"job {st.job_id} ended {st.job_state.value}")
        return EXIT_FAILED
    return EXIT_OK


async def download(args: argparse.Namespace, ui: UI) -> int:
    """``sarvam-async download JOB_ID --out DIR``: exit 1 when any file has no transcript."""
    out = Path(args.out)
    async with make_client(args) as client:
        job = await _job(client, args)
        st = await job.get_status()
        if st.job_state == JobState.ACCEPTED:
            raise never_started(args.job_id)
        if not st.job_state.is_terminal:
            raise JobError(
                f"job {args.job_id} is {st.job_state.value} and has no transcripts yet; run "
                f"'sarvam-async wait {args.job_id}' first",
                job_id=args.job_id,
            )
        with ui.spinner(f"downloading the transcripts of job {args.job_id}"):
            outcomes = await job.download_outputs(out, status=st)
    outcomes.sort(key=lambda o: o.name)
    failed = [o for o in outcomes if not o.ok]
    if args.json:
        print_json([outcome_dict(o) for o in outcomes])
    else:
        rows = [
            ("Job", f"{st.job_id} ({st.job_state.value})"),
            ("Files", f"{len(outcomes)}: {len(outcomes) - len(failed)} downloaded"),
            ("Transcripts", str(out)),
        ]
        ui.out.print(summary_table("Download", rows))
        if failed:
            ui.out.print(failures_table(failed))
    return EXIT_FAILED if failed else EXIT_OK


# ----------------------------------------------------------------------------- emulator


async def emulator(args: argparse.Namespace, ui: UI) -> int:
    """``sarvam-async emulator``: serve until Ctrl-C; prints the URL and the key first."""
    from ..testing import Emulator

    rate, statuses = fault_statuses(args.fault_429, args.fault_503)
    key = getattr(args, "api_key", None) or DEFAULT_EMULATOR_KEY
    emu = Emulator(
        api_key=key,
        host=args.host,
        port=args.port,
        rate_limit=args.rate_limit,
        latency=args.latency / 1000.0,
        job_duration=args.job_duration,
        fault_rate=rate,
        fault_statuses=statuses,
        seed=args.seed,
        record_requests=False,  # a long-running server must not grow without bound
        retry_after_ms=args.retry_after_ms,
        download_lag=args.download_lag,
    )
    await emu.start()
    try:
        faults = "none"
        if rate > 0:
            share = statuses.count(429) / len(statuses)
            faults = (
                f"{rate:.1%} of API calls (429: {rate * share:.1%}, 503: {rate * (1 - share):.1%})"
            )
        limit = f"{args.rate_limit:g} requests/min" if args.rate_limit else "none"
        ui.line(f"Sarvam API emulator listening on {emu.url} (Ctrl-C to stop)")
        ui.line(f"  export SARVAM_BASE_URL={emu.url}")
        ui.line(f"  export SARVAM_API_KEY={key}")
        retry_after = "Retry-After and retry-after-ms" if args.retry_after_ms else "Retry-After"
        ui.line(
            f"  rate limit: {limit}; faults: {faults}; latency: {args.latency:g} ms; "
            f"job duration: {args.job_duration:g} s; download lag: {args.download_lag:g} s; "
            f"429/503 carry {retry_after}"
        )
        with contextlib.suppress(asyncio.CancelledError):  # Ctrl-C: the normal way to stop
            await asyncio.Event().wait()
    finally:
        stats = emu.stats
        await emu.close()
        by_status = ", ".join(f"{s or 'dropped'}: {n}" for s, n in sorted(stats.by_status.items()))
        ui.note(f"emulator stopped: {stats.api_requests} API requests ({by_status or 'none'})")
    return EXIT_OK
