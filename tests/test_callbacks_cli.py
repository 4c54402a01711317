"""``transcribe --callback-url/--callback-listen`` and ``demo --callbacks``, run for real."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from sarvam_async.testing import Emulator

from .test_cli import _api_env, _wavs, cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_transcribe_waits_on_callbacks_served_in_process(
    emulator: Emulator, tmp_path: Path
) -> None:
    emulator.job_duration = 0.2
    port = _free_port()
    paths = _wavs(tmp_path / "in", *(f"clip-{i}.wav" for i in range(25)))
    run = await cli(
        "transcribe",
        *map(str, paths),
        "--out",
        str(tmp_path / "out"),
        "--callback-url",
        f"http://127.0.0.1:{port}/hooks/sarvam",
        "--callback-listen",
        f"127.0.0.1:{port}",
        "--callback-safety-poll",
        "1000",  # only a callback can end these waits in time
        "--verbose",
        env=_api_env(emulator),
    )
    assert run.code == 0, run.err
    assert "25: 25 transcribed, 0 failed" in run.out
    assert len(emulator.calls("status")) == 2  # one confirmation per job, no polling
    sent = emulator.calls("initiate")[0].json()["callback"]
    assert sent["url"] == f"http://127.0.0.1:{port}/hooks/sarvam"
    assert sent["auth_token"] not in run.out + run.err  # never printed, never logged
    assert [d.status for d in emulator.callback_deliveries] == [200, 200]


async def test_callback_options_go_together(tmp_path: Path) -> None:
    wav = _wavs(tmp_path, "a.wav")[0]
    alone = await cli("transcribe", str(wav), "--out", "o", "--callback-url", "https://x/h")
    assert alone.code == 2 and "go together" in alone.err
    bad = await cli("transcribe", str(wav), "--out", "o", "--callback-listen", "nonsense")
    assert bad.code == 2 and "HOST:PORT" in bad.err


async def test_demo_summary_shows_calls_saved_versus_polling(tmp_path: Path) -> None:
    run = await cli(
        "demo",
        "--files",
        "40",
        "--job-duration",
        "1",
        "--download-lag",
        "0",
        "--callbacks",
        "--out",
        str(tmp_path / "out"),
    )
    assert run.code == 0, run.err
    text = " ".join(run.out.split())
    match = re.search(r"Status calls (\d+) with callbacks; .* about (\d+) \((\d+) saved\)", text)
    assert match is not None, run.out
    made, polling, saved = map(int, match.groups())
    assert made == 2 and polling > made and saved == polling - made
