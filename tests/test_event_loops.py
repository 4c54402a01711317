"""One client, several event loops: it follows a finished loop's caller to the next loop,
and refuses (EventLoopError) to serve two live loops at once."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import warnings
from collections.abc import Iterator

import pytest

from sarvam_async import AsyncSarvam, errors
from sarvam_async.testing import Emulator

from .conftest import KEY


@contextlib.contextmanager
def emulator_thread() -> Iterator[tuple[Emulator, asyncio.AbstractEventLoop]]:
    """An emulator serving from its own thread and loop, so the test's loops can come and go."""
    ready = threading.Event()
    box: dict[str, object] = {}

    async def main() -> None:
        stop = asyncio.Event()
        async with Emulator(api_key=KEY) as emu:
            box.update(emu=emu, loop=asyncio.get_running_loop(), stop=stop)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10)
    loop = box["loop"]
    assert isinstance(loop, asyncio.AbstractEventLoop)
    try:
        yield box["emu"], loop  # type: ignore[misc]
    finally:
        loop.call_soon_threadsafe(box["stop"].set)  # type: ignore[attr-defined]
        thread.join(10)


def test_one_client_follows_asyncio_run_from_loop_to_loop() -> None:
    with emulator_thread() as (emu, _):
        # One slot: concurrent calls queue on the limiter's semaphore, binding it to a loop.
        client: AsyncSarvam | None = AsyncSarvam(
            api_key=KEY, base_url=emu.url, max_connections=1, max_transfers=1, adaptive_rate=False
        )

        async def burst() -> int:
            assert client is not None
            jobs = await asyncio.gather(*(client.speech_to_text_job.create_job() for _ in range(4)))
            return len(jobs)

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert asyncio.run(burst()) == 4
            assert asyncio.run(burst()) == 4
            asyncio.run(client.aclose())  # type: ignore[union-attr]
            client = None
            gc.collect()
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == [], [str(w.message) for w in leaks]


def test_two_live_loops_at_once_is_a_typed_error() -> None:
    with emulator_thread() as (emu, _):
        client = AsyncSarvam(api_key=KEY, base_url=emu.url, adaptive_rate=False)
        emu.fail_next("status", delay=1.0)  # keeps the first thread's call in flight
        started = threading.Event()
        outcome: dict[str, object] = {}

        def other_thread() -> None:
            async def slow() -> None:
                started.set()
                with contextlib.suppress(errors.SarvamError):
                    await client.speech_to_text_job.get_status("j")

            asyncio.run(slow())

        worker = threading.Thread(target=other_thread)
        worker.start()
        started.wait(5)

        async def here() -> None:
            await asyncio.sleep(0.1)  # the other loop's call is in flight by now
            try:
                await client.speech_to_text_job.get_status("j")
            except errors.SarvamError as exc:
                outcome["error"] = exc

        asyncio.run(here())
        worker.join(10)
        asyncio.run(client.aclose())
    assert isinstance(outcome.get("error"), errors.EventLoopError)
    assert isinstance(outcome["error"], RuntimeError)  # what a caller may already catch
    with pytest.raises(errors.EventLoopError, match="one client per thread"):
        raise outcome["error"]  # type: ignore[misc]
