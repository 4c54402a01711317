"""Transcribe a corpus as shards over a Ray cluster, every worker on one shared account budget.

    pip install 'sarvam-async[redis,examples]'     # on every node; and in every node's
    export SARVAM_API_KEY=...                      # environment (with SARVAM_BASE_URL
    export SARVAM_REDIS_URL=redis://cache:6379/0   # for the emulator)
    python examples/ray_corpus.py CORPUS_DIR --out OUT_DIR --shards 8 \\
        [--rate-limit 600] [--address auto]

Each shard is one Ray task: it runs ``transcribe_files`` on its files with its own manifest
(``OUT_DIR/.manifests/shard-N``) and a ``RedisRateLimiter``, so every process of every host
draws from one account budget. A worker that dies is retried by Ray, and running the same
command again after any crash resumes every shard from its manifest: finished files are
kept, created jobs are re-attached, nothing is submitted twice. On several hosts, OUT_DIR
must be a shared file system (the manifests are the run's memory). The API key and the
Redis URL (which may hold a password) come from each node's environment, never from a
task's arguments, which Ray's state API and dashboard show.

``--crash-shard N`` makes shard N's first attempt kill its own worker process right after
it created its first job (``N:job_started``: right after it started it, before the start
reached the manifest): a rehearsal of a lost worker (Ray retries it from the manifest).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import ray

from sarvam_async import AsyncSarvam, RedisRateLimiter
from sarvam_async.jobs import ProgressEvent

REDIS_URL_VARIABLE = "SARVAM_REDIS_URL"
AUDIO = {".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac", ".webm"}


async def _transcribe(
    paths: list[str], out: str, shard: int, rate_limit: float | None, crash: str | None
) -> dict[str, int]:
    manifests = Path(out) / ".manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    marker = manifests / f"shard-{shard}.crashed"
    redis_url = os.environ.get(REDIS_URL_VARIABLE)
    if not redis_url:
        raise RuntimeError(f"set {REDIS_URL_VARIABLE} on every node (redis://host:port/db)")

    def progress(event: ProgressEvent) -> None:
        if event.kind == crash and not marker.exists():
            marker.touch()
            os._exit(1)  # a lost worker: no clean-up, no goodbye

    ok = failed = 0
    async with (
        RedisRateLimiter(redis_url, rate_limit=rate_limit) as shared,
        AsyncSarvam(rate_limiter=shared) as client,
    ):
        run = client.transcribe_files(
            paths,
            output_dir=out,
            manifest=manifests / f"shard-{shard}",
            progress=progress,
            poll_interval=float(os.environ.get("POLL_INTERVAL", "5")),
        )
        async with contextlib.aclosing(run):
            async for outcome in run:
                ok, failed = (ok + 1, failed) if outcome.ok else (ok, failed + 1)
    return {"shard": shard, "ok": ok, "failed": failed}


@ray.remote(max_retries=3)  # a dead worker's shard runs again, resuming from its manifest
def transcribe_shard(
    paths: list[str], out: str, shard: int, rate_limit: float | None, crash: str | None
) -> dict[str, int]:
    return asyncio.run(_transcribe(paths, out, shard, rate_limit, crash))


def _crashes(specs: list[str]) -> dict[int, str]:
    """``--crash-shard`` values, ``N`` or ``N:EVENT``, as {shard: progress event}."""
    crashes: dict[int, str] = {}
    for spec in specs:
        shard, _, event = spec.partition(":")
        if event not in ("", "job_created", "job_started") or not shard.isdigit():
            raise SystemExit(f"--crash-shard takes N or N:job_created|job_started, not {spec!r}")
        crashes[int(shard)] = event or "job_created"
    return crashes


def shards_of(corpus: Path, count: int) -> list[list[str]]:
    """The corpus's audio files in ``count`` shards; the same split on every run."""
    files = sorted(str(p) for p in corpus.rglob("*") if p.suffix.lower() in AUDIO)
    return [files[i::count] for i in range(count) if files[i::count]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--out", required=True)
    ap.add_argument("--shards", type=int, default=8)
    ap.add_argument("--rate-limit", type=float, help="the account's plan, requests/minute")
    ap.add_argument("--address", help="a Ray cluster to join (default: a local one)")
    ap.add_argument(
        "--crash-shard",
        action="append",
        default=[],
        metavar="N[:EVENT]",
        help="rehearse a lost worker on shard N, after job_created (default) or job_started",
    )
    args = ap.parse_args(argv)
    crashes = _crashes(args.crash_shard)
    if args.address is None and not os.environ.get(REDIS_URL_VARIABLE):
        ap.error(f"set {REDIS_URL_VARIABLE} (redis://host:port/db): the workers read it")

    ray.init(address=args.address, include_dashboard=False, log_to_driver=False)
    # workers read SARVAM_API_KEY and SARVAM_REDIS_URL from their node's environment:
    # secrets never travel in a task's arguments, which Ray's state API and dashboard show
    tasks: list[Any] = [
        transcribe_shard.remote(paths, args.out, i, args.rate_limit, crashes.get(i))
        for i, paths in enumerate(shards_of(args.corpus, args.shards))
    ]
    results = ray.get(tasks)
    ray.shutdown()
    ok = sum(r["ok"] for r in results)
    failed = sum(r["failed"] for r in results)
    print(f"{len(results)} shards: {ok} files transcribed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
