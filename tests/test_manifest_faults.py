"""The resume journal under damage: a missing newline, failed and short writes."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from sarvam_async import errors
from sarvam_async._manifest import JobEntry, Manifest, StartedEntry

JOB = JobEntry("j1", "stt", {"a.wav": "/in/a.wav"})


async def _journal_with_a_job(tmp_path: Path) -> tuple[Path, Manifest]:
    path = tmp_path / "run.jsonl"
    journal = Manifest(path)
    await journal.record(JOB)
    return path, journal


def _held_disk(
    monkeypatch: pytest.MonkeyPatch, then: Callable[[int, bytes | memoryview], int] | None
) -> tuple[threading.Event, threading.Event]:
    """Make ``os.write`` block until released, then write with ``then`` (None: disk full).

    Returns (entered: a write is blocked, release: let it go on).
    """
    entered, release = threading.Event(), threading.Event()

    def held(fd: int, data: bytes | memoryview) -> int:
        entered.set()
        release.wait(10)
        if then is None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return then(fd, data)

    monkeypatch.setattr(os, "write", held)
    return entered, release


async def test_a_last_line_without_its_newline_is_repaired_on_open(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    path.write_bytes(b'{"event":"job","job_id":"j1","flow":"stt","inputs":{}}')
    for round_ in range(3):  # resume, append, resume again ...
        journal = Manifest(path)
        state = journal.load()
        assert "j1" in state.jobs and len(state.started) == round_
        await journal.record(StartedEntry(f"s{round_}"))
        journal.close()


async def test_a_failed_write_is_undone_and_the_journal_refuses_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, journal = await _journal_with_a_job(tmp_path)
    real_write = os.write

    def torn(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data)[:7])  # part of the entry lands, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", torn)
    with pytest.raises(errors.ManifestError, match="resumable"):
        await journal.record(StartedEntry("j1"))
    monkeypatch.setattr(os, "write", real_write)
    with pytest.raises(errors.ManifestError):  # nothing is written after the error
        await journal.record(StartedEntry("j2"))
    journal.close()
    state = Manifest(path).load()
    assert list(state.jobs) == ["j1"] and state.started == set()
    assert path.read_bytes().endswith(b"}\n")


async def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write

    def short(fd: int, data: bytes | memoryview) -> int:
        return real_write(fd, bytes(data)[:5])

    monkeypatch.setattr(os, "write", short)
    journal = Manifest(tmp_path / "run.jsonl")
    await journal.record(JOB)
    await journal.record(StartedEntry("j1"))
    journal.close()
    monkeypatch.setattr(os, "write", real_write)
    state = Manifest(tmp_path / "run.jsonl").load()
    assert list(state.jobs) == ["j1"] and state.started == {"j1"}


async def test_a_cancelled_record_holds_the_journal_until_its_write_has_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, journal = await _journal_with_a_job(tmp_path)
    real_write = os.write
    entered, release = _held_disk(monkeypatch, real_write)  # a disk that takes its time
    first = asyncio.ensure_future(journal.record(StartedEntry("j1")))
    await asyncio.to_thread(entered.wait, 10)
    first.cancel()
    monkeypatch.setattr(os, "write", real_write)
    second = asyncio.ensure_future(journal.record(StartedEntry("j2")))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not first.done() and not second.done()  # the write in its thread still runs
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    journal.close()
    assert Manifest(path).load().started == {"j1", "j2"}  # whole entries, one after the other


async def test_a_cancelled_record_whose_write_fails_still_raises_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a caller told to stop must stop: the write's error, raised instead, read as a failed
    # job to a fan-out worker, which went back to its queue and held the run open
    _, journal = await _journal_with_a_job(tmp_path)
    entered, release = _held_disk(monkeypatch, None)  # a slow disk that fills up
    first = asyncio.ensure_future(journal.record(StartedEntry("j1")))
    await asyncio.to_thread(entered.wait, 10)
    first.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    with pytest.raises(errors.ManifestError, match="free space"):  # the failure is kept
        await journal.record(StartedEntry("j2"))
    journal.close()
