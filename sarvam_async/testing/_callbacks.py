"""Job-completion webhooks, delivered only to loopback addresses.

When a job initiated with ``callback: {url, auth_token?}`` becomes terminal, the emulator POSTs
``{job_id, job_state, created_at, completed_at, total_files, processed_files, failed_files}``
(the payload the cookbook describes, ``job_state`` in lower case as in its example, although
the status API says ``Completed``) with header
``X-SARVAM-JOB-CALLBACK-TOKEN`` when a token was given. One attempt, 30 s timeout; the outcome
(HTTP status or ``"error: <Exception>"``) is kept in the job's ``callback_status``. URLs that
are not on a loopback address are never contacted (``callback_status`` says ``skipped``).

Deliveries can be faulted, as a flaky network or sender would: ``lost`` (never sent),
``duplicated`` (sent twice), ``delayed`` (sent late) and ``wrong_token`` (sent with a token
that is not the job's). Scripted faults (``script``) are consumed first, one per callback;
otherwise :class:`CallbackFaults` draws one fault (or none) per callback from its seed.
Every attempt is logged as a :class:`CallbackDelivery`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections import deque
from dataclasses import dataclass
from typing import Literal

import aiohttp
import msgspec
from yarl import URL

from ._clock import WallClock
from ._state import Job

_POLL = 0.05

CallbackFault = Literal["lost", "duplicated", "delayed", "wrong_token"]


@dataclass(frozen=True, slots=True)
class CallbackFaults:
    """Random faults of callback deliveries: each a probability per callback (sum <= 1).

    ``delay`` is how late (emulator clock seconds) a ``delayed`` callback is sent; ``seed``
    makes the draws reproducible.
    """

    lost: float = 0.0
    duplicated: float = 0.0
    delayed: float = 0.0
    wrong_token: float = 0.0
    delay: float = 5.0
    seed: int = 0

    def __post_init__(self) -> None:
        rates = (self.lost, self.duplicated, self.delayed, self.wrong_token)
        if not all(0.0 <= r <= 1.0 for r in rates) or sum(rates) > 1.0 + 1e-9:
            raise ValueError("callback fault rates must be within 0..1 and sum to at most 1")
        if not self.delay >= 0:
            raise ValueError("delay must be >= 0")


@dataclass(frozen=True, slots=True)
class CallbackDelivery:
    """One callback the emulator decided on: its job, fault (None: none) and outcome.

    ``status`` is the HTTP status answered, ``"lost"``, or ``"error: <Exception>"``.
    """

    job_id: str
    fault: CallbackFault | None
    status: int | str


class _Faults:
    """The scripted queue and the random draws of callback faults."""

    __slots__ = ("config", "rng", "script")

    def __init__(self, config: CallbackFaults) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.script: deque[tuple[CallbackFault, float]] = deque()

    def draw(self) -> tuple[CallbackFault | None, float]:
        """The fault of the next callback, and its delay (for ``delayed``)."""
        if self.script:
            return self.script.popleft()
        cfg = self.config
        roll = self.rng.random()  # one draw per callback: reproducible whatever happens
        rates: tuple[tuple[CallbackFault, float], ...] = (
            ("lost", cfg.lost),
            ("wrong_token", cfg.wrong_token),
            ("duplicated", cfg.duplicated),
            ("delayed", cfg.delayed),
        )
        for fault, rate in rates:
            if roll < rate:
                return fault, cfg.delay
            roll -= rate
        return None, 0.0


def is_loopback(url: str) -> bool:
    """True when ``url`` is http(s) to localhost or a loopback IP."""
    try:
        parsed = URL(url)
    except ValueError:
        return False
    host = parsed.host
    if parsed.scheme not in ("http", "https") or not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class CallbackSender:
    """Schedules and delivers webhooks; ``close`` cancels pending deliveries."""

    __slots__ = ("_faults", "_session", "_tasks", "_wall", "deliveries")

    def __init__(self, wall: WallClock, faults: CallbackFaults | None = None) -> None:
        self._wall = wall
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._faults = _Faults(faults or CallbackFaults())
        self.deliveries: list[CallbackDelivery] = []

    @property
    def faults(self) -> CallbackFaults:
        """The random faults in force."""
        return self._faults.config

    @faults.setter
    def faults(self, value: CallbackFaults) -> None:
        script = self._faults.script
        self._faults = _Faults(value)
        self._faults.script = script

    def fail_next(self, fault: CallbackFault, count: int, delay: float) -> None:
        """Script ``fault`` for the next ``count`` callbacks."""
        if fault not in ("lost", "duplicated", "delayed", "wrong_token"):
            raise ValueError(
                f"fault must be 'lost', 'duplicated', 'delayed' or 'wrong_token', got {fault!r}"
            )
        if count < 1 or not delay >= 0:
            raise ValueError("count must be at least 1 and delay >= 0")
        self._faults.script.extend([(fault, delay)] * count)

    def schedule(self, job: Job) -> None:
        """Deliver ``job``'s callback once it is terminal (if it has a loopback callback)."""
        callback = job.callback
        if not callback:
            return
        if not is_loopback(str(callback.get("url", ""))):
            job.callback_status = "skipped: not a loopback address"
            return
        task = asyncio.get_running_loop().create_task(self._deliver(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, job: Job) -> None:
        assert job.callback is not None
        await self._until(job.ends_at())
        fault, delay = self._faults.draw()
        if fault == "lost":
            job.callback_status = "lost"
            self.deliveries.append(CallbackDelivery(job.job_id, fault, "lost"))
            return
        if fault == "delayed":
            await self._until(job.ends_at() + delay)
        failed = sum(1 for f in job.files if f.state != "Success")
        payload = {
            "job_id": job.job_id,
            "job_state": job.terminal_state().lower(),
            "created_at": self._wall.iso(job.created),
            "completed_at": self._wall.iso(job.ends_at()),
            "total_files": len(job.files),
            "processed_files": len(job.files),
            "failed_files": failed,
        }
        headers = {"Content-Type": "application/json"}
        token = job.callback.get("auth_token")
        if isinstance(token, str):
            headers["X-SARVAM-JOB-CALLBACK-TOKEN"] = token
        if fault == "wrong_token":
            headers["X-SARVAM-JOB-CALLBACK-TOKEN"] = f"not-{token or 'the-token'}"
        body = msgspec.json.encode(payload)
        for _ in range(2 if fault == "duplicated" else 1):
            job.callback_status = await self._post(str(job.callback["url"]), body, headers)
            self.deliveries.append(CallbackDelivery(job.job_id, fault, job.callback_status))

    async def _until(self, when: float) -> None:
        """Sleep until the (possibly fake) emulator clock reads ``when``; it has to be polled."""
        while (remaining := when - self._wall.now()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(remaining, _POLL))

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int | str:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        try:
            async with self._session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                return resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            return f"error: {type(exc).__name__}"

    async def close(self) -> None:
        """Cancel pending deliveries and close the HTTP session."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
