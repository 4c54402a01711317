"""pytest fixtures for testing code that uses sarvam_async against the local emulator.

Installed with the package (entry point ``pytest11``), so any test suite can use them::

    async def test_my_pipeline(sarvam_client, tmp_path):
        job = await sarvam_client.speech_to_text_job.create_job({"language_code": "hi-IN"})
        ...

Fixtures (function scope):

``sarvam_emulator``
    A started :class:`sarvam_async.testing.Emulator` on loopback (a random port), closed
    after the test. Pass emulator options with ``@pytest.mark.sarvam_emulator(job_duration=2,
    rate_limit=600, fault_rate=0.1)``; script faults with ``sarvam_emulator.fail_next(...)``.
``sarvam_client``
    An open :class:`sarvam_async.AsyncSarvam` bound to ``sarvam_emulator``.
``sarvam_env``
    Sets ``SARVAM_API_KEY`` and ``SARVAM_BASE_URL`` to the emulator for the test, for code
    that builds its own client; returns the emulator.
``sarvam_api_key``
    The key the emulator accepts and the client sends (``"test-key"``); override it to
    change it.

The async fixtures run on pytest-asyncio's event loop when it is installed (in either
``asyncio_mode``; in strict mode mark the tests ``@pytest.mark.asyncio``), otherwise they are
plain async fixtures for another async plugin (such as anyio's) to run. Loading this plugin
imports nothing beyond pytest and sarvam_async's own dependencies, so suites that never
use the fixtures are unaffected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from sarvam_async import AsyncSarvam
    from sarvam_async.testing import Emulator

__all__ = ["sarvam_api_key", "sarvam_client", "sarvam_emulator", "sarvam_env"]

_F = TypeVar("_F", bound=Callable[..., Any])
_MARKER = "sarvam_emulator"


def _async_fixture(fn: _F) -> _F:
    """pytest-asyncio's fixture decorator when it is installed, else pytest's own."""
    try:
        import pytest_asyncio
    except ImportError:
        return cast(_F, pytest.fixture(fn))
    return cast(_F, pytest_asyncio.fixture(fn))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**options): keyword options of the sarvam_emulator fixture's Emulator "
        "(rate_limit=, latency=, job_duration=, fault_rate=, fault_drop=, seed=, ...)",
    )


@pytest.fixture
def sarvam_api_key() -> str:
    """The API key of the emulator and of the client; override the fixture to change it."""
    return "test-key"


@_async_fixture
async def sarvam_emulator(
    request: pytest.FixtureRequest, sarvam_api_key: str
) -> AsyncIterator[Emulator]:
    """A started local emulator of the batch API; see ``@pytest.mark.sarvam_emulator``."""
    from sarvam_async.testing import Emulator

    marker = request.node.get_closest_marker(_MARKER)
    options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    if marker is not None and marker.args:
        raise pytest.UsageError(f"@pytest.mark.{_MARKER} takes keyword options only")
    if "api_key" in options:
        raise pytest.UsageError(
            f"@pytest.mark.{_MARKER}: set the key by overriding the sarvam_api_key fixture"
        )
    async with Emulator(api_key=sarvam_api_key, **options) as emulator:
        yield emulator


@_async_fixture
async def sarvam_client(
    sarvam_emulator: Emulator, sarvam_api_key: str
) -> AsyncIterator[AsyncSarvam]:
    """An ``AsyncSarvam`` bound to ``sarvam_emulator`` (closed after the test)."""
    from sarvam_async import AsyncSarvam

    async with AsyncSarvam(api_key=sarvam_api_key, base_url=sarvam_emulator.url) as client:
        yield client


@pytest.fixture
def sarvam_env(
    sarvam_emulator: Emulator, sarvam_api_key: str, monkeypatch: pytest.MonkeyPatch
) -> Emulator:
    """Point ``SARVAM_API_KEY`` / ``SARVAM_BASE_URL`` at the emulator; returns it."""
    monkeypatch.setenv("SARVAM_API_KEY", sarvam_api_key)
    monkeypatch.setenv("SARVAM_BASE_URL", sarvam_emulator.url)
    return sarvam_emulator
