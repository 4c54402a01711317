"""The one redaction of secrets in text that reaches a user: messages, bodies, reprs.

Presigned URLs carry their credential in the query string (Azure SAS ``sig=``, S3
``X-Amz-Signature``, GCS ``X-Goog-Signature``), and servers quote them in error messages in
any spelling: upper-case schemes, JSON-escaped slashes (``https:\\/\\/``), scheme-relative
``//host/path?...``. Every exception of ``sarvam_async.errors`` passes its text through
:func:`redact`; URL reprs use :func:`redact_url`.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["REDACTED", "redact", "redact_url"]

REDACTED = "<redacted>"

# A URL (any scheme, or none: ``//host``), slashes plain or JSON-escaped, up to its query.
_URL_QUERY = re.compile(r"((?:\\?/){2}[^\s\"'<>?]*)\?[^\s\"'<>]*")
# A credential parameter or header anywhere, in or out of a URL, in any case.
_SECRET_PARAM = re.compile(
    r"(?i)(?<![\w-])((?:sig|signature|x-(?:amz|goog)-(?:signature|credential|security-token)"
    r"|api-subscription-key|access_token|token)[\"']?\s*[=:]\s*[\"']?)[^&\s\"'<>,;]+"
)


def redact(text: str) -> str:
    """``text`` with every URL query string and credential parameter replaced."""
    if not text:
        return text
    text = _URL_QUERY.sub(rf"\1?{REDACTED}", text)
    return _SECRET_PARAM.sub(rf"\1{REDACTED}", text)


def redact_url(url: str) -> str:
    """``url`` without its query string (a presigned URL's signature is a credential) or its
    user info (``user:password@``); a URL that does not parse is not shown at all."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<a malformed URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    elif not parts.query:
        return redact(url)
    query = f"?{REDACTED}" if parts.query else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}"
