"""Careless callers pay nothing: every bad argument is refused before the first request."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest

from sarvam_async import AsyncSarvam, SpeechToTextTranslateJobParameters, errors
from sarvam_async.jobs import FileOutcome
from sarvam_async.testing import Emulator


def _wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + b"\0" * 64)
    return path


async def _run(client: AsyncSarvam, paths: Any, out: Path, **kw: Any) -> list[FileOutcome]:
    kw.setdefault("poll_interval", 0.01)
    return [o async for o in client.transcribe_files(paths, output_dir=out, **kw)]


async def _refused(
    client: AsyncSarvam, emulator: Emulator, paths: Any, out: Path, match: str, **kw: Any
) -> errors.InvalidParameterError:
    with pytest.raises(errors.InvalidParameterError, match=match) as caught:
        await _run(client, paths, out, **kw)
    assert emulator.requests == []  # refused before the first request
    return caught.value


async def test_one_file_under_three_names_is_sent_once(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _wav(tmp_path / "dir" / "a.wav")
    (tmp_path / "link.wav").symlink_to(tmp_path / "dir" / "a.wav")
    monkeypatch.chdir(tmp_path)
    given = ["dir/a.wav", "dir/../dir/a.wav", Path("link.wav")]
    [outcome] = await _run(client, given, tmp_path / "out")
    assert outcome.ok and outcome.name == "a.wav"
    assert outcome.path == (tmp_path / "dir" / "a.wav").resolve()
    assert outcome.duplicates == (tmp_path / "dir/../dir/a.wav", tmp_path / "link.wav")
    assert [r.json()["files"] for r in emulator.calls("upload-files")] == [["a.wav"]]
    assert len(emulator.calls("storage-put")) == 1


@pytest.mark.parametrize("item", [b"a.wav", None, 3, Path])
async def test_a_path_that_is_not_a_path_is_a_typed_error(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path, item: object
) -> None:
    good = _wav(tmp_path / "good.wav")
    exc = await _refused(client, emulator, [good, item], tmp_path / "out", "str or pathlib.Path")
    assert exc.field == "paths[1]"
    job = await client.speech_to_text_job.get_job("job-1")
    with pytest.raises(errors.InvalidParameterError, match=r"str or pathlib\.Path"):
        await job.upload_files([item])  # type: ignore[list-item]
    assert emulator.requests == []


@pytest.mark.parametrize("as_path", [False, True])
async def test_a_lone_path_is_refused_not_read_letter_by_letter(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path, as_path: bool
) -> None:
    audio = _wav(tmp_path / "a.wav")
    lone = audio if as_path else str(audio)
    await _refused(client, emulator, lone, tmp_path / "out", r"give a list of paths, such as \[")


async def test_every_missing_input_is_named_at_once(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    (tmp_path / "loop.wav").symlink_to(tmp_path / "loop.wav")
    paths = [tmp_path / "nope.wav", tmp_path / "loop.wav", tmp_path]
    exc = await _refused(client, emulator, paths, tmp_path / "out", "not a readable file")
    assert all(str(p) in str(exc) for p in paths)


@pytest.mark.parametrize(
    "params",
    [
        {"num_speakers": 0},
        {"with_diarization": "yes"},
        {"no_such_field": 1, "num_speakers": -1},
        SpeechToTextTranslateJobParameters(prompt="x"),  # the other flow's parameters
    ],
)
async def test_bad_job_parameters_stop_the_run_before_any_request(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path, params: Any
) -> None:
    paths = [_wav(tmp_path / f"{i}.wav") for i in range(25)]  # two jobs' worth
    out = tmp_path / "out"
    exc = await _refused(client, emulator, paths, out, "job_parameters", job_parameters=params)
    assert exc.field == "job_parameters"


async def test_an_output_dir_that_cannot_hold_files_fails_before_any_request(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    audio = [_wav(tmp_path / "a.wav")]
    a_file = tmp_path / "taken"
    a_file.write_text("not a folder")
    await _refused(client, emulator, audio, a_file, "is a file, not a folder; give a folder")
    await _refused(client, emulator, audio, a_file / "sub", f"cannot be made: {a_file} is a file")
    assert a_file.read_text() == "not a folder"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"poll_interval": 0}, "poll_interval"),
        ({"poll_interval": -1.0}, "poll_interval"),
        ({"poll_interval": math.nan}, "poll_interval"),
        ({"poll_interval": "5"}, "poll_interval"),
        ({"job_timeout": -1.0}, "job_timeout"),
        ({"job_timeout": math.nan}, "job_timeout"),
        ({"job_timeout": 0}, "job_timeout"),
        ({"max_concurrent_jobs": 0}, "max_concurrent_jobs"),
        ({"max_concurrent_jobs": 2.5}, "max_concurrent_jobs"),
    ],
)
async def test_busy_polling_and_bad_limits_are_refused(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path, kw: dict[str, Any], field: str
) -> None:
    audio = [_wav(tmp_path / "a.wav")]
    exc = await _refused(client, emulator, audio, tmp_path / "out", field, **kw)
    assert exc.field == field


@pytest.mark.parametrize(
    ("kw", "bound"),
    [
        ({"poll_interval": 0}, "at least"),
        ({"max_interval": 0.001}, "at least"),
        ({"timeout": -1.0}, "more than 0"),
        ({"timeout": math.nan}, "more than 0"),
        ({"timeout": 0}, "more than 0"),  # no answer comes in no time
    ],
)
async def test_waiting_refuses_busy_polling(
    client: AsyncSarvam, emulator: Emulator, kw: dict[str, Any], bound: str
) -> None:
    job = await client.speech_to_text_job.get_job("job-1")
    with pytest.raises(errors.InvalidParameterError, match=bound):
        await job.wait_until_complete(**kw)
    assert emulator.requests == []


async def test_the_longest_name_whose_transcript_fits_is_kept(
    client: AsyncSarvam, tmp_path: Path
) -> None:
    # <name>.json and its temporary twin .<name>.json.<8 hex>.part: 20 bytes more than name
    longest = _wav(tmp_path / ("é" * 115 + "a.wav"))  # 235 bytes of UTF-8
    [outcome] = await _run(client, [longest], tmp_path / "out")
    assert outcome.ok and outcome.output_path is not None and outcome.output_path.exists()


@pytest.mark.parametrize(
    "name",
    [
        "é" * 116 + ".wav",  # 236 bytes: its temporary name would be 256
        "x" * 240 + ".wav",
        "10:30 standup.wav",  # a colon is a drive or a stream on Windows
        "con.wav",  # a device on Windows
    ],
)
async def test_a_name_whose_transcript_cannot_be_saved_is_refused_before_upload(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path, name: str
) -> None:
    ok = _wav(tmp_path / "fine.wav")
    bad = _wav(tmp_path / name)
    exc = await _refused(client, emulator, [ok, bad], tmp_path / "out", "nothing was sent")
    assert str(bad) in str(exc) and "fine.wav" not in str(exc)


async def test_a_renamed_collision_is_checked_too(
    client: AsyncSarvam, emulator: Emulator, tmp_path: Path
) -> None:
    name = "x" * 231 + ".wav"  # 235 bytes: fits, but its renamed twin x...x-2.wav does not
    paths = [_wav(tmp_path / "d1" / name), _wav(tmp_path / "d2" / name)]
    exc = await _refused(client, emulator, paths, tmp_path / "out", "1 input")
    assert str(paths[1]) in str(exc)


def test_bytes_paths_cannot_sneak_in_as_pathlike() -> None:
    class BytesPath(os.PathLike[bytes]):
        def __fspath__(self) -> bytes:
            return b"a.wav"

    from sarvam_async._preflight import local_paths

    with pytest.raises(errors.InvalidParameterError, match="not a path"):
        local_paths([BytesPath()])
