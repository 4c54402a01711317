"""The batch workflow against a rate-limited Emulator: one client, then several processes.

    python -m benchmarks.fanout                  # both parts
    python -m benchmarks.fanout --part single    # 1,000 files, one client
    python -m benchmarks.fanout --part multi     # 4 worker processes x 250 files, one account
    python -m benchmarks.fanout --part single --files 100 --rate-limit 0 --latency 0.03 \
        --job-duration 0.05 --poll-interval 0.05 --pacing off   # no limit, pacing off

The Emulator runs in its own process with an account-wide rate limit (requests per minute),
an answer latency and a job duration. Clients use the defaults (adaptive limiter learning
the limit, no ``rate_limit=`` given) and ``transcribe_files``. Reported: wall time, files/s,
API requests/s, the share of 429 answers, and the limit's utilisation: accepted API
requests per minute over the busy period (first call to last outcome) divided by the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing as mp
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sarvam_async.models import MAX_FILES_PER_JOB

from ._server import API_KEY, ServerConfig, ServerProcess

STORM_CONCURRENCY = 1
"""Calls in flight per worker in a status storm: each worker asks again as soon as it is
answered, 20 calls/s with 50 ms answers, so four workers ask twice the highest plan
benchmarked. More in flight would reserve slots in lumps (eight at once per worker at the
start) and the finish spread would show the lumps, not the limiter's turns."""
_REQUEST_DETAILS = re.compile(r" \[request_id=[^\]]*\]| The server asked to wait [0-9.]+s\.")


@dataclass(frozen=True)
class Work:
    url: str
    files: int
    tag: str
    start_at: float  # time.time() at which to begin (so workers start together)
    poll_interval: float
    adaptive: bool = True
    redis_url: str | None = None  # share one budget through this Redis (RedisRateLimiter)
    plan: float | None = None  # the shared limiter's rate_limit; None: it learns the rate
    give_up_at: float | None = None  # time.time() after which the worker stops waiting
    calls: int = 0  # > 0: instead of files, this many status calls on one job (a storm)


