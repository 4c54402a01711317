"""transcribe_files: many jobs at once, every file accounted for, resumable, collisions kept."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from pathlib import Path

import pytest

from sarvam_async import AsyncSarvam, RetryPolicy, errors
from sarvam_async.jobs import FileOutcome, ProgressEvent
from sarvam_async.testing import Emulator

from .conftest import KEY


def _make(tmp: Path, count: int, dirs: int = 1) -> list[Path]:
    paths = []
    for i in range(count):
        p = tmp / f"d{i % dirs}" / f"clip{i // dirs:04d}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"RIFF" + i.to_bytes(4, "big") * 50)
        paths.append(p)
    return paths


async def _collect(
    client: AsyncSarvam, paths: list[Path], out: Path, **kw: object
) -> list[FileOutcome]:
    return [
        o
        async for o in client.transcribe_files(
            paths,
            output_dir=out,
            poll_interval=0.01,
            **kw,  # type: ignore[arg-type]
        )
    ]


async def test_hundreds_of_files_many_jobs_all_accounted(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    paths = _make(tmp_path / "in", 300, dirs=3)  # every base name appears three times
    emulator.fail_file("clip0007.wav")  # the first of the three clip0007.wav fails
    events: list[ProgressEvent] = []
    outcomes = await _collect(
        client, paths, tmp_path / "out", max_concurrent_jobs=6, progress=events.append
    )
    assert len(outcomes) == 300
    assert {o.path for o in outcomes} == {p.absolute() for p in paths}
    names = [o.name for o in outcomes]
    assert len(set(names)) == 300  # collisions renamed: clip0001.wav, clip0001-2.wav, ...
    assert "clip0001-2.wav" in names and "clip0001-3.wav" in names
    failed = [o for o in outcomes if not o.ok]
    assert [(o.name, o.state) for o in failed] == [("clip0007.wav", "API Error")]
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(written) == 299 and not any(n.endswith(".part") for n in written)
    for o in outcomes:
        if o.ok:
            assert o.output_path is not None and o.result is not None
            assert json.loads(o.output_path.read_bytes())["transcript"] == o.result.transcript
    assert len(emulator.calls("initiate")) == 15  # ceil(300 / 20)
    per_job = Counter(len(r.json()["files"]) for r in emulator.calls("upload-files"))
    assert per_job == {20: 15}
    kinds = Counter(e.kind for e in events)
    assert kinds["job_created"] == 15 and kinds["file_uploaded"] == 300
    assert kinds["file_downloaded"] == 299 and kinds["file_failed"] == 1
    planned = [e for e in events if e.kind == "planned"]
    assert planned[0].total == 300 and planned[0].nbytes == sum(p.stat().st_size for p in paths)


async def test_interrupted_run_resumes_without_resubmitting(
    emulator: Emulator, tmp_path: Path, policy: RetryPolicy
) -> None:
    paths = _make(tmp_path / "in", 100)
    manifest = tmp_path / "run.manifest"
    out = tmp_path / "out"
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, retry=policy) as c:
        first: list[FileOutcome] = []
        run = c.transcribe_files(
            paths, output_dir=out, manifest=manifest, max_concurrent_jobs=2, poll_interval=0.01
        )
        async with contextlib.aclosing(run):
            async for o in run:
                first.append(o)
                if len(first) == 25:
                    break  # the run is interrupted: its jobs are cancelled mid-flight
    created_first = len(emulator.calls("initiate"))
    downloads_first = len(emulator.calls("storage-get"))
    assert created_first < 5 and 25 <= downloads_first < 100

    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, retry=policy) as c:
        second = await _collect(c, paths, out, manifest=manifest, max_concurrent_jobs=5)
    assert len(second) == 100 and all(o.ok for o in second)
    resumed = [o for o in second if o.resumed]
    assert len(resumed) >= 25
    assert len(emulator.calls("initiate")) == 5  # nothing submitted twice
    assert len([r for r in emulator.calls("start") if r.status == 200]) == 5
    # Finished files were not downloaded again: each is journaled as it lands, so at most
    # the transfers in flight at the interruption (16) can be fetched twice.
    assert 100 <= len(emulator.calls("storage-get")) <= 100 + 16
    assert len(list(out.iterdir())) == 100

    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, retry=policy) as c:
        third = await _collect(c, paths, out, manifest=manifest)
    assert all(o.resumed and o.ok for o in third)
    assert len(emulator.calls("initiate")) == 5


async def test_crash_between_upload_and_start_reattaches(
    emulator: Emulator, tmp_path: Path, policy: RetryPolicy
) -> None:
    paths = _make(tmp_path / "in", 3)
    manifest = tmp_path / "m.jsonl"
    emulator.fail_next("start", status=400, code="invalid_request_error")
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, retry=policy) as c:
        first = await _collect(c, paths, tmp_path / "out", manifest=manifest)
    assert all(not o.ok for o in first)  # the start was refused: files failed, not journaled
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, retry=policy) as c:
        second = await _collect(c, paths, tmp_path / "out", manifest=manifest)
    assert all(o.ok for o in second)
    assert len(emulator.calls("initiate")) == 1  # the job was re-attached, not re-created


async def test_a_dropped_start_is_tried_again_soon(emulator: Emulator, tmp_path: Path) -> None:
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    policy = RetryPolicy(sleep=sleep, jitter=lambda: 1.0)
    emulator.fail_next("start", drop=True)  # start is never re-sent by the call itself
    async with AsyncSarvam(
        api_key=KEY, base_url=emulator.url, retry=policy, adaptive_rate=False
    ) as c:
        outcomes = await _collect(c, _make(tmp_path / "in", 3), tmp_path / "out")
    assert len(outcomes) == 3 and all(o.ok for o in outcomes)
    assert len(emulator.calls("start")) == 2 and len(emulator.calls("initiate")) == 1
    # its inputs reached storage on the first go: the next go only starts the job
    assert len(emulator.calls("upload-files")) == 1 and len(emulator.calls("storage-put")) == 3
    # the job's next go waits the policy's first backoff (0.5 s), not a storm's 5 s
    assert slept and max(slept) == pytest.approx(0.5)


async def test_torn_manifest_tail_is_tolerated_and_garbage_is_not(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    paths = _make(tmp_path / "in", 2)
    manifest = tmp_path / "m.jsonl"
    await _collect(client, paths[:1], tmp_path / "out", manifest=manifest)
    with manifest.open("ab") as f:
        f.write(b'{"event":"file","pa')  # a crash mid-write
    again = await _collect(client, paths, tmp_path / "out", manifest=manifest)  # appends
    assert [o.resumed for o in again] == [True, False]
    third = await _collect(client, paths, tmp_path / "out", manifest=manifest)
    assert all(o.resumed for o in third)
    manifest.write_bytes(b"not json\n" + manifest.read_bytes())
    with pytest.raises(errors.ManifestError):
        await _collect(client, paths, tmp_path / "out", manifest=manifest)


async def test_bad_key_stops_the_whole_run(emulator: Emulator, tmp_path: Path) -> None:
    async with AsyncSarvam(api_key="wrong", base_url=emulator.url) as c:
        with pytest.raises(errors.ForbiddenError):
            await _collect(c, _make(tmp_path, 45), tmp_path / "out")


async def test_missing_input_fails_before_sending(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    with pytest.raises(errors.InvalidParameterError):
        await _collect(client, [tmp_path / "nope.wav"], tmp_path / "out")
    assert emulator.requests == []


async def test_translate_fanout(client: AsyncSarvam, emulator: Emulator, tmp_path: Path) -> None:
    outcomes = await _collect(
        client, _make(tmp_path, 3), tmp_path / "out", translate=True, job_parameters={"prompt": "x"}
    )
    assert all(o.ok for o in outcomes)
    assert {r.flow for r in emulator.calls("initiate")} == {"translate"}


async def test_raising_progress_callback_loses_nothing(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    emulator.fail_file("clip0003.wav")

    def broken(event: ProgressEvent) -> None:
        if event.kind != "planned":
            raise RuntimeError("progress bar bug")

    outcomes = await _collect(client, _make(tmp_path, 25), tmp_path / "out", progress=broken)
    assert len(outcomes) == 25
    assert [o.name for o in outcomes if not o.ok] == ["clip0003.wav"]


async def test_files_missing_from_a_final_status_are_reported(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    paths = _make(tmp_path, 3)
    real_status = emulator.fail_next  # the job ends Completed but lists no file
    real_status(
        "status",
        status=200,
        body=b'{"job_id":"x","job_state":"Completed","storage_container_type":"Azure"}',
    )
    outcomes = await _collect(client, paths, tmp_path / "out")
    assert len(outcomes) == 3 and not any(o.ok for o in outcomes)
    assert all("does not list" in (o.error or "") for o in outcomes)


async def test_resume_with_inputs_reordered_submits_nothing_twice(
    emulator: Emulator, tmp_path: Path, policy: RetryPolicy
) -> None:
    paths = _make(tmp_path / "in", 4, dirs=2)  # d0/clip0000.wav and d1/clip0000.wav, ...
    manifest = tmp_path / "m.jsonl"
    emulator.fail_next("download-files", status=400)  # the first run fails at the end
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, retry=policy) as c:
        first = await _collect(c, paths, tmp_path / "out", manifest=manifest)
    assert not any(o.ok for o in first)
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, retry=policy) as c:
        second = await _collect(c, paths[::-1], tmp_path / "out", manifest=manifest)
    assert all(o.ok for o in second)
    assert len(emulator.calls("initiate")) == 1
    by_path = {o.path: o for o in second}
    for first_outcome in first:  # every path kept the name its job was created with
        assert by_path[first_outcome.path].name == first_outcome.name


async def test_started_job_missing_from_the_journal_is_not_uploaded_again(
    emulator: Emulator, tmp_path: Path, policy: RetryPolicy
) -> None:
    paths = _make(tmp_path / "in", 2)
    manifest = tmp_path / "m.jsonl"
    emulator.fail_next("status", count=50, status=404)  # the run dies right after start
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, retry=policy) as c:
        first = await _collect(c, paths, tmp_path / "out", manifest=manifest)
    assert not any(o.ok for o in first)
    # drop the journal's "started" line, as a crash between start and its fsync would
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(x for x in lines if '"started"' not in x) + "\n")
    emulator.clear_faults()
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, retry=policy) as c:
        second = await _collect(c, paths, tmp_path / "out", manifest=manifest)
    assert all(o.ok for o in second)
    assert len(emulator.calls("upload-files")) == 1 and len(emulator.calls("initiate")) == 1


async def test_missing_output_is_downloaded_again_on_resume(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    paths = _make(tmp_path / "in", 2)
    manifest = tmp_path / "m.jsonl"
    first = await _collect(client, paths, tmp_path / "out", manifest=manifest)
    assert first[0].output_path is not None
    first[0].output_path.unlink()
    again = await _collect(client, paths, tmp_path / "out", manifest=manifest)
    assert all(o.ok for o in again) and first[0].output_path.exists()
    assert len(emulator.calls("storage-get")) == 3 and len(emulator.calls("initiate")) == 1
