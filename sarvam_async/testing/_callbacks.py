"""Job-completion webhooks, delivered only to loopback addresses.

When a job initiated with ``callback: {url, auth_token?}`` becomes terminal, the emulator POSTs
``{job_id, job_state, created_at, completed_at, total_files, processed_files, failed_files}``
(the payload the cookbook describes, ``job_state`` in lower case as in its example, although
the status API says ``Completed``) with header
``X-SARVAM-JOB-CALLBACK-TOKEN`` when a token was given. One attempt, 30 s timeout; the outcome
(HTTP status or ``"error: <Exception>"``) is kept in the job's ``callback_status``. URLs that
are not on a loopback address are never contacted (``callback_status`` says ``skipped``).
"""

from __future__ import annotations

import asyncio
import ipaddress

import aiohttp
import msgspec
from yarl import URL

from ._clock import WallClock
from ._state import Job

_POLL = 0.05


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

    __slots__ = ("_session", "_tasks", "_wall")

    def __init__(self, wall: WallClock) -> None:
        self._wall = wall
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

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
        # The deadline follows the (possibly fake) emulator clock, so it has to be polled.
        while (remaining := job.ends_at() - self._wall.now()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(remaining, _POLL))
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
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        try:
            async with self._session.post(
                str(job.callback["url"]), data=msgspec.json.encode(payload), headers=headers
            ) as resp:
                await resp.read()
                job.callback_status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            job.callback_status = f"error: {type(exc).__name__}"

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
