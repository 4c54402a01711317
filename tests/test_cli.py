"""The ``sarvam-async`` command, run for real in subprocesses against the emulator."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

import pytest

from sarvam_async import AsyncSarvam
from sarvam_async._cli._parser import fault_statuses
from sarvam_async.jobs import BatchJob
from sarvam_async.testing import Emulator

from .conftest import KEY


@dataclass
class Run:
    code: int
    out: str
    err: str


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SARVAM_")}
    env.update(COLUMNS="200", PYTHONIOENCODING="utf-8", **extra)
    return env


async def _start(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sarvam_async",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env if env is not None else _env(),
    )


async def _finish(proc: asyncio.subprocess.Process, timeout: float = 30.0) -> Run:
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


async def cli(*args: str, env: dict[str, str] | None = None) -> Run:
    return await _finish(await _start(*args, env=env))


def _api_env(emulator: Emulator) -> dict[str, str]:
    return _env(SARVAM_API_KEY=KEY, SARVAM_BASE_URL=emulator.url)


def _wavs(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        path = folder / name
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16_000)
            w.writeframes(bytes([i, 0]) * 1600)
        paths.append(path)
    return paths


def _one_clear_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("sarvam-async: error: ")
    return lines[0]


async def test_a_key_with_its_newline_exits_2_naming_where_it_came_from(
    emulator: Emulator,
) -> None:
    # before: aiohttp's ValueError, reported as a bug, exit 1
    from_env, from_flag = await asyncio.gather(
        cli("status", "job-1", env=_env(SARVAM_API_KEY=KEY + "\n", SARVAM_BASE_URL=emulator.url)),
        cli("status", "job-1", "--api-key", KEY + "\n", "--base-url", emulator.url),
    )
    assert (from_env.code, from_flag.code) == (2, 2)
    assert "SARVAM_API_KEY" in _one_clear_line(from_env.err)
    assert "--api-key" in _one_clear_line(from_flag.err)
    assert KEY not in from_env.err + from_flag.err
    assert emulator.requests == []


async def test_empty_paths_and_malformed_callback_urls_are_usage_errors(tmp_path: Path) -> None:
    # before: '' (an unset variable) transcribed the current folder, and a malformed
    # --callback-url printed a traceback
    (wav,) = _wavs(tmp_path, "a.wav")
    runs = await asyncio.gather(
        cli("transcribe", "", "--out", str(tmp_path / "o"), "--api-key", "k"),
        cli("transcribe", str(wav), "--out", "", "--api-key", "k"),
        cli("transcribe", str(wav), "--out", "o", "--manifest", "", "--api-key", "k"),
        cli(
            "transcribe",
            str(wav),
            "--out",
            "o",
            "--api-key",
            "k",
            "--callback-url",
            "http://[::1/cb",
            "--callback-listen",
            "127.0.0.1:0",
        ),
        cli("demo", "--files", "99999999999"),
        cli("transcribe", str(wav), "--out", "o", "--manifest", str(tmp_path), "--api-key", "k"),
    )
    assert [r.code for r in runs] == [2, 2, 2, 2, 2, 2], [r.err for r in runs]
    assert all("Traceback" not in r.err for r in runs)
    assert "empty path" in runs[0].err and "empty path" in runs[1].err
    assert "--manifest: an empty path" in runs[2].err
    assert "--callback-url must be an http(s) URL" in runs[3].err
    assert "at most 10,000 files" in runs[4].err
    assert "is a folder; give the journal's file path" in runs[5].err


async def test_demo_refuses_a_job_that_never_ends_and_a_rate_that_is_not_a_number() -> None:
    endless, nan = await asyncio.gather(
        cli("demo", "--job-duration", "inf"), cli("demo", "--fault-rate", "nan")
    )
    assert (endless.code, nan.code) == (2, 2)
    assert "finite number" in endless.err and "finite number" in nan.err


async def test_a_demo_stopped_early_says_where_its_transcripts_are_only_if_kept(
    tmp_path: Path,
) -> None:
    # before: it named the temporary folder it was about to remove
    async def stopped(*flags: str) -> Run:
        temp = tmp_path / ("kept" if flags else "removed")  # the demo's folders go here
        temp.mkdir()
        proc = await _start("demo", "--job-duration", "30", *flags, env=_env(TMPDIR=str(temp)))
        assert proc.stderr is not None
        seen = b""
        while b"created (" not in seen:  # the run has begun: a job exists
            line = await asyncio.wait_for(proc.stderr.readline(), 30)
            assert line, "the demo exited early"
            seen += line
        proc.send_signal(signal.SIGINT)
        run = await _finish(proc)
        run.err = seen.decode() + run.err
        return run

    removed, kept = await asyncio.gather(stopped(), stopped("--keep"))
    assert "go with its temporary folders (--keep keeps them)" in removed.err, removed.err
    assert "their transcripts are in" not in removed.err
    assert not list((tmp_path / "removed").iterdir())  # and they did go
    where = Path(kept.err.split("their transcripts are in ", 1)[1].split()[0])
    assert where.is_dir() and where.parent == tmp_path / "kept"


# ----------------------------------------------------------------------------- help, usage


async def test_help_for_every_command() -> None:
    expected = {
        (): "COMMAND",
        ("demo",): "--fault-rate",
        ("transcribe",): "--manifest",
        ("status",): "--json",
        ("wait",): "--timeout",
        ("download",): "--out",
        ("emulator",): "--fault-429",
    }
    runs = await asyncio.gather(*(cli(*args, "--help") for args in expected))
    for (args, flag), run in zip(expected.items(), runs, strict=True):
        assert run.code == 0, (args, run.err)
        assert run.out.startswith("usage: sarvam-async"), args
        assert flag in run.out, args
        assert "--verbose" in run.out, args
        # the emulator and the demo never talk to a real account
        assert ("--base-url" in run.out) == (args not in {("emulator",), ("demo",)}), args


async def test_usage_errors_and_a_missing_key_exit_2(tmp_path: Path) -> None:
    (wav,) = _wavs(tmp_path, "a.wav")
    runs = await asyncio.gather(
        cli("transcribe", str(wav)),  # no --out
        cli("transcribe", str(wav), "--out", "x", "--speakers", "2"),
        cli("transcribe", str(wav), "--out", "x", "--translate", "--language", "hi-IN"),
        cli("demo", "--fault-rate", "2"),
        cli("emulator", "--fault-429", "0.7", "--fault-503", "0.5"),
        cli("transcribe", str(tmp_path / "missing.wav"), "--out", "x", "--api-key", "k"),
        cli("status", "job-1"),  # no key anywhere
        cli("demo", "--base-url", "http://127.0.0.1:9", "--api-key", "k"),
        cli("--api-key", "k", "demo"),  # before the command too
        cli("demo", "--base-url", ""),  # given, if empty
        cli("--base-url", "http://127.0.0.1:9", "emulator"),
    )
    assert [r.code for r in runs] == [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]
    assert "--out" in runs[0].err
    assert "--speakers needs --diarize" in runs[1].err
    assert "--language cannot be used with --translate" in runs[2].err
    assert "probability" in runs[3].err
    assert "must not exceed 1" in runs[4].err
    assert "not found: " in _one_clear_line(runs[5].err)
    assert "pass --api-key KEY or set SARVAM_API_KEY" in _one_clear_line(runs[6].err)
    # the demo never uses a real URL or key: it says so instead of ignoring them
    assert "--base-url, --api-key: demo runs its own emulator" in runs[7].err
    assert "--api-key: demo runs its own emulator" in runs[8].err
    assert "--base-url: demo runs its own emulator" in runs[9].err
    assert "--base-url: the emulator serves on --host/--port" in runs[10].err


def test_fault_options_map_onto_weighted_statuses() -> None:
    assert fault_statuses(0.0, 0.0) == (0.0, (429, 503))
    rate, statuses = fault_statuses(0.1, 0.05)
    assert rate == pytest.approx(0.15) and statuses == (429, 429, 503)
    assert fault_statuses(0.0, 0.2) == (0.2, (503,))
    assert fault_statuses(0.3, 0.0) == (0.3, (429,))


# ----------------------------------------------------------------------------- rich


_BLOCK_RICH = """
import sys