def _make_inputs(folder: Path, n: int, tag: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"{tag}-{i:04d}.wav"
        p.write_bytes(b"RIFF" + i.to_bytes(4, "little") + tag.encode() + bytes(1024))
        paths.append(p)
    return paths


async def _transcribe(work: Work, root: Path) -> dict[str, Any]:
    from sarvam_async import AsyncSarvam, RedisRateLimiter

    paths = [] if work.calls else _make_inputs(root / "in", work.files, work.tag)
    out = root / "out"
    await asyncio.sleep(max(0.0, work.start_at - time.time()))
    ok: list[str] = []
    failed: list[str] = []
    errors: dict[str, int] = {}
    jobs: set[str] = set()
    shared = None
    if work.redis_url is not None:
        shared = RedisRateLimiter(work.redis_url, rate_limit=work.plan)
    t0 = time.perf_counter()
    started_at = time.time()
    async with contextlib.AsyncExitStack() as stack:
        if shared is not None:
            await stack.enter_async_context(shared)
        client = await stack.enter_async_context(
            AsyncSarvam(
                api_key=API_KEY,
                base_url=work.url,
                adaptive_rate=work.adaptive,
                rate_limiter=shared,
            )
        )

        async def storm() -> None:
            """Demand that always exceeds any plan: the limiter alone sets the pace."""
            try:
                job = await client.speech_to_text_job.create_job()
            except Exception as exc:  # counted like a failed call: the cell shows NO
                reason = _REQUEST_DETAILS.sub("", str(exc))[:200]
                errors[f"creating the job: {reason}"] = 1
                return
            jobs.add(job.job_id)
            left = iter(range(work.calls))

            async def caller() -> None:
                for i in left:
                    try:
                        await job.get_status()
                        ok.append(str(i))
                    except Exception as exc:  # counted; the parent prints the reasons
                        failed.append(str(i))
                        reason = _REQUEST_DETAILS.sub("", str(exc))[:200]
                        errors[reason] = errors.get(reason, 0) + 1

            await asyncio.gather(*(caller() for _ in range(STORM_CONCURRENCY)))

        async def consume() -> None:
            if work.calls:
                return await storm()
            outcomes = client.transcribe_files(
                paths, output_dir=out, max_concurrent_jobs=8, poll_interval=work.poll_interval
            )
            async with contextlib.aclosing(outcomes):
                async for outcome in outcomes:
                    good = (
                        outcome.ok
                        and outcome.output_path is not None
                        and outcome.output_path.exists()
                    )
                    (ok if good else failed).append(outcome.name)
                    if outcome.job_id:
                        jobs.add(outcome.job_id)
                    if not good:
                        reason = outcome.error or "no output on disk"
                        reason = _REQUEST_DETAILS.sub("", reason)[:200]
                        errors[reason] = errors.get(reason, 0) + 1

        left = None if work.give_up_at is None else max(0.0, work.give_up_at - time.time())
        timed_out = False
        try:
            await asyncio.wait_for(consume(), left)
        except asyncio.TimeoutError:
            timed_out = True
        wall = time.perf_counter() - t0
        ended_at = time.time()
        stats = client.stats
    on_disk = sorted(p.name for p in out.glob("*.json"))
    if work.calls:  # nothing to put on disk: every call answered is the whole job
        on_disk = sorted(set(ok))
    return {
        "tag": work.tag,
        "wall": wall,
        "started_at": started_at,
        "ended_at": ended_at,
        "ok": len(ok),
        "failed": len(failed),
        "duplicates": len(ok) - len(set(ok)),
        "on_disk": len(on_disk),
        "complete": len(set(ok)) == work.files and len(on_disk) == work.files,
        "timed_out": timed_out,
        "jobs": len(jobs),
        "jobs_needed": 1 if work.calls else math.ceil(work.files / MAX_FILES_PER_JOB),
        "requests": stats.requests,
        "throttled": stats.throttled,
        "retries": stats.retries,
        "errors": errors,
    }


def worker_main(work: Work) -> dict[str, Any]:
    """Body of one worker process: its own files, its own client, the shared account."""
    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(_transcribe(work, Path(tmp)))


def _row(name: str, r: dict[str, Any], limit: float) -> str:
    accepted = r["requests"] - r["throttled"]
    share = r["throttled"] / r["requests"] if r["requests"] else 0.0
    util = accepted / r["wall"] * 60.0 / limit if limit else 0.0
    return (
        f"| {name} | {r['ok']:,}/{r['files']:,} | {r['wall']:.2f} | {r['ok'] / r['wall']:.1f} | "
        f"{r['requests'] / r['wall']:.2f} | {r['requests']:,} | {share:.1%} | {util:.0%} | "
        f"{r['retries']:,} | {'yes' if r['complete'] else 'NO'} |"
    )


HEADER = (
    "| run | files ok | wall s | files/s | API req/s | API requests | 429 share | "
    "limit used | retries | all on disk, no duplicates |\n|---|---|---|---|---|---|---|---|---|---|"
)


def run_cell(
    workers: int,
    files: int,
    args: argparse.Namespace,
    *,
    redis_url: str | None = None,
    plan: float | None = None,
    give_up_after: float | None = None,
    calls: int = 0,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run ``files`` split over ``workers`` processes against a fresh emulator.

    Returns each worker's results and the totals the emulator counted (``wall`` is the busy
    period as the parent saw it; ``jobs``/``inputs`` are the jobs created and the files
    uploaded to them). ``redis_url`` gives every worker a ``RedisRateLimiter`` (``plan``
    its ``rate_limit``); ``give_up_after`` seconds from the start, workers stop waiting;
    ``calls`` > 0: each worker makes that many status calls on one job instead (``files``
    then counts those calls).
    """
    emulator = {
        "rate_limit": args.rate_limit or None,
        "latency": args.latency,
        "job_duration": args.job_duration,
        "burst": getattr(args, "burst", None),
        "fault_rate": getattr(args, "fault_rate", 0.0),
        "seed": getattr(args, "seed", 0),
    }
    server = ServerProcess(ServerConfig(kind="emulator", emulator=emulator, prepare=False))
    ctx = mp.get_context("spawn")
    per = files // workers
    try:
        before = server.snapshot()
        start_at = time.time() + 3.0  # time for every worker to import and write its inputs
        give_up_at = None if give_up_after is None else start_at + give_up_after
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            jobs = [
                pool.submit(
                    worker_main,
                    Work(
                        server.url,
                        per,
                        f"w{i}",
                        start_at,
                        args.poll_interval,
                        args.adaptive,
                        redis_url,
                        plan,
                        give_up_at,
                        calls,
                    ),
                )
                for i in range(workers)
            ]
            results = [
                j.result(timeout=600 if give_up_after is None else give_up_after + 60) for j in jobs
            ]
        busy = time.time() - start_at
        after = server.snapshot()
        created = server.jobs()
    finally:
        server.stop()
    for r in results:
        r["files"] = per
        for reason, count in r["errors"].items():
            what = "call(s)" if calls else "file(s)"
            print(f"{r['tag']}: {count} {what} failed: {reason}", file=sys.stderr)
    # Overall, counted by the emulator itself.
    total = {
        "ok": sum(r["ok"] for r in results),
        "files": per * workers,
        "wall": busy,
        "requests": int(after["requests"] - before["requests"]),
        "throttled": int(after["throttled"] - before["throttled"]),
        "retries": sum(r["retries"] for r in results),
        "complete": all(r["complete"] for r in results),
        **created,
    }
    return results, total


def run_part(workers: int, files: int, args: argparse.Namespace) -> str:
    results, total = run_cell(workers, files, args)
    per = files // workers
    rows = [_row(f"worker {r['tag']}", r, args.rate_limit) for r in results] if workers > 1 else []
    rows.append(
        _row(f"all ({workers} process{'es' if workers > 1 else ''})", total, args.rate_limit)
    )
    title = (
        f"### {workers} process(es) x {per:,} files; limit {args.rate_limit or 'none'}/min, "
        f"pacing {'on' if args.adaptive else 'off'}, "
        f"latency {args.latency} s, job duration {args.job_duration} s"
    )
    return "\n".join([title, "", HEADER, *rows])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.fanout",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--part", choices=("single", "multi", "both"), default="both")
    ap.add_argument("--files", type=int, default=1000, help="files in all (default 1000)")
    ap.add_argument("--workers", type=int, default=4, help="processes in the multi part (4)")
    ap.add_argument("--rate-limit", type=float, default=600.0, help="account requests/minute")
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per API answer")
    ap.add_argument("--multi-latency", type=float, default=0.08, help="latency, multi part")
    ap.add_argument("--job-duration", type=float, default=2.0, help="seconds per job")
    ap.add_argument("--poll-interval", type=float, default=1.0)
    ap.add_argument("--pacing", choices=("on", "off"), default="on", help="adaptive_rate")
    ap.add_argument("--burst", type=float, default=None, help="account bucket size (1 s)")
    ap.add_argument("--fault-rate", type=float, default=0.0, help="random 429/503 share")
    ap.add_argument("--seed", type=int, default=0, help="the emulator's fault seed")
    args = ap.parse_args(argv)
    args.adaptive = args.pacing == "on"
    blocks = []
    if args.part in ("single", "both"):
        blocks.append(run_part(1, args.files, args))
    if args.part in ("multi", "both"):
        args.latency = args.multi_latency
        blocks.append(run_part(args.workers, args.files, args))
    print("\n\n".join(blocks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
