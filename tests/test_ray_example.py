"""The many-host route, at a small size: examples/ray_corpus.py on a local Ray cluster.

Three shards on one emulator with an account-wide limit and one Redis; the first attempt of
shard 0 kills its own worker after creating its job, that of shard 1 after starting it (before
the start reached its manifest); Ray runs each again, and it resumes from its manifest. Skips
without the ``examples`` extra, unless SARVAM_ASYNC_REQUIRE_EXTRAS is set (CI sets it).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
from redis.asyncio import Redis

from sarvam_async._redis_limiter import account_key
from sarvam_async.testing import Emulator

from .conftest import KEY
from .redis_server import RedisServer

EXAMPLE = Path(__file__).parent.parent / "examples" / "ray_corpus.py"

if not os.environ.get("SARVAM_ASYNC_REQUIRE_EXTRAS"):
    pytest.importorskip("ray", reason="the examples extra is not installed")


@pytest.mark.timeout(180)
async def test_a_corpus_over_ray_survives_a_lost_worker(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    names = [f"clip-{i:02d}.wav" for i in range(9)]
    for i, name in enumerate(names):
        (corpus / name).write_bytes(b"RIFF" + bytes([i]) * 200)
    out = tmp_path / "out"
    async with Emulator(api_key=KEY, rate_limit=600, job_duration=0.2) as emu:
        env = {**os.environ, "SARVAM_API_KEY": KEY, "SARVAM_BASE_URL": emu.url}
        env.update(SARVAM_REDIS_URL=redis_server.url, POLL_INTERVAL="0.1")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(EXAMPLE), str(corpus), "--out", str(out), "--shards", "3",
            "--rate-limit", "600", "--crash-shard", "0", "--crash-shard", "1:job_started",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await proc.communicate()
        assert proc.returncode == 0, stderr.decode()[-3000:]
        assert "3 shards: 9 files transcribed, 0 failed" in stdout.decode()
        for shard in (0, 1):  # the workers did die
            assert (out / ".manifests" / f"shard-{shard}.crashed").exists()
        # one job per shard: the jobs the lost workers created were found again, not made
        # again, and each was started once
        assert len(emu.calls("initiate")) == 3
        assert len(emu.calls("start")) == 3
        started = {unquote(c.path.split("/")[-2]) for c in emu.calls("start")}
        uploaded: dict[str, set[str]] = {}
        for call in emu.calls("upload-files"):
            body = call.json()
            uploaded.setdefault(body["job_id"], set()).update(body["files"])
        submitted = [name for job in started for name in uploaded[job]]
        assert sorted(submitted) == names  # every file in exactly one started job
        assert all(c.status != 429 for c in emu.calls())
    assert sorted(p.name for p in out.glob("*.json")) == [f"{n}.json" for n in names]
    store = Redis.from_url(redis_server.url)
    try:
        assert [k async for k in store.scan_iter()] == [account_key(KEY).encode()]
    finally:
        await store.aclose()
