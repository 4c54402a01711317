"""The pytest plugin: its fixtures used directly, and in fresh pytest runs (pytester)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sarvam_async import AsyncSarvam, JobState
from sarvam_async.testing import Emulator

pytest_plugins = ["pytester"]


async def test_fixtures_give_a_client_bound_to_a_started_emulator(
    sarvam_client: AsyncSarvam, sarvam_emulator: Emulator, tmp_path: Path
) -> None:
    assert sarvam_client.base_url == sarvam_emulator.url
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"RIFF" + bytes(64))
    outcomes = [
        o
        async for o in sarvam_client.transcribe_files(
            [audio], output_dir=tmp_path / "out", poll_interval=0.01
        )
    ]
    assert [o.ok for o in outcomes] == [True]
    assert len(sarvam_emulator.calls("initiate")) == 1


@pytest.mark.sarvam_emulator(job_duration=7.0, latency=0.001)
async def test_marker_passes_emulator_options(sarvam_emulator: Emulator) -> None:
    assert sarvam_emulator.job_duration == 7.0
    assert sarvam_emulator.latency == 0.001


@pytest.fixture
def sarvam_api_key() -> str:  # overriding the plugin's fixture changes both sides
    return "my-own-key"


async def test_sarvam_env_points_new_clients_at_the_emulator(sarvam_env: Emulator) -> None:
    assert os.environ["SARVAM_BASE_URL"] == sarvam_env.url
    assert os.environ["SARVAM_API_KEY"] == "my-own-key"
    async with AsyncSarvam() as client:  # configured from the environment alone
        job = await client.speech_to_text_job.create_job()
        assert (await job.get_status()).job_state == JobState.ACCEPTED


_INNER = """
import pytest
from sarvam_async import JobState

{marker}
async def test_job(sarvam_client, sarvam_emulator):
    job = await sarvam_client.speech_to_text_job.create_job()
    sarvam_emulator.fail_next("status", status=503, retry_after_ms=1)
    assert (await job.get_status()).job_state == JobState.ACCEPTED
    assert sarvam_client.stats.retries == 1
"""


@pytest.mark.parametrize(("mode", "marker"), [("auto", ""), ("strict", "@pytest.mark.asyncio")])
def test_fixtures_work_in_both_pytest_asyncio_modes(
    pytester: pytest.Pytester, mode: str, marker: str
) -> None:
    pytester.makeini(
        f"[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(_INNER.format(marker=marker))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_plugin_leaves_suites_without_asyncio_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_plain():
            assert not any(m == "rich" or m.startswith("rich.") for m in sys.modules)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:asyncio", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    listed = pytester.runpytest_subprocess("-p", "no:asyncio", "--fixtures")
    assert "sarvam_client" in listed.stdout.str() and "sarvam_emulator" in listed.stdout.str()
