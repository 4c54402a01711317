"""``sarvam-async demo``: the whole fan-out against an in-process emulator, no key needed.

The audio is synthetic (short sine tones in real RIFF/WAV files, in a temporary folder); the
transcripts are the emulator's synthetic sentences, written where ``--out`` says, else in a
temporary folder. Temporary folders are removed at the end unless ``--keep``.

With faults on, a job can be lost outright (a dropped connection on the call that creates it
is not retried: it may have created a job). Such files are sent again in a further pass over
the same manifest, which is what a user would do with ``transcribe``, for as long as passes
make progress. Like the live API, the emulator's download-files lags behind its status for
``--download-lag`` seconds after each job ends; the summary counts the "not yet" answers
the client waited out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import shutil
import sys
import tempfile
import time
import wave
from array import array
from pathlib import Path

from .. import AsyncSarvam, CallbackConfig, CallbackReceiver, CallbackServer
from .._constants import DEFAULT_TIMEOUT
from ..jobs import FileOutcome
from ..testing import Emulator
from ._callbacks import saved_row
from ._display import (
    UI,
    FanOutProgress,
    failures_table,
    human_bytes,
    plural,
    stats_text,
    summary_table,
)
from ._runner import EXIT_FAILED, EXIT_OK, run

DEMO_KEY = "demo-key"
POLL_INTERVAL = 0.2
MAX_PASSES = 5
SAMPLE_RATE = 16_000
TONE_SECONDS = 0.25


def write_wavs(folder: Path, count: int) -> list[Path]:
    """``count`` mono 16-bit 16 kHz WAV files, each a short tone of its own pitch."""
    n = int(SAMPLE_RATE * TONE_SECONDS)
    paths = []
    for i in range(count):
        freq = 220.0 + 5.0 * (i % 400)
        step = 2.0 * math.pi * freq / SAMPLE_RATE
        # a 10 ms fade in and out, so the tone does not click
        fade = SAMPLE_RATE // 100
        samples = array(
            "h",
            (
                int(9000 * math.sin(step * t) * min(1.0, t / fade, (n - 1 - t) / fade))
                for t in range(n)
            ),
        )
        if sys.byteorder == "big":
            samples.byteswap()  # WAV is little-endian
        path = folder / f"clip-{i + 1:04d}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SAMPLE_RATE)
            w.writeframes(samples.tobytes())
        paths.append(path)
    return paths


def demo(args: argparse.Namespace, ui: UI) -> int:
    """Generate the audio, run the fan-out, print the summary; 0 only if all transcribed.

    The temporary folders (audio, and transcripts unless ``--out``) are removed at the end
    unless ``--keep``.
    """
    with contextlib.ExitStack() as cleanup:

        def scratch(prefix: str) -> Path:
            folder = Path(tempfile.mkdtemp(prefix=prefix))
            if not args.keep:
                cleanup.callback(shutil.rmtree, folder, ignore_errors=True)
            return folder

        out = Path(args.out) if args.out else scratch("sarvam-async-demo-transcripts-")
        folder = scratch("sarvam-async-demo-audio-")
        paths = write_wavs(folder, args.files)
        size = sum(p.stat().st_size for p in paths)
        ui.note(f"Generated {len(paths)} synthetic WAV files ({human_bytes(size)}).")
        code = run(_run(args, ui, paths, out, folder / "demo.manifest"))
        if args.keep:
            ui.line(f"Kept: audio in {folder}, transcripts in {out}")
        elif args.out:
            ui.line(f"Transcripts: {out}")
        else:
            ui.line("Transcripts removed with the demo's temporary folders (--keep keeps them)")
        return code


async def _run(
    args: argparse.Namespace, ui: UI, paths: list[Path], out: Path, manifest: Path
) -> int:
    emulator = Emulator(
        api_key=DEMO_KEY,
        rate_limit=args.rate_limit,
        job_duration=args.job_duration,
        fault_rate=args.fault_rate,
        fault_drop=args.fault_rate > 0,
        seed=args.seed if args.seed is not None else random.randrange(2**32),
        record_requests=False,
        download_lag=args.download_lag,
    )
    hooks = CallbackServer(CallbackReceiver(), path="/sarvam") if args.callbacks else None
    async with (
        emulator as emu,
        AsyncSarvam(
            api_key=DEMO_KEY,
            base_url=emu.url,
            timeout=getattr(args, "request_timeout", None) or DEFAULT_TIMEOUT,
        ) as client,
        hooks or contextlib.nullcontext() as server,
    ):
        callback = CallbackConfig(server.url, server.receiver) if server is not None else None
        faults = (
            f"; {args.fault_rate:.0%} of API calls fail (429, 503 or dropped)"
            if args.fault_rate
            else ""
        )
        ui.note(f"Emulator listening on {emu.url}{faults}.")
        display = FanOutProgress(ui.err, lambda: client.stats, len(paths))
        results: dict[str, FileOutcome] = {}
        passes = 0
        started = time.monotonic()
        try:
            with display:
                while passes < MAX_PASSES:
                    passes += 1
                    before = len(display.transcribed)
                    retry = False
                    stream = client.transcribe_files(
                        paths,
                        output_dir=out,
                        max_concurrent_jobs=args.jobs_concurrency,
                        manifest=manifest,
                        progress=display,
                        poll_interval=POLL_INTERVAL,
                        callback=callback,
                    )
                    async with contextlib.aclosing(stream) as outcomes:
                        async for outcome in outcomes:
                            display.outcome(outcome)
                            results[outcome.name] = outcome
                            retry = retry or not (outcome.ok or outcome.resumed)
                    # Another pass only for files of lost jobs, and only while passes help.
                    if not (display.failed and retry and len(display.transcribed) > before):
                        break
        except asyncio.CancelledError:
            kept = args.out or args.keep  # else the folder goes with the demo's temporary ones
            where = f"are in {out}" if kept else "go with its temporary folders (--keep keeps them)"
            ui.note(
                f"stopped: {len(display.transcribed)} of {len(paths)} files transcribed; "
                f"their transcripts {where}"
            )
            raise
        elapsed = time.monotonic() - started
        cstats = client.stats
        estats = emu.stats
    ok = len(display.transcribed)
    failed = sorted(display.failed.values(), key=lambda o: o.name)
    by_status = estats.by_status
    refused = {
        "429": by_status.get(429, 0),
        "503": by_status.get(503, 0),
        "dropped": by_status.get(0, 0),
    }
    rows = [
        ("Files", f"{len(paths)}: {ok} transcribed, {len(failed)} failed"),
        ("Jobs", f"{len(display.jobs_seen)} (up to {args.jobs_concurrency} at a time)"),
    ]
    if passes > 1:
        rows.append(("Passes", f"{passes} (files of lost jobs resubmitted from the manifest)"))
    rows += [
        ("API calls", f"{cstats.requests:,}"),
    ]
    if args.callbacks:
        jobs = len(display.jobs_seen)
        status_calls = estats.by_route.get("status", 0)
        rows.append(saved_row(status_calls, jobs, args.job_duration, POLL_INTERVAL))
    rows += [
        ("Retries", ui.retries.describe(cstats.retries)),
        (
            "Emulator refused",
            f"{sum(refused.values())} (" + ", ".join(f"{k}: {v}" for k, v in refused.items()) + ")",
        ),
        ("Download lag absorbed", f"{estats.not_ready} 'not yet' answers from download-files"),
        ("Uploaded", display.upload_text()),
        ("Pace", stats_text(cstats, final=True).plain.split(" · ")[-1]),
        ("Wall time", f"{elapsed:.2f} s"),
        ("Throughput", f"{ok / elapsed:.1f} files/s" if elapsed > 0 else "-"),
    ]
    ui.out.print(summary_table("Demo summary", rows))
    if failed:
        ui.out.print(failures_table(failed))
    sample = next((results[n] for n in sorted(results) if results[n].ok), None)
    if sample is not None and sample.result is not None:
        text = sample.result.transcript
        ui.line(f"Sample: {sample.name} -> {text if len(text) <= 60 else text[:57] + '...'}")
    if failed:
        ui.note(f"{plural(len(failed), 'file was', 'files were')} not transcribed (listed above)")
        return EXIT_FAILED
    return EXIT_OK
