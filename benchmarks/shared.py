"""Several processes on one account: uncoordinated, against the shared Redis limiter.

    python -m benchmarks.shared                         # the grid, then the fallback check
    python -m benchmarks.shared --workers 4 --plan 600  # one row of the grid (all three modes)
    python -m benchmarks.shared --fallback-only         # Redis killed mid-run
    python -m benchmarks.shared --demand calls          # the limiter alone: a status storm

Each cell starts the emulator in its own process with ONE account limit (``--plan``,
requests per minute; token bucket of one second's worth, at least one request), a fresh
throwaway ``redis-server`` on a free loopback port, and N worker processes that each run
``transcribe_files`` on a shard of their own (``benchmarks.fanout``'s workers), all at
once, in three modes:

- ``uncoordinated``: default clients; each learns the limit alone from its own refusals;
- ``shared, plan``: ``RedisRateLimiter(url, rate_limit=plan)`` in every worker;
- ``shared, learned``: ``RedisRateLimiter(url)``, one rate learned for the whole account;
- ``shared, learned again`` (only when asked for with ``--mode``): the same cell run twice
  on one Redis, the second measured: a run that starts at the rate an earlier run learned.

Reported per cell: "limit used", accepted API calls (counted by the emulator) over the plan
times the busy period (the first worker's start to the last worker's end); the share of
calls answered 429; the spread of the workers' finish times counted from that one start,
(max - min) / max; and whether every file is on disk once, in as many jobs as its shard
needs (each job created and started once). Shards are sized per plan so that a cell lasts
about a minute (low plans: fewer files, a few minutes); a cell that runs past twice its
ideal length plus a minute is stopped and shown unfinished.

``--demand calls`` replaces the shards by a status storm: each worker creates one job and
asks for its status again as soon as it is answered (one call in flight), so together the
workers always ask for more than the plan and the limiter alone sets the pace, without the
fan-out's last jobs (seconds when the account idles) or its lumps of work (a job's calls).
The workers together make ``CALLS_SPAN`` seconds of the plan's calls, each at least
``MIN_CALLS``; the last column then says whether every call was answered. At 20 requests/min
"limit used" reads over 98 % (the pace) because the bucket starts full: one call of 100-200.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from sarvam_async.models import MAX_FILES_PER_JOB

from ._redis import local_redis
from .fanout import STORM_CONCURRENCY, run_cell

PLANS = (2400.0, 600.0, 120.0, 20.0)
WORKERS = (4, 8)
MODES = ("uncoordinated", "shared, plan", "shared, learned")
AGAIN = "shared, learned again"
JOBS = {20.0: 4, 120.0: 16, 600.0: 80, 2400.0: 192}
"""Jobs of 20 files per cell, all processes together: about a minute at 120-2,400/min
(one job per process at 20/min: 80 s with 4, 160 s with 8), with some 6.5 API calls per job."""
CALLS_PER_JOB = 6.5
CALLS_SPAN = 45.0
"""Seconds a status-storm cell lasts at its plan (``--demand calls``)."""
MIN_CALLS = 24
"""Fewest status calls per worker in a storm: with fair turns the last of N workers ends
N - 1 slots after the first. A worker whose first status call reaches the limiter before
the others have created their jobs stays one call ahead of them with turns that stay fair,
and each of the others may then have two calls left when it ends: 2N - 2 slots, 14 of 200
(7 %) with 8 workers of 25 calls each (counting the job's creation). At 12, 14 of 104 is
13.5 %, over the 10 % the finish spread is held to, on work no fan-out is that short of;
the price is 10 minutes for 8 workers at 20/min."""

HEADER = (
    "| processes | plan/min | limiter | files | busy s | API calls | limit used | 429 share | "
    "finish spread | all on disk once, no duplicate job |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def _ideal(jobs: int, plan: float) -> float:
    return jobs * CALLS_PER_JOB / (plan / 60.0)


def _storm_calls(workers: int, plan: float, scale: float) -> int:
    """Status calls per worker so that a storm cell lasts ``CALLS_SPAN`` at ``plan`` (at
    least ``MIN_CALLS``), times ``scale``."""
    return round(max(MIN_CALLS, plan / 60.0 * CALLS_SPAN / workers) * scale)


def run(
    workers: int,
    plan: float,
    mode: str,
    jobs: int,
    args: argparse.Namespace,
    kill_redis_after: float | None = None,
    calls: int = 0,
) -> dict[str, Any]:
    """One cell; ``kill_redis_after`` seconds after the start, the redis-server is killed;
    ``calls`` > 0: a status storm of that many calls per worker instead of files."""
    per = calls or math.ceil(jobs / workers) * MAX_FILES_PER_JOB
    cell = argparse.Namespace(**vars(args))
    cell.rate_limit = plan
    ideal = (per * workers + workers) / (plan / 60.0) if calls else _ideal(jobs, plan)
    give_up = 2 * ideal + 60.0
    with local_redis() as (url, redis):
        killed: list[float] = []
        timer = None
        if kill_redis_after is not None:

            def kill() -> None:
                redis.kill()
                killed.append(time.time())

            # the workers start about 4 s after run_cell is called (server, then 3 s)
            timer = threading.Timer(4.0 + kill_redis_after, kill)
            timer.start()
        if mode == AGAIN:  # an earlier run on the same account teaches the rate
            run_cell(
                workers, per * workers, cell, redis_url=url, give_up_after=give_up, calls=calls
            )
        results, total = run_cell(
            workers,
            per * workers,
            cell,
            redis_url=None if mode == "uncoordinated" else url,
            plan=plan if mode == "shared, plan" else None,
            give_up_after=give_up,
            calls=calls,
        )
        if timer is not None:
            timer.cancel()
    # the account's busy period runs from the first worker's start to the last one's end, and
    # finish times count from that one start (wall clocks of one machine), not from each
    # worker's own: on a busy machine a worker wakes up to half a second after the others
    began_at = min(r["started_at"] for r in results)
    walls = [r["ended_at"] - began_at for r in results]
    busy = max(walls)
    accepted = total["requests"] - total["throttled"]
    return {
        "workers": workers,
        "plan": plan,
        "mode": mode,
        "files": per * workers,
        "calls": calls,
        "ok": total["ok"],
        "busy": busy,
        "requests": total["requests"],
        "throttled": total["throttled"],
        "used": accepted / (plan / 60.0 * busy),
        "share": total["throttled"] / total["requests"] if total["requests"] else 0.0,
        "spread": (busy - min(walls)) / busy,
        "timed_out": any(r["timed_out"] for r in results),
        "once": total["complete"]
        and all(r["duplicates"] == 0 for r in results)
        and (
            total["jobs"] == workers  # a storm: one job per worker, every call answered
            if calls
            else total["jobs"] == total["started"] == sum(r["jobs_needed"] for r in results)
            and total["inputs"] == per * workers
        ),
        "jobs": total["jobs"],
        "jobs_needed": sum(r["jobs_needed"] for r in results),
        "killed_at": killed[0] - began_at if killed else None,
    }


def row(r: dict[str, Any]) -> str:
    done = "yes" if r["once"] else "NO"
    if not r["once"] and r["calls"]:
        done += f" ({r['ok']:,} calls answered"
        done += ", stopped unfinished)" if r["timed_out"] else ")"
    elif not r["once"]:
        done += f" ({r['ok']:,} files ok, {r['jobs']}/{r['jobs_needed']} jobs"
        done += ", stopped unfinished)" if r["timed_out"] else ")"
    mode = r["mode"]
    if r["killed_at"] is not None:
        mode += f", Redis killed at {r['killed_at']:.1f} s"
    return (
        f"| {r['workers']} | {r['plan']:,.0f} | {mode} | {r['files']:,} | {r['busy']:.1f} | "
        f"{r['requests']:,} | {r['used']:.1%} | {r['share']:.1%} | {r['spread']:.1%} | {done} |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.shared",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--workers", type=int, action="append", help="processes (4 and 8)")
    ap.add_argument("--plan", type=float, action="append", help="requests/min (all four)")
    ap.add_argument(
        "--mode", choices=(*MODES, AGAIN), action="append", help="limiter (the first three)"
    )
    ap.add_argument(
        "--demand",
        choices=("fanout", "calls"),
        default="fanout",
        help="fanout: transcribe_files on shards (default); calls: each worker asks for status "
        "again as soon as answered, together far above the plan (the limiter alone sets "
        "the pace); no fallback check",
    )
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every cell's jobs or calls")
    ap.add_argument("--fallback-only", action="store_true")
    ap.add_argument("--no-fallback", action="store_true")
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per API answer")
    ap.add_argument("--job-duration", type=float, default=2.0, help="seconds per job")
    ap.add_argument("--poll-interval", type=float, default=1.0)
    args = ap.parse_args(argv)
    args.adaptive = True
    if args.demand == "calls":
        if args.fallback_only:
            ap.error("the fallback check runs a fan-out: leave out --demand calls")
        args.no_fallback = True
        for plan in args.plan or PLANS:
            for workers in args.workers or WORKERS:
                asked = workers * STORM_CONCURRENCY / args.latency * 60.0
                if asked < 1.5 * plan:  # the workers, not the limiter, would set the pace
                    ap.error(
                        f"{workers} workers with {args.latency} s answers ask only "
                        f"{asked:,.0f} calls/min, under 1.5x the {plan:,.0f}/min plan: "
                        "lower --latency"
                    )
    header = HEADER
    if args.demand == "calls":
        header = header.replace("| files |", "| calls |")
        header = header.replace("all on disk once, no duplicate job", "every call answered")
    lines = [header]
    print(header, flush=True)
    if not args.fallback_only:
        for plan in args.plan or PLANS:
            jobs = max(1, round(JOBS.get(plan, 16) * args.scale))
            for workers in args.workers or WORKERS:
                calls = 0
                if args.demand == "calls":
                    calls = _storm_calls(workers, plan, args.scale)
                for mode in args.mode or MODES:
                    line = row(run(workers, plan, mode, max(jobs, workers), args, calls=calls))
                    lines.append(line)
                    print(line, flush=True)
    if not args.no_fallback:
        jobs = round(JOBS[600.0] * args.scale)
        r = run(4, 600.0, "shared, plan", jobs, args, _ideal(jobs, 600.0) / 3)
        line = row(r)
        print(line, flush=True)
        if r["killed_at"] is None:
            print("\nFallback: the run ended before redis-server was killed: FAIL", flush=True)
            return 1
        print(
            f"\nFallback: redis-server killed {r['killed_at']:.1f} s after the start of a "
            f"{r['busy']:.1f} s run; {r['ok']:,}/{r['files']:,} files on disk, "
            f"{r['jobs']} jobs created for {r['jobs_needed']} needed: "
            f"{'PASS' if r['once'] else 'FAIL'}",
            flush=True,
        )
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
