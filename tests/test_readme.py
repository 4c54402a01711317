"""The README as a new user meets it: every Python block runs as written, against the emulator."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import wave
from pathlib import Path

import pytest

from sarvam_async.testing import Emulator

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text("utf-8")
BLOCKS = re.findall(r"^```python\n(.*?)^```$", README, re.MULTILINE | re.DOTALL)
KEY = "readme-key"


def _setup_commands() -> list[str]:
    setup = README[README.index("## Set-up") :]
    block = re.search(r"```sh\n(.*?)```", setup, re.DOTALL)
    assert block is not None
    return block.group(1).strip().splitlines()


def test_the_readme_has_the_blocks_it_promises() -> None:
    assert len(BLOCKS) >= 5  # quick start, asyncio.run, thousands of files, timestamps, pytest


@pytest.mark.parametrize("number", range(len(BLOCKS)))
async def test_python_block_runs_as_written(number: int, tmp_path: Path) -> None:
    code = BLOCKS[number]
    calls = tmp_path / "calls"  # the "Thousands of files" block's inputs
    calls.mkdir()
    for name in ("a.wav", "b.wav"):
        with wave.open(str(calls / name), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16_000)
            w.writeframes(b"\0\1" * 1600)
    is_test = "def test_" in code
    script = tmp_path / ("test_block.py" if is_test else "block.py")
    script.write_text(code, "utf-8")
    command = (
        ["-m", "pytest", "-q", "-p", "no:cacheprovider", script.name] if is_test else [script.name]
    )
    async with Emulator(api_key=KEY) as emu:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SARVAM_", "PYTEST_"))}
        env.update(SARVAM_API_KEY=KEY, SARVAM_BASE_URL=emu.url, PYTHONIOENCODING="utf-8")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *command,
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 45)
    text = out.decode()
    assert proc.returncode == 0, f"README block {number + 1}:\n{code}\n---\n{text}"
    assert "Traceback" not in text or is_test
    if "transcribe_files(" in code and "calls" in code:
        assert text.count(" ok") == 2, text  # both inputs transcribed


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    demo, tests = _setup_commands()
    assert demo.endswith("&& sarvam-async demo")
    ci = (ROOT / ".ci" / "run").read_text("utf-8").splitlines()
    assert tests in ci, tests
    assert tests == "pip install -e '.[test]' && python -m pytest"
