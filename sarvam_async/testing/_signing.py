"""Presigned URL signing for the emulator's blob store.

URLs look like ``{base}/storage/{job_id}/input/{name}?se=<unix expiry>&sig=<hmac>`` (``output``
for downloads). The signature is an HMAC-SHA256, with a per-emulator random secret, over the
access kind (``w`` for input PUT, ``r`` for output GET), the unescaped job id and blob name, and
the expiry. ``revoke_all`` replaces the secret, which invalidates every URL issued so far.
"""

from __future__ import annotations

import functools
import hmac
import secrets
import time
from urllib.parse import quote

from ._clock import WallClock

WRITE = "w"
READ = "r"
_KIND_DIR = {WRITE: "input", READ: "output"}


@functools.lru_cache(maxsize=4096)
def _blob_path(job_id: str, kind: str, name: str) -> str:
    return f"/storage/{quote(job_id, safe='')}/{_KIND_DIR[kind]}/{quote(name, safe='')}"


class UrlSigner:
    """Issues and checks presigned storage URLs."""

    __slots__ = ("_secret", "_wall")

    def __init__(self, wall: WallClock) -> None:
        self._wall = wall
        self._secret = secrets.token_bytes(32)

    def _sig(self, kind: str, job_id: str, name: str, expiry: str) -> str:
        msg = f"{kind}\n{job_id}\n{name}\n{expiry}".encode()
        return hmac.digest(self._secret, msg, "sha256").hex()

    def sign(self, base: str, kind: str, job_id: str, name: str, ttl: float) -> tuple[str, int]:
        """A URL granting ``kind`` access to one blob for ``ttl`` seconds, and its expiry."""
        expiry = int(self._wall.unix() + ttl)
        se = str(expiry)
        path = _blob_path(job_id, kind, name)
        return f"{base}{path}?se={se}&sig={self._sig(kind, job_id, name, se)}", expiry

    def verify(self, kind: str, job_id: str, name: str, se: str | None, sig: str | None) -> str:
        """Check a presented URL: "" if valid, else an Azure-like ``AuthenticationErrorDetail``."""
        if not se or not sig:
            return "Signature fields not well formed."
        if not hmac.compare_digest(self._sig(kind, job_id, name, se), sig):
            return (
                "Signature did not match. String to sign used was "
                f"{kind}\n/blob/{job_id}/{_KIND_DIR[kind]}/{name}\n{se}"
            )
        try:
            expiry = int(se)
        except ValueError:
            return "Signature fields not well formed."
        now = self._wall.unix()
        if now > expiry:
            fmt = "%a, %d %b %Y %H:%M:%S GMT"
            return (
                f"Signed expiry time [{time.strftime(fmt, time.gmtime(expiry))}] must be after "
                f"signed start time [{time.strftime(fmt, time.gmtime(now))}]"
            )
        return ""

    def revoke_all(self) -> None:
        """Invalidate every URL issued so far; later URLs are signed with a new secret."""
        self._secret = secrets.token_bytes(32)
