"""Callbacks versus polling under a small plan: API calls per job, wall time, result lag.

Each scenario starts the project's emulator in a process of its own (jobs of ``--job-seconds``,
an account limit of ``--rate-limit`` calls a minute, callbacks delivered to loopback) and
transcribes ``--files`` small files with ``transcribe_files`` in this process:

* ``polling``: the default wait (5 s, backing off 1.5x to 30 s);
* ``callbacks``: a ``CallbackConfig`` whose receiver runs here, mounted in a small aiohttp
  app that also notes when each job's callback arrived;
* ``callbacks, N% lost``: the emulator drops that share of callbacks; those jobs finish
  through the safety poll (default 120 s).

Printed per scenario: API calls (every attempt the client sent, the plan's 429 refusals
included) in all and per job, status calls (refused ones included), wall time, and for
callback runs the longest time from a job's callback to its last transcript on disk.

    python -m benchmarks.callbacks                 # 200 files, 30 s jobs, 60 calls/min
    python -m benchmarks.callbacks --files 40 --job-seconds 5   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web

from sarvam_async import AsyncSarvam, CallbackConfig, CallbackReceiver
from sarvam_async.errors import CallbackError
from sarvam_async.jobs import ProgressEvent
from sarvam_async.testing import CallbackFaults, Emulator

KEY = "bench-key"


# ----------------------------------------------------------------------------- the emulator


def _serve(options: dict[str, Any], conn: Connection) -> None:
    """The emulator's process: send its URL, serve, answer one stats request, stop."""

    async def main() -> None:
        async with Emulator(api_key=KEY, record_requests=False, **options) as emu:
            conn.send(emu.url)
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)
            conn.send(msgspec.to_builtins(emu.stats))

    asyncio.run(main())


class EmulatorProcess:
    """The emulator in a fresh process; ``stats()`` ends it."""

    def __init__(self, **options: Any) -> None:
        self._conn, child = mp.Pipe()
        self._proc = mp.get_context("spawn").Process(target=_serve, args=(options, child))
        self._proc.start()
        self.url: str = self._conn.recv()

    def stats(self) -> dict[str, Any]:
        self._conn.send("stats")
        stats: dict[str, Any] = self._conn.recv()
        self._proc.join(10)
        return stats


# ----------------------------------------------------------------------------- a run


@dataclass
class Result:
    name: str
    files_ok: int
    files: int
    jobs: int
    calls: int
    refused: int
    status_calls: int
    seconds: float
    lags: list[float] = field(default_factory=list)


class Hooks:
    """A receiver in a small aiohttp app that notes each job's first callback time."""

    def __init__(self) -> None:
        self.receiver = CallbackReceiver()
        self.arrived: dict[str, float] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        try:  # the receiver's framework-neutral core: body and headers in, an event out
            event = self.receiver.receive(await request.read(), request.headers)
        except CallbackError as exc:
            return web.json_response({"error": str(exc)}, status=exc.status_code)
        self.arrived.setdefault(event.job_id, time.monotonic())
        return web.json_response({"ok": True})

    async def __aenter__(self) -> Hooks:
        app = web.Application()
        app.router.add_post("/sarvam", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/sarvam"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


async def _transcribe(
    name: str, args: argparse.Namespace, paths: list[Path], lost: float
) -> Result:
    emu = EmulatorProcess(
        rate_limit=args.rate_limit,
        job_duration=args.job_seconds,
        callback_faults=CallbackFaults(lost=lost, seed=args.seed),
    )
    downloaded: dict[str, float] = {}
    created: set[str] = set()

    def progress(event: ProgressEvent) -> None:
        if event.kind == "job_created" and event.job_id is not None:
            created.add(event.job_id)
        if event.kind == "file_downloaded" and event.job_id is not None:
            downloaded[event.job_id] = time.monotonic()  # the job's last transcript so far

    ok = 0
    with tempfile.TemporaryDirectory() as out:
        async with (
            AsyncSarvam(api_key=KEY, base_url=emu.url, rate_limit=args.rate_limit) as client,
            Hooks() if name != "polling" else contextlib.nullcontext() as hooks,
        ):
            callback = CallbackConfig(hooks.url, hooks.receiver) if hooks is not None else None
            started = time.monotonic()
            stream = client.transcribe_files(
                paths,
                output_dir=out,
                max_concurrent_jobs=args.jobs,
                progress=progress,
                callback=callback,
            )
            async with contextlib.aclosing(stream) as outcomes:
                async for outcome in outcomes:
                    ok += outcome.ok
            seconds = time.monotonic() - started
            calls = client.stats.requests
            arrived = hooks.arrived if hooks is not None else {}
    stats = emu.stats()
    lags = [downloaded[j] - t for j, t in arrived.items() if j in downloaded]
    refused = stats["by_status"].get(429, 0)
    status = stats["by_route"].get("status", 0)
    return Result(name, ok, len(paths), len(created), calls, refused, status, seconds, lags)


def _row(r: Result) -> str:
    lag = f"{max(r.lags):.2f} s ({len(r.lags)} jobs called back)" if r.lags else "-"
    per_job = r.calls / r.jobs if r.jobs else 0.0
    return (
        f"| {r.name} | {r.files_ok}/{r.files} | {r.jobs} | {r.calls} ({r.refused} refused) | "
        f"{per_job:.1f} | {r.status_calls} | {r.seconds:.1f} | {lag} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--job-seconds", type=float, default=30.0)
    parser.add_argument("--rate-limit", type=float, default=60.0, help="calls per minute")
    parser.add_argument("--jobs", type=int, default=10, help="jobs in flight at once")
    parser.add_argument("--lost", type=float, default=0.2, help="share of callbacks dropped")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(args.files):
            path = Path(tmp) / f"clip-{i:04d}.wav"
            path.write_bytes(b"RIFF" + i.to_bytes(4, "little") * 16)
            paths.append(path)
        scenarios = [("polling", 0.0), ("callbacks", 0.0)]
        if args.lost > 0:
            scenarios.append((f"callbacks, {args.lost:.0%} lost", args.lost))
        results = [asyncio.run(_transcribe(name, args, paths, lost)) for name, lost in scenarios]
    print(
        f"{args.files} files, jobs of {args.job_seconds:g} s, plan of {args.rate_limit:g} "
        f"calls/min, {args.jobs} jobs in flight\n"
    )
    print(
        "| wait | files done | jobs | API calls | calls/job | status calls | wall s | "
        "callback -> last transcript (max) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(_row(r))
    polling, callbacks = results[0], results[1]
    print(
        f"\ncallbacks: {polling.seconds / callbacks.seconds:.2f}x faster, "
        f"{polling.calls - callbacks.calls} API calls saved"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
