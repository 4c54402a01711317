"""Presigned URL signing for the emulator's blob store.

URLs look like ``{base}/storage/{job_id}/input/{name}?se=...&sp=wdl&sv=...&sr=b&sig=...``
(``output`` and ``sp=rl`` for downloads): the query of an Azure SAS URL, as the live API hands
out, with ``se`` the expiry in ISO-8601 and ``sig`` a base64 signature, both URL-escaped. The
signature is an HMAC-SHA256, with a per-emulator random secret, over the permissions, the
expiry, the unescaped job id and blob name, the version and the resource type. ``revoke_all``
replaces the secret, which invalidates every URL issued so far.
"""

from __future__ import annotations

import base64
import calendar
import functools
import hmac
import secrets
import time
from urllib.parse import quote, urlencode

from ._clock import WallClock

WRITE = "w"
READ = "r"
_KIND_DIR = {WRITE: "input", READ: "output"}
_PERMISSIONS = {WRITE: "wdl", READ: "rl"}  # as the live input and output SAS URLs grant
SAS_VERSION = "2025-01-05"
_RESOURCE = "b"  # one blob per URL
_EXPIRY_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


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
        msg = _string_to_sign(kind, job_id, name, expiry).encode()
        return base64.b64encode(hmac.digest(self._secret, msg, "sha256")).decode()

    def sign(self, base: str, kind: str, job_id: str, name: str, ttl: float) -> tuple[str, int]:
        """A URL granting ``kind`` access to one blob for ``ttl`` seconds, and its expiry."""
        expiry = int(self._wall.unix() + ttl)
        se = time.strftime(_EXPIRY_FORMAT, time.gmtime(expiry))
        query = urlencode(
            {
                "se": se,
                "sp": _PERMISSIONS[kind],
                "sv": SAS_VERSION,
                "sr": _RESOURCE,
                "sig": self._sig(kind, job_id, name, se),
            },
            quote_via=quote,
            safe="",
        )
        return f"{base}{_blob_path(job_id, kind, name)}?{query}", expiry

    def verify(self, kind: str, job_id: str, name: str, se: str | None, sig: str | None) -> str:
        """Check a presented URL: "" if valid, else an Azure-like ``AuthenticationErrorDetail``."""
        if not se or not sig:
            return "Signature fields not well formed."
        if not hmac.compare_digest(self._sig(kind, job_id, name, se), sig):
            return (
                "Signature did not match. String to sign used was "
                f"{_string_to_sign(kind, job_id, name, se)}"
            )
        try:
            expiry = calendar.timegm(time.strptime(se, _EXPIRY_FORMAT))
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


def _string_to_sign(kind: str, job_id: str, name: str, expiry: str) -> str:
    path = f"/blob/{job_id}/{_KIND_DIR[kind]}/{name}"
    return f"{_PERMISSIONS[kind]}\n{expiry}\n{path}\n{SAS_VERSION}\n{_RESOURCE}"
