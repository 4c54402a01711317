"""The emulator's settings that callers may change while it runs."""

from __future__ import annotations


class Settings:
    """Tunables read on every request; the emulator lets callers change them at run time."""

    __slots__ = (
        "base_url",
        "job_duration",
        "keys",
        "latency",
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
