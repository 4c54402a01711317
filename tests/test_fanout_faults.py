"""transcribe_files when the journal or the disk fails, and failures that keep their type."""

from __future__ import annotations

import asyncio
import errno
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sarvam_async
from sarvam_async import AsyncSarvam, RetryPolicy, errors
from sarvam_async import _storage as storage
from sarvam_async.jobs import FileOutcome, ProgressEvent
from sarvam_async.testing import Emulator

from .conftest import KEY, FakeTime
from .hostile import FullDisk


def _make(tmp: Path, count: int) -> list[Path]:
    tmp.mkdir(parents=True, exist_ok=True)
    paths = [tmp / f"clip{i:04d}.wav" for i in range(count)]
    for i, p in enumerate(paths):
        p.write_bytes(b"RIFF" + i.to_bytes(4, "big") * 50)
    return paths


async def _collect(
    client: AsyncSarvam, paths: list[Path], out: Path, **kw: Any
) -> list[FileOutcome]:
    return [
        o async for o in client.transcribe_files(paths, output_dir=out, poll_interval=0.01, **kw)
    ]


def _client_tasks() -> list[asyncio.Task[Any]]:
    """Tasks running the client's code (not the emulator's), other than the caller."""
    root = Path(sarvam_async.__file__).parent
    found = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        where = Path(code.co_filename) if code is not None else None
        if task is asyncio.current_task() or where is None or root not in where.parents:
            continue
        if "testing" not in where.relative_to(root).parts:
            found.append(task)
    return found


def _open_descriptors(path: Path) -> list[str]:
    fds = Path("/proc/self/fd")
    if not fds.exists():
        pytest.skip("needs /proc to list open descriptors")
    found = []
    for fd in fds.iterdir():
        try:
            if os.readlink(fd) == str(path):
                found.append(fd.name)
        except OSError:
            continue
    return found


class JournalDisk:
    """``os.write`` for the journal at ``path``: fails (ENOSPC, part written) on a file entry.

    Counts every write to the journal once it has failed: there must be none.
    """

    def __init__(self, path: Path, fail_at_file_entry: int) -> None:
        self.path, self.fail_at = path, fail_at_file_entry
        self.file_entries = 0
        self.failed = False
        self.writes_after = 0
        self.real = os.write

    def _is_journal(self, fd: int) -> bool:
        try:
            return os.path.samestat(os.fstat(fd), os.stat(self.path))
        except OSError:
            return False

    def __call__(self, fd: int, data: Any) -> int:
        if not self._is_journal(fd):
            return self.real(fd, data)
        if self.failed:
            self.writes_after += 1
        elif b'"event":"file"' in bytes(data):
            self.file_entries += 1
            if self.file_entries == self.fail_at:
                self.failed = True
                self.real(fd, bytes(data)[:9])  # part of the entry lands, then the disk is full
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.real(fd, data)


@pytest.fixture
def journal_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[JournalDisk, Path]]:
    manifest = tmp_path / "run.manifest"
    disk = JournalDisk(manifest, fail_at_file_entry=6)
    monkeypatch.setattr(os, "write", disk)
    yield disk, manifest
    monkeypatch.setattr(os, "write", disk.real)


async def test_a_journal_failure_stops_the_run_cleanly_and_it_resumes(
    emulator: Emulator,
    tmp_path: Path,
    policy: RetryPolicy,
    journal_disk: tuple[JournalDisk, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    disk, manifest = journal_disk
    paths = _make(tmp_path / "in", 60)  # three jobs of 20, all at once
    out = tmp_path / "out"
    events: list[ProgressEvent] = []
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, retry=policy) as c:
        with pytest.raises(errors.ManifestError, match="resumable"):
            await _collect(c, paths, out, manifest=manifest, progress=events.append)
        assert _client_tasks() == []  # every sibling download cancelled and awaited
        assert _open_descriptors(manifest) == []
        seen = len(events)
        for _ in range(20):  # nothing of the run is left to wake up
            await asyncio.sleep(0.005)
        assert len(events) == seen and _client_tasks() == []
    assert disk.failed and disk.writes_after == 0
    assert not [n for n in os.listdir(out) if n.endswith(".part")]
    downloaded_first = len(emulator.calls("storage-get"))

    monkeypatch.setattr(os, "write", disk.real)  # space is freed
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, retry=policy) as c:
        second = await _collect(c, paths, out, manifest=manifest)
    assert len(second) == 60 and all(o.ok for o in second)
    assert sum(o.resumed for o in second) == 5  # the five journaled before the failure
    assert len(emulator.calls("initiate")) == 3  # nothing submitted twice
    uploaded = Counter(f for r in emulator.calls("upload-files") for f in r.json()["files"])
    assert len(uploaded) == 60 and set(uploaded.values()) == {1}
    assert len(emulator.calls("storage-get")) - downloaded_first == 55