class BlockRich:
    def find_spec(self, name, path=None, target=None):
        if name == "rich" or name.startswith("rich."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, BlockRich())
from sarvam_async.cli import main
sys.exit(main(sys.argv[1:]))
"""

_NO_RICH_ON_IMPORT = """
import sys
import sarvam_async, sarvam_async.cli, sarvam_async.pytest_plugin, sarvam_async.testing
loaded = sorted(m for m in sys.modules if m == "rich" or m.startswith("rich."))
assert not loaded, loaded
"""


async def test_missing_rich_says_how_to_install_it() -> None:
    async def python(*args: str) -> Run:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_env(),
        )
        return await _finish(proc)

    demo, helped, imported = await asyncio.gather(
        python("-c", _BLOCK_RICH, "demo", "--files", "1"),
        python("-c", _BLOCK_RICH, "demo", "--help"),
        python("-c", _NO_RICH_ON_IMPORT),
    )
    assert demo.code == 1
    assert "pip install 'sarvam-async[cli]'" in _one_clear_line(demo.err)
    assert helped.code == 0 and "--files" in helped.out  # help needs no rich
    assert imported.code == 0, imported.err


# ----------------------------------------------------------------------------- demo


async def test_demo_with_faults_transcribes_every_file(tmp_path: Path) -> None:
    out = tmp_path / "transcripts"
    run = await cli(
        "demo",
        "--files",
        "30",
        "--fault-rate",
        "0.2",
        "--seed",
        "5",
        "--job-duration",
        "0.2",
        "--out",
        str(out),
    )
    assert run.code == 0, run.err
    assert "30: 30 transcribed, 0 failed" in run.out
    refused = re.search(
        r"Emulator refused\s+(\d+) \(429: (\d+), 503: (\d+), dropped: (\d+)\)", run.out
    )
    assert refused is not None, run.out
    total, *kinds = map(int, refused.groups())
    assert total == sum(kinds) > 0, run.out  # faults happened, and their count adds up
    match = re.search(r"^Transcripts: (.+)$", run.out, re.MULTILINE)
    assert match is not None and Path(match.group(1)) == out
    written = sorted(out.iterdir())
    assert len(written) == 30 and all(p.suffix == ".json" for p in written)
    assert json.loads(written[0].read_text("utf-8"))["transcript"]
    assert "Traceback" not in run.err


# ----------------------------------------------------------------------------- transcribe


async def test_transcribe_reports_failures_and_resumes_from_the_manifest(
    emulator: Emulator, tmp_path: Path
) -> None:
    paths = _wavs(tmp_path / "in", "a.wav", "b.wav", "c.wav", "d.wav")
    out, manifest = tmp_path / "out", tmp_path / "run.manifest"
    emulator.fail_file("c.wav", message="Audio could not be decoded")
    emulator.fail_next("upload-files", drop=True)  # absorbed by a retry, logged with --verbose
    args = [
        "transcribe",
        *map(str, paths),
        "--out",
        str(out),
        "--manifest",
        str(manifest),
        "--language",
        "hi-IN",
        "--poll-interval",
        "0.05",
    ]
    first = await cli(*args, "--verbose", env=_api_env(emulator))
    assert first.code == 1, first.err
    assert "4: 3 transcribed, 1 failed" in first.out
    assert re.search(r"c\.wav\s+API Error\s+Audio could not be decoded", first.out)
    assert "retrying POST /speech-to-text/job/v1/upload-files" in first.err  # --verbose: logs
    assert KEY not in first.out + first.err  # the key is never printed or logged
    assert sorted(p.name for p in out.iterdir()) == ["a.wav.json", "b.wav.json", "d.wav.json"]
    assert emulator.calls("initiate")[-1].json()["job_parameters"] == {"language_code": "hi-IN"}

    again = await cli(*args, env=_api_env(emulator))
    assert again.code == 1  # the API's verdict on c.wav is journaled, not retried
    assert "3 already done, from the manifest" in again.out
    assert len(emulator.calls("initiate")) == 1  # nothing was submitted twice


async def test_ctrl_c_stops_cleanly_and_the_manifest_resumes(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.job_duration = 1.0
    paths = _wavs(tmp_path / "in", "a.wav", "b.wav", "c.wav")
    out, manifest = tmp_path / "out", tmp_path / "run.manifest"
    args = ["transcribe", *map(str, paths), "--out", str(out), "--manifest", str(manifest)]
    proc = await _start(*args, "--poll-interval", "0.05", env=_api_env(emulator))
    for _ in range(1500):  # up to 30 s: a loaded machine starts the command slowly
        if emulator.calls("start"):
            break
        await asyncio.sleep(0.02)
    assert emulator.calls("start"), "the job never started"
    proc.send_signal(signal.SIGINT)
    stopped = await _finish(proc)
    assert stopped.code == 130, stopped.err
    assert "Traceback" not in stopped.err
    assert "0 of 3 files transcribed" in stopped.err and "resume" in stopped.err
    assert not out.exists() or not list(out.iterdir())  # nothing half-written

    resumed = await cli(*args, "--poll-interval", "0.05", env=_api_env(emulator))
    assert resumed.code == 0, resumed.err
    assert sorted(p.name for p in out.iterdir()) == ["a.wav.json", "b.wav.json", "c.wav.json"]
    assert len(emulator.calls("initiate")) == 1 and len(emulator.calls("start")) == 1


# ----------------------------------------------------------------------------- one job


async def test_status_wait_download_json(emulator: Emulator, tmp_path: Path) -> None:
    async def started_job(duration: float) -> BatchJob:
        emulator.job_duration = duration
        async with AsyncSarvam(api_key=KEY, base_url=emulator.url) as client:
            job = await client.speech_to_text_job.create_job()
            await job.upload_files(_wavs(tmp_path / "in", "x.wav", "y.wav"))
            await job.start()
        return job

    env = _api_env(emulator)
    slow = await started_job(3600.0)  # not done while the CLI starts, however slowly
    early = await cli("download", slow.job_id, "--out", str(tmp_path / "early"), env=env)
    assert early.code == 1
    assert f"run 'sarvam-async wait {slow.job_id}' first" in _one_clear_line(early.err)

    job = await started_job(0.3)

    waited = await cli("wait", job.job_id, "--json", "--poll-interval", "0.05", env=env)
    assert waited.code == 0, waited.err
    assert json.loads(waited.out)["job_state"] == "Completed"

    out = tmp_path / "out"
    status, human, downloaded = await asyncio.gather(
        cli("status", job.job_id, "--json", env=env),
        cli("status", job.job_id, env=env),
        cli("download", job.job_id, "--out", str(out), "--json", env=env),
    )
    assert status.code == human.code == downloaded.code == 0, downloaded.err
    body = json.loads(status.out)
    assert body["job_id"] == job.job_id and body["successful_files_count"] == 2
    assert "Completed" in human.out and "x.wav" in human.out
    files = json.loads(downloaded.out)
    assert [f["name"] for f in files] == ["x.wav", "y.wav"] and all(f["ok"] for f in files)
    assert all(Path(f["output_path"]).is_file() for f in files)
    assert Path(files[0]["output_path"]).parent == out


async def test_api_errors_are_one_line_with_the_request_id(emulator: Emulator) -> None:
    bad_key = _env(SARVAM_API_KEY="wrong-key", SARVAM_BASE_URL=emulator.url)
    wrong, unknown, translate = await asyncio.gather(
        cli("status", "job-1", env=bad_key),
        cli("status", "no-such-job", "--json", env=_api_env(emulator)),
        cli("wait", "no-such-job", "--translate", env=_api_env(emulator)),
    )
    for run, status in ((wrong, "403"), (unknown, "404"), (translate, "404")):
        assert run.code == 1
        line = _one_clear_line(run.err)
        assert f"HTTP {status}" in line and "request_id=" in line, line
        assert run.out == ("" if run is not unknown else run.out)  # --json: the error as JSON
    assert json.loads(unknown.out)["error"]["type"] == "NotFoundError"
    assert "SARVAM_API_KEY" in wrong.err  # says what to do
    assert "/speech-to-text-translate/" in translate.err


async def test_transcribe_with_a_bad_key_stops_with_one_line(
    emulator: Emulator, tmp_path: Path
) -> None:
    paths = _wavs(tmp_path, "a.wav")
    bad_key = _env(SARVAM_BASE_URL=emulator.url)
    run = await cli(
        "transcribe",
        *map(str, paths),
        "--out",
        str(tmp_path / "o"),
        "--api-key",
        "nope",
        env=bad_key,
    )
    assert run.code == 1
    progress, error = run.err.splitlines()  # plain progress starts at once, then the error
    assert progress.startswith("Planned: 1 file")
    assert "HTTP 403" in _one_clear_line(error)


# ----------------------------------------------------------------------------- emulator


async def test_emulator_command_serves_until_ctrl_c() -> None:
    proc = await _start(
        "emulator", "--api-key", "k1", "--fault-503", "0.0", "--job-duration", "0", "--port", "0"
    )
    assert proc.stdout is not None
    url = None
    lines = []
    while url is None:
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        assert line, "the emulator exited early"
        lines.append(line)
        if "SARVAM_BASE_URL=" in line:
            url = line.split("=", 1)[1].strip()
    key_line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
    assert key_line.strip() == "export SARVAM_API_KEY=k1"
    assert lines[0].startswith("Sarvam API emulator listening on http://127.0.0.1:")
    async with AsyncSarvam(api_key="k1", base_url=url) as client:
        job = await client.speech_to_text_job.create_job()
        assert (await job.get_status()).job_state == "Accepted"
    proc.send_signal(signal.SIGINT)
    run = await _finish(proc)
    assert run.code == 0  # Ctrl-C is how it is meant to stop
    assert "emulator stopped: 2 API requests (200: 1, 202: 1)" in run.err
    assert "Traceback" not in run.err


# ----------------------------------------------------------------------------- live fidelity


async def test_download_waits_out_the_lag_behind_status(emulator: Emulator, tmp_path: Path) -> None:
    emulator.download_lag = 6.0  # outlasts the command's start-up, also on a loaded machine
    async with AsyncSarvam(api_key=KEY, base_url=emulator.url) as client:
        job = await client.speech_to_text_job.create_job()
        await job.upload_files(_wavs(tmp_path / "in", "x.wav"))
        await job.start()
    out = tmp_path / "out"
    run = await cli("download", job.job_id, "--out", str(out), "--json", env=_api_env(emulator))
    assert run.code == 0, run.err
    [entry] = json.loads(run.out)
    assert entry["ok"] and Path(entry["output_path"]).is_file()
    assert emulator.stats.not_ready >= 1  # the command did meet the lag


async def test_transcribe_timestamps_word_segment_and_chunk(
    emulator: Emulator, tmp_path: Path
) -> None:
    (wav,) = _wavs(tmp_path / "in", "a.wav")
    env = _api_env(emulator)
    base = ["transcribe", str(wav), "--language", "en-IN", "--poll-interval", "0.05"]
    word, segment, chunk, refused = await asyncio.gather(
        cli(
            *base,
            "--out",
            str(tmp_path / "w"),
            "--model",
            "saaras:v4",
            "--timestamps",
            "word",
            env=env,
        ),
        cli(*base, "--out", str(tmp_path / "s"), "--timestamps=segment", env=env),
        cli(*base, "--out", str(tmp_path / "c"), "--timestamps", env=env),
        cli(*base, "--out", str(tmp_path / "r"), "--timestamps", "word", env=env),
    )
    assert word.code == segment.code == chunk.code == 0, word.err + segment.err + chunk.err
    assert re.search(r"Timestamps\s+[1-9][\d,]* timed words in 1 transcripts", word.out)
    assert re.search(r"Timestamps\s+[1-9][\d,]* timed segments in 1 transcripts", segment.out)
    assert "Timestamps" not in chunk.out
    sent = [r.json()["job_parameters"] for r in emulator.calls("initiate")]
    assert {"model": "saaras:v4", "language_code": "en-IN", "timestamp_granularity": "word"} in sent
    assert {"language_code": "en-IN", "timestamp_granularity": "segment"} in sent
    assert {"language_code": "en-IN", "with_timestamps": True} in sent
    assert len(sent) == 3  # the fourth was refused before anything was sent
    assert refused.code == 2 and "saaras:v4" in _one_clear_line(refused.err)
    words = json.loads((tmp_path / "w" / "a.wav.json").read_text("utf-8"))["words"]
    assert words and set(words[0]) == {"text", "start", "end"}


async def test_demo_summary_shows_the_download_lag_absorbed(tmp_path: Path) -> None:
    run = await cli(
        "demo",
        "--files",
        "5",
        "--job-duration",
        "0.1",
        "--download-lag",
        "1",
        "--out",
        str(tmp_path / "out"),
    )
    assert run.code == 0, run.err
    match = re.search(r"Download lag absorbed\s+(\d+) 'not yet' answers", run.out)
    assert match is not None and int(match.group(1)) >= 1, run.out


async def test_emulator_command_sends_retry_after_ms_only_when_asked() -> None:
    import aiohttp

    async def headers_of(*flags: str) -> dict[str, str]:
        proc = await _start("emulator", "--fault-429", "1", *flags)
        assert proc.stdout is not None
        url = None
        while url is None:
            line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
            assert line, "the emulator exited early"
            if "SARVAM_BASE_URL=" in line:
                url = line.split("=", 1)[1].strip()
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{url}/speech-to-text/job/v1/j/status") as resp,
            ):
                assert resp.status == 429
                return {k.lower(): v for k, v in resp.headers.items()}
        finally:
            proc.send_signal(signal.SIGINT)
            await _finish(proc)

    plain, precise = await asyncio.gather(headers_of(), headers_of("--retry-after-ms"))
    assert plain["retry-after"] == "1" and "retry-after-ms" not in plain
    assert precise["retry-after"] == "1" and 10 <= int(precise["retry-after-ms"]) <= 100
