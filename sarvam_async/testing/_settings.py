"""The emulator's settings that callers may change while it runs."""

from __future__ import annotations


class Settings:
    """Tunables read on every request; the emulator lets callers change them at run time."""

    __slots__ = (
        "base_url",
        "download_lag",
        "job_duration",
        "keys",
        "latency",
        "null_counts",
        "retry_after_ms",
        "storage_container_type",
        "url_style",
        "url_ttl",
    )

    def __init__(
        self,
        keys: frozenset[str],
        latency: float,
        job_duration: float,
        url_ttl: float,
        storage_container_type: str,
        url_style: str,
    ) -> None:
        self.keys = keys
        self.latency = latency
        self.job_duration = job_duration
        self.url_ttl = url_ttl
        self.storage_container_type = storage_container_type
        self.url_style = url_style
        self.base_url = ""
        self.download_lag = 0.0  # seconds download-files lags behind a terminal status
        self.retry_after_ms = False  # also send retry-after-ms on the emulator's own 429/503
        self.null_counts = True  # null counts before start, as the live API