async def test_a_full_disk_is_never_final_a_resume_downloads_again(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = storage._open_binary

    def full(path: Path, mode: Any) -> Any:  # every transcript meets a full disk
        f = real_open(path, mode)
        return FullDisk(f, 0) if mode == "wb" else f

    monkeypatch.setattr(storage, "_open_binary", full)
    paths = _make(tmp_path / "in", 5)
    manifest = tmp_path / "run.manifest"
    first = await _collect(client, paths, tmp_path / "out", manifest=manifest)
    assert len(first) == 5 and not any(o.ok for o in first)
    for o in first:
        assert isinstance(o.exception, errors.LocalWriteError) and "disk is full" in str(o.error)
    journaled = [json.loads(line)["event"] for line in manifest.read_text().splitlines()]
    assert "file" not in journaled  # the transcripts are paid for: not a final failure
    assert os.listdir(tmp_path / "out") == []

    monkeypatch.setattr(storage, "_open_binary", real_open)  # space is freed
    second = await _collect(client, paths, tmp_path / "out", manifest=manifest)
    assert len(second) == 5 and all(o.ok and not o.resumed for o in second)
    assert len(emulator.calls("initiate")) == 1 and len(emulator.calls("upload-files")) == 1
    assert len(emulator.calls("storage-get")) == 10


async def test_failed_outcomes_keep_their_type(
    emulator: Emulator, tmp_path: Path, fake_time: FakeTime
) -> None:
    paths = _make(tmp_path / "in", 4)
    manifest = tmp_path / "run.manifest"
    policy = RetryPolicy(max_attempts=1, sleep=fake_time.sleep, clock=fake_time.clock)
    async with AsyncSarvam(
        api_key=KEY, base_url=emulator.url, retry=policy, adaptive_rate=False
    ) as c:
        emulator.fail_file("clip0000.wav")
        first = {o.name: o for o in await _collect(c, paths, tmp_path / "a", manifest=manifest)}
        emulator.clear_file_failures()
        emulator.fail_next("storage-put", status=500)  # one upload fails (one attempt each)
        uploads = [o for o in await _collect(c, paths, tmp_path / "b") if not o.ok]
        emulator.fail_next("storage-get", status=500)  # one download fails
        downloads = [o for o in await _collect(c, paths, tmp_path / "c") if not o.ok]
    verdict = first["clip0000.wav"].exception
    assert isinstance(verdict, errors.FileFailedError)
    assert (verdict.file_name, verdict.state) == ("clip0000.wav", "API Error")
    assert first["clip0000.wav"].error == "Audio could not be decoded"
    assert all(o.exception is None for o in first.values() if o.ok)
    for failed, step in ((uploads, "upload"), (downloads, "download")):
        [outcome] = failed
        exc = outcome.exception
        assert isinstance(exc, errors.StorageError), step
        assert not isinstance(exc, errors.LocalWriteError)
        assert exc.status_code == 500 and exc.file_name == outcome.name
        assert f"{step} failed" in str(outcome.error)

    async with AsyncSarvam(api_key=KEY, base_url=emulator.url, retry=policy) as c:
        again = {o.name: o for o in await _collect(c, paths, tmp_path / "a", manifest=manifest)}
    assert all(o.resumed for o in again.values())  # the API's verdict is final, and typed
    assert isinstance(again["clip0000.wav"].exception, errors.FileFailedError)
