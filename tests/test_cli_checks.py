"""The command as a new user meets it: checks before spending, failing fast, saying what happened.

Each test runs the real command in a subprocess against the emulator, like test_cli.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from pathlib import Path

from sarvam_async import AsyncSarvam
from sarvam_async.testing import Emulator

from .conftest import KEY
from .hostile import silent_server
from .test_cli import _api_env, _env, _finish, _one_clear_line, _start, _wavs, cli

# ----------------------------------------------------------------------------- inputs


async def test_every_bad_input_is_named_in_one_message_before_any_request(
    emulator: Emulator, tmp_path: Path
) -> None:
    (good,) = _wavs(tmp_path, "good.wav")
    (tmp_path / "notes.txt").write_text("not audio")
    (tmp_path / ".DS_Store").write_bytes(b"\0" * 10)
    (tmp_path / "file.xyz").write_bytes(b"RIFF" + bytes(100))
    (tmp_path / "empty.wav").write_bytes(b"")
    names = ["notes.txt", ".DS_Store", "file.xyz", "empty.wav", "missing.wav"]
    env = _api_env(emulator)
    run = await cli(
        "transcribe", str(good), *(str(tmp_path / n) for n in names), "--out", "o", env=env
    )
    assert run.code == 2, run.err
    line = _one_clear_line(run.err)
    assert line.startswith("sarvam-async: error: 5 inputs cannot be sent, so nothing was")
    for name in names:
        assert name in line, name
    assert "--force" in line and "empty (0 bytes)" in line and "not found" in line
    assert emulator.requests == []  # not one request

    forced = await cli(
        "transcribe", str(tmp_path / "file.xyz"), "--force", "--out", str(tmp_path / "o"), env=env
    )
    assert forced.code == 0, forced.err
    assert (tmp_path / "o" / "file.xyz.json").is_file()


async def test_folders_are_expanded_and_a_file_given_twice_is_sent_once(
    emulator: Emulator, tmp_path: Path
) -> None:
    folder = tmp_path / "calls"
    _wavs(folder, "a.wav", "readme.wav")
    _wavs(folder / "day2", "a.wav")
    _wavs(folder / ".cache", "hidden.wav")
    (folder / "notes.txt").write_text("skipped in a folder")
    (folder / ".DS_Store").write_bytes(b"\0")
    out = tmp_path / "out"
    spelled_again = str(folder / "day2" / ".." / "a.wav")
    run = await cli(
        "transcribe", str(folder), spelled_again, "--out", str(out), env=_api_env(emulator)
    )
    assert run.code == 0, run.err
    assert "3: 3 transcribed, 0 failed" in run.out  # a.wav, readme.wav, day2/a.wav
    assert "was given 2 times; it is sent once" in run.err
    assert "skipped 2 files" in run.err  # notes.txt, .DS_Store; .cache is not entered
    sent = sorted(f for r in emulator.calls("upload-files") for f in r.json()["files"])
    assert sent == ["a-2.wav", "a.wav", "readme.wav"]
    # the renamed duplicate is listed with the input it came from
    assert re.search(r"a-2\.wav\s+\S*day2/a\.wav", run.out), run.out
    written = sorted(p.name for p in out.iterdir())
    assert written == ["a-2.wav.json", "a.wav.json", "readme.wav.json"]


async def test_an_unusable_output_folder_is_refused_before_any_request(
    emulator: Emulator, tmp_path: Path
) -> None:
    (wav,) = _wavs(tmp_path, "a.wav")
    afile = tmp_path / "afile"
    afile.write_text("a file")
    env = _api_env(emulator)
    inside, itself = await asyncio.gather(
        cli("transcribe", str(wav), "--out", str(afile / "out"), env=env),
        cli("transcribe", str(wav), "--out", str(afile), env=env),
    )
    assert inside.code == itself.code == 2
    assert f"--out: {afile / 'out'} cannot be made: {afile} is a file, not a folder" in (
        _one_clear_line(inside.err)
    )
    assert f"--out: {afile} is a file, not a folder" in _one_clear_line(itself.err)
    assert emulator.requests == []


# ----------------------------------------------------------------------------- fail fast


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_nothing_listening_at_the_base_url_fails_within_seconds(tmp_path: Path) -> None:
    (wav,) = _wavs(tmp_path, "a.wav")
    url = f"http://127.0.0.1:{_closed_port()}"
    env = _env(SARVAM_API_KEY=KEY, SARVAM_BASE_URL=url)
    commands = [
        ("transcribe", str(wav), "--out", str(tmp_path / "o")),
        ("status", "job-1"),
        ("wait", "job-1"),
        ("download", "job-1", "--out", str(tmp_path / "o")),
    ]
    procs = [await _start(*c, env=env) for c in commands]
    # The retry policy would take 26 s (status) to 180 s (transcribe) to give up.
    runs = await asyncio.gather(*(_finish(p, timeout=15) for p in procs))
    for run in runs:
        assert run.code == 1, run.err
        line = _one_clear_line(run.err)
        assert f"cannot reach the API at {url}: connection refused" in line, line
        assert "--base-url" in line


async def test_parameters_the_api_rejects_cost_one_request_and_exit_2(
    emulator: Emulator, tmp_path: Path
) -> None:
    paths = _wavs(tmp_path / "in", *(f"f{i:02d}.wav" for i in range(41)))  # three jobs
    run = await cli(
        "transcribe",
        str(tmp_path / "in"),
        "--out",
        str(tmp_path / "o"),
        "--mode",
        "banana",
        "--jobs-concurrency",
        "3",
        env=_api_env(emulator),
    )
    assert run.code == 2, run.err
    line = [ln for ln in run.err.splitlines() if "error" in ln]
    assert len(line) == 1 and "refused the job parameters" in line[0] and "HTTP 4" in line[0]
    assert "request_id=" in line[0]
    assert len(emulator.calls("initiate")) == 1  # not one per job
    assert emulator.calls("upload-files") == []
    assert "Failed files" not in run.out and len(paths) == 41


async def test_the_fan_out_creates_one_job_before_the_others(
    emulator: Emulator, tmp_path: Path
) -> None:
    paths = _wavs(tmp_path, *(f"f{i:02d}.wav" for i in range(41)))
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url) as client:
        run = client.transcribe_files(
            paths, output_dir=tmp_path / "o", job_parameters={"mode": "banana"}
        )
        try:
            async for _ in run:
                raise AssertionError("no outcome: the run stops on the refused job")
        except Exception as exc:
            assert getattr(exc, "status_code", None) in (400, 422), exc
        finally:
            await run.aclose()
    assert len(emulator.calls("initiate")) == 1


async def test_wait_and_download_say_a_job_was_never_started(
    emulator: Emulator, tmp_path: Path
) -> None:
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url) as client:
        job = await client.speech_to_text_job.create_job()
    env = _api_env(emulator)
    waited, downloaded = await asyncio.gather(
        cli("wait", job.job_id, "--poll-interval", "0.05", "--timeout", "60", env=env),
        cli("download", job.job_id, "--out", str(tmp_path / "o"), env=env),
    )
    for run in (waited, downloaded):
        assert run.code == 1
        line = _one_clear_line(run.err)
        assert f"job {job.job_id} was created but never started (state Accepted)" in line
        assert "transcribe --manifest" in line
    assert len(emulator.calls("status")) == 2  # one look each, no waiting


async def test_wait_timeout_bounds_its_first_status_call_too() -> None:
    async with silent_server() as url:  # accepts, never answers: each call's retries stall
        env = _env(SARVAM_API_KEY=KEY, SARVAM_BASE_URL=url)
        began = time.monotonic()
        run = await cli("wait", "job-1", "--timeout", "1", env=env)
        took = time.monotonic() - began
    assert run.code == 1, run.err
    line = _one_clear_line(run.err)
    assert "no status of job job-1 within --timeout 1s" in line and "raise --timeout" in line
    assert took < 20.0  # start-up (seconds on a loaded machine) and its 1 s; not 60 s


async def test_wait_timeout_bounds_its_connection_check_too() -> None:
    # a listener whose queue is full: the kernel drops further connection attempts unanswered,
    # as a firewall that drops packets does
    with socket.socket() as closed:  # a port nothing listens on: refused at once
        closed.bind(("127.0.0.1", 0))
        refused_url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    began = time.monotonic()
    await cli("wait", "job-1", env=_env(SARVAM_API_KEY=KEY, SARVAM_BASE_URL=refused_url))
    startup = time.monotonic() - began  # the command's start-up and exit on this machine, now
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        queued = []
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            queued.append(s)
        try:
            env = _env(SARVAM_API_KEY=KEY, SARVAM_BASE_URL=f"http://127.0.0.1:{port}")
            began = time.monotonic()
            run = await cli("wait", "job-1", "--timeout", "1", env=env)
            took = time.monotonic() - began
        finally:
            for s in queued:
                s.close()
    assert run.code == 1, run.err
    # the check took what --timeout left, not its own 5 s, and the message names the option
    assert "no answer within --timeout 1s" in _one_clear_line(run.err)
    assert took - startup < 3.5


async def test_wait_for_a_job_already_over_needs_no_more_time(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.job_duration = 0.0
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url) as client:
        job = await client.speech_to_text_job.create_job()
        await job.upload_files(_wavs(tmp_path, "a.wav"))
        await job.start()
        await job.wait_until_complete(timeout=30)
    emulator.latency = 0.5  # the first look takes most of --timeout: none is left to wait
    run = await cli("wait", job.job_id, "--timeout", "0.8", env=_api_env(emulator))
    assert run.code == 0, run.err
    assert len(emulator.calls("status")) == 2  # the library's wait, then the command's look


async def test_library_words_become_the_commands_words(emulator: Emulator) -> None:
    env = _api_env(emulator)
    empty, bad_url, bad_env = await asyncio.gather(
        cli("status", "", env=env),
        cli("status", "job-1", "--base-url", "ftp://example.test", env=env),
        cli("status", "job-1", env={**env, "SARVAM_BASE_URL": "ftp://example.test"}),
    )
    assert empty.code == 2
    assert "JOB_ID: must be a non-empty string" in _one_clear_line(empty.err)
    assert bad_url.code == 2  # nothing was sent: the option is what to change
    line = _one_clear_line(bad_url.err)
    assert "--base-url must be an http(s) URL" in line and "base_url" not in line
    assert bad_env.code == 2  # the URL came from the environment: the message names it
    assert "SARVAM_BASE_URL must be an http(s) URL" in _one_clear_line(bad_env.err)


async def test_json_errors_are_json(emulator: Emulator) -> None:
    run = await cli("status", "no-such-job", "--json", env=_api_env(emulator))
    assert run.code == 1
    body = json.loads(run.out)["error"]
    assert "HTTP 404" in body["message"] and body["type"] == "NotFoundError"
    assert body["request_id"]
    assert body["message"] in _one_clear_line(run.err)


# ----------------------------------------------------------------------------- say what happened


async def test_job_ids_are_printed_as_created_and_in_json(
    emulator: Emulator, tmp_path: Path
) -> None:
    paths = _wavs(tmp_path / "in", "a.wav", "b.wav")
    run = await cli(
        "transcribe",
        *map(str, paths),
        "--out",
        str(tmp_path / "o"),
        "--json",
        "--poll-interval",
        "0.05",
        env=_api_env(emulator),
    )
    assert run.code == 0, run.err
    body = json.loads(run.out)  # stdout is JSON only
    [listed] = body["jobs"]
    assert [r.json()["job_id"] for r in emulator.calls("upload-files")] == [listed]
    assert f"job {listed} created (2 files)" in run.err
    assert [f["name"] for f in body["files"]] == ["a.wav", "b.wav"]
    assert all(f["ok"] and f["job_id"] == listed for f in body["files"])
    assert body["summary"]["Retries"] == "0 retries"


async def test_plain_progress_starts_at_once_and_never_goes_quiet(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.job_duration = 6.0  # longer than the plain output's longest silence (5 s)
    (wav,) = _wavs(tmp_path, "a.wav")
    run = await cli(
        "transcribe",
        str(wav),
        "--out",
        str(tmp_path / "o"),
        "--poll-interval",
        "0.5",
        "-v",
        env=_api_env(emulator),
    )
    assert run.code == 0, run.err
    lines = run.err.splitlines()
    assert lines[0].startswith("Planned: 1 file, 1 new upload"), lines[0]
    assert any(re.match(r"job \S+ created \(1 file\)", ln) for ln in lines)
    # Nothing finishes for 6 s: only the heartbeat can have said "0/1 files done".
    assert any("0/1 files done" in ln for ln in lines), run.err
    assert "polled job" in run.err  # -v shows the polling


async def test_the_summary_adds_up(emulator: Emulator, tmp_path: Path) -> None:
    paths = _wavs(tmp_path / "in", "a.wav", "b.wav", "c.wav")
    emulator.fail_next("status", count=2, status=429, retry_after=0)
    emulator.fail_next("upload-files", status=503, retry_after=0)
    emulator.fail_next("download-files", drop=True)
    base = ["--out", str(tmp_path / "o"), "--poll-interval", "0.05"]
    run = await cli("transcribe", *map(str, paths), *base, env=_api_env(emulator))
    assert run.code == 0, run.err
    match = re.search(r"Retries\s+(\d+) retr(?:y|ies) \(([^)]*)\)", run.out)
    assert match is not None, run.out
    causes = dict(part.split(": ") for part in match.group(2).split(", "))
    assert causes == {"429": "2", "503": "1", "dropped connections": "1"}, causes
    assert int(match.group(1)) == sum(map(int, causes.values()))
    assert "unpaced at the end" in run.out  # the pace, told as what happened
    assert re.search(r"Uploaded\s+\S+ \S+ in 3 files", run.out)

    emulator.fail_next("status", status=429, retry_after=0)
    (d,) = _wavs(tmp_path / "more", "d.wav")
    once = await cli("transcribe", str(d), *base, env=_api_env(emulator))
    assert re.search(r"Retries\s+1 retry \(429: 1\)", once.out), once.out


async def test_a_resumed_run_counts_uploads_it_did_not_plan(
    emulator: Emulator, tmp_path: Path
) -> None:
    paths = _wavs(tmp_path / "in", "a.wav", "b.wav")
    args = [
        "transcribe",
        *map(str, paths),
        "--out",
        str(tmp_path / "o"),
        "--manifest",
        str(tmp_path / "run.manifest"),
        "--poll-interval",
        "0.05",
    ]
    emulator.fail_next("start", status=409)  # the job is created, uploaded, never started
    first = await cli(*args, env=_api_env(emulator))
    assert first.code == 1, first.err
    again = await cli(*args, env=_api_env(emulator))  # re-attaches and uploads again
    assert again.code == 0, again.err
    assert len(emulator.calls("initiate")) == 1
    assert not re.search(r"\b[1-9]\d*/0\b", again.err), again.err  # not "2/0"
    assert re.search(r"Uploaded\s+\S+\s+2/2\b", again.err), again.err


# ----------------------------------------------------------------------------- demo, emulator


async def test_demo_cleans_up_unless_kept_and_stops_when_passes_stop_helping(
    tmp_path: Path,
) -> None:
    clean, kept, broken = tmp_path / "clean", tmp_path / "kept", tmp_path / "broken"
    for d in (clean, kept, broken):
        d.mkdir()
    quick = ["demo", "--files", "2", "--job-duration", "0.05", "--download-lag", "0"]
    procs = [
        await _start(*quick, env=_env(TMPDIR=str(clean))),
        await _start(*quick, "--keep", env=_env(TMPDIR=str(kept))),
        # every API call fails: bounded (one pass), reported, the files named. Seeded: how
        # long the client takes to give up depends on which refusals come (10-80 s)
        await _start(
            "demo", "--files", "3", "--fault-rate", "1", "--seed", "6", env=_env(TMPDIR=str(broken))
        ),
    ]
    cleaned, keeping, failing = await asyncio.gather(*(_finish(p, 90) for p in procs))
    assert cleaned.code == 0 and keeping.code == 0, cleaned.err + keeping.err
    assert list(clean.iterdir()) == []
    kept_dirs = sorted(p.name.rsplit("-", 1)[0] for p in kept.iterdir())
    assert kept_dirs == ["sarvam-async-demo-audio", "sarvam-async-demo-transcripts"]
    assert "Kept: audio in" in keeping.out

    assert failing.code == 1
    assert "3: 0 transcribed, 3 failed" in failing.out
    assert "Passes" not in failing.out  # no second pass that could not help
    for name in ("clip-0001.wav", "clip-0002.wav", "clip-0003.wav"):
        assert name in failing.out
    assert list(broken.iterdir()) == []
    assert "Traceback" not in failing.err


async def test_emulator_ctrl_c_is_a_normal_stop() -> None:
    import signal

    proc = await _start("emulator")
    assert proc.stdout is not None
    while b"SARVAM_API_KEY" not in await asyncio.wait_for(proc.stdout.readline(), 10):
        pass
    proc.send_signal(signal.SIGINT)
    run = await _finish(proc)
    assert run.code == 0, run.err
    assert "interrupted" not in run.err and "emulator stopped" in run.err


def test_library_names_become_the_commands_options() -> None:
    from sarvam_async._cli._runner import cli_words

    assert cli_words("job_parameters.model: unknown") == "--model: unknown"
    assert cli_words("'word' needs model='saaras:v4'") == "'word' needs --model 'saaras:v4'"
    assert (
        cli_words("raise timeout= if calls are slow") == "raise --request-timeout if calls are slow"
    )
    assert cli_words("pass allow_insecure_http=True") == "pass --allow-insecure-http"
    assert cli_words("output_dir: x") == "--out: x"
    # plain words in prose stay prose
    assert cli_words("the model and the timeout were fine") == "the model and the timeout were fine"
