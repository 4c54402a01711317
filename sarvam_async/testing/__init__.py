"""A stateful local emulator of Sarvam AI's speech-to-text batch job API, for tests and demos.

``Emulator`` is a real HTTP server on loopback that speaks the batch API's JSON (initiate,
upload-files, start, status, download-files) and serves the presigned storage URLs it hands
out. It records every request, can script faults (``fail_next``), fail files (``fail_file``),
expire URLs, deliver job callbacks (and fault them: ``fail_next_callback``), rate-limit like
the live service and run jobs on a clock that tests can drive (``ManualClock``).

    async with Emulator(api_key="test-key") as emu:
        ...  # point a client at emu.url
"""

from ._callbacks import CallbackDelivery, CallbackFaults
from ._clock import ManualClock
from ._emulator import Emulator, run
from ._recording import RecordedRequest, Stats
from ._state import JobFile, JobView, StoredInput

__all__ = [
    "CallbackDelivery",
    "CallbackFaults",
    "Emulator",
    "JobFile",
    "JobView",
    "ManualClock",
    "RecordedRequest",
    "Stats",
    "StoredInput",
    "run",
]
