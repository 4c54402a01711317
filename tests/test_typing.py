"""The public signatures type-check as users write them (``mypy --strict tests/typing``)."""

from __future__ import annotations

from pathlib import Path

from mypy import api

TYPING = Path(__file__).parent / "typing"


def test_main_calls_type_check_strictly(tmp_path: Path) -> None:
    # a cache of its own: test workers run mypy at once, and must not share one
    cache = f"--cache-dir={tmp_path / 'mypy'}"
    out, err, status = api.run(["--strict", "--no-error-summary", cache, str(TYPING)])
    assert status == 0, out + err


def test_a_wrong_call_is_caught(tmp_path: Path) -> None:
    """The check can fail: a misspelt keyword and a wrong timeout type are errors."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from sarvam_async import AsyncSarvam\n"
        "async def f(c: AsyncSarvam) -> None:\n"
        "    await c.speech_to_text_job.get_status('j', timeout='5')\n"
        "    c.transcribe_files([], output_dir='o', max_jobs=2)\n"
    )
    cache = f"--cache-dir={tmp_path / 'mypy'}"
    out, _, status = api.run(["--strict", "--no-error-summary", cache, str(bad)])
    assert status == 1 and out.count("error:") == 2, out
