"""What the emulator saw: one ``RecordedRequest`` per request, plus aggregate ``Stats``.

Records are appended at arrival, so ``requests`` is in arrival order even when answers finish
out of order; each record is replaced by its final version (with ``status`` and ``body``) once
the answer is sent.
"""

from __future__ import annotations

from typing import Any

import msgspec

ROUTES = frozenset(
    {
        "initiate",
        "upload-files",
        "start",
        "status",
        "download-files",
        "storage-put",
        "storage-get",
        "unknown",
    }
)


class RecordedRequest(msgspec.Struct, frozen=True):
    """One request as received by the emulator.

    ``path`` is the raw (still URL-escaped) path without the query. ``route`` is one of
    ``initiate``, ``upload-files``, ``start``, ``status``, ``download-files``, ``storage-put``,
    ``storage-get`` or ``unknown``; ``flow`` is ``stt``, ``translate``, ``storage`` or
    ``unknown``. ``headers`` has lower-cased names. ``body`` holds API request bodies; storage
    bodies are never kept (``b""``), only their size in ``body_size``. ``status`` is what was
    answered, 0 when the connection was dropped (or the client went away). ``time`` is the
    emulator's clock at arrival; ``key`` the ``api-subscription-key`` header, if any.
    """

    method: str
    path: str
    route: str
    flow: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    body_size: int
    status: int
    time: float
    key: str | None

    def json(self) -> Any:
        """The body decoded as JSON (raises ``msgspec.DecodeError`` if it is not JSON)."""
        return msgspec.json.decode(self.body)


class Stats(msgspec.Struct, frozen=True):
    """A snapshot of the emulator's counters.

    ``api_requests`` counts every non-storage request (including unknown paths);
    ``by_status`` counts their answers by status (0 = dropped). ``rate_limited`` counts API
    answers with status 429, whatever produced them. ``faults`` counts scripted and random
    faults applied. ``not_ready`` counts download-files calls refused by the emulated lag
    behind the status endpoint (``download_lag``). Storage counters cover the presigned
    PUT/GET traffic. ``by_route`` counts API requests by route name (``status``, ...).
    """

    api_requests: int
    by_status: dict[int, int]
    rate_limited: int
    faults: int
    not_ready: int
    storage_requests: int
    storage_by_status: dict[int, int]
    storage_bytes_received: int
    storage_bytes_sent: int
    by_route: dict[str, int] = {}


class Recorder:
    """Keeps the request log and counters; cheap enough for the hot path."""

    __slots__ = (
        "_epoch",
        "api_by_route",
        "api_by_status",
        "api_requests",
        "enabled",
        "faults",
        "not_ready",
        "rate_limited",
        "requests",
        "storage_by_status",
        "storage_received",
        "storage_requests",
        "storage_sent",
    )

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.requests: list[RecordedRequest] = []
        self._epoch = 0
        self.api_requests = 0
        self.api_by_status: dict[int, int] = {}
        self.api_by_route: dict[str, int] = {}
        self.rate_limited = 0
        self.faults = 0
        self.not_ready = 0
        self.storage_requests = 0
        self.storage_by_status: dict[int, int] = {}
        self.storage_received = 0
        self.storage_sent = 0

    def open(self, record: RecordedRequest) -> tuple[int, int]:
        """Append ``record`` (status 0) and return the slot to ``close`` it later."""
        self.requests.append(record)
        return self._epoch, len(self.requests) - 1

    def close(self, slot: tuple[int, int], record: RecordedRequest) -> None:
        """Replace the record appended by ``open``, unless the log was reset in between."""
        epoch, index = slot
        if epoch == self._epoch and index < len(self.requests):
            self.requests[index] = record

    def count(self, storage: bool, status: int, route: str = "unknown") -> None:
        """Count one answered request."""
        if storage:
            self.storage_requests += 1
            by = self.storage_by_status
        else:
            self.api_requests += 1
            self.api_by_route[route] = self.api_by_route.get(route, 0) + 1
            by = self.api_by_status
            if status == 429:
                self.rate_limited += 1
        by[status] = by.get(status, 0) + 1

    def reset(self) -> None:
        """Forget recorded requests (counters are kept)."""
        self.requests.clear()
        self._epoch += 1

    def snapshot(self) -> Stats:
        """Current counters as an immutable ``Stats``."""
        return Stats(
            api_requests=self.api_requests,
            by_status=dict(self.api_by_status),
            rate_limited=self.rate_limited,
            faults=self.faults,
            not_ready=self.not_ready,
            storage_requests=self.storage_requests,
            storage_by_status=dict(self.storage_by_status),
            storage_bytes_received=self.storage_received,
            storage_bytes_sent=self.storage_sent,
            by_route=dict(self.api_by_route),
        )
