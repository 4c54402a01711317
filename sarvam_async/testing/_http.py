"""HTTP building blocks shared by the emulator: request ids, error envelopes, JSON responses.

Every API answer carries an ``x-request-id`` header. Error bodies use the documented envelope
``{"error": {"message", "code", "request_id"}}`` and repeat the same id in that header (the live
gateway's exact header name is undocumented; ``x-request-id`` is the common convention).
"""

from __future__ import annotations

import time
import uuid
from typing import Final

import msgspec
from aiohttp import web

JSON: Final = "application/json"
XML: Final = "application/xml"

encode = msgspec.json.Encoder().encode

DEFAULT_CODES: Final[dict[int, str]] = {
    400: "invalid_request_error",
    403: "invalid_api_key_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "unprocessable_entity_error",
    429: "rate_limit_exceeded_error",
    500: "internal_server_error",
    503: "rate_limit_exceeded_error",
}

DEFAULT_MESSAGES: Final[dict[int, str]] = {
    400: "Bad request.",
    403: "Invalid API subscription key. Please check your key and try again.",
    404: "The requested resource was not found.",
    405: "Method not allowed.",
    413: "Request body is too large.",
    422: "Unprocessable entity.",
    429: "Rate limit exceeded. Please slow down your requests and retry later.",
    500: "Internal server error. Please retry with backoff.",
    502: "Bad gateway.",
    503: "Service is temporarily overloaded. Please retry after some time.",
    504: "Gateway timeout.",
}


def default_code(status: int) -> str:
    """Envelope ``code`` the API uses for ``status``: ``internal_server_error`` when unknown."""
    return DEFAULT_CODES.get(status, "internal_server_error")


def default_message(status: int) -> str:
    """A realistic human-readable message for ``status``."""
    return DEFAULT_MESSAGES.get(status, "Unexpected error.")


def new_request_id() -> str:
    """A fresh request id in the documented ``YYYYMMDD_<uuid4>`` format (UTC date)."""
    return f"{time.strftime('%Y%m%d', time.gmtime())}_{uuid.uuid4()}"


class ApiError(Exception):
    """Raised by handlers to answer with the JSON error envelope.

    ``code`` defaults from ``status`` (see ``default_code``); ``headers`` are added to the answer.
    """

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code if code is not None else default_code(status)
        self.headers = headers


def json_response(
    status: int, body: bytes, request_id: str, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response with ``x-request-id``; ``headers`` are added as given."""
    hdrs = {"Content-Type": JSON, "x-request-id": request_id}
    if headers:
        hdrs.update(headers)
    return web.Response(status=status, body=body, headers=hdrs)


def error_response(
    status: int,
    message: str,
    code: str,
    request_id: str,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The documented JSON error envelope with ``status``."""
    body = encode({"error": {"message": message, "code": code, "request_id": request_id}})
    return json_response(status, body, request_id, headers)


class Exchange:
    """Per-request facts gathered for the record."""

    __slots__ = ("body", "dropped", "sent", "size")

    def __init__(self) -> None:
        self.body = b""
        self.size = 0
        self.sent = 0
        self.dropped = False


def drop(request: web.BaseRequest, ex: Exchange) -> web.Response:
    """Close the connection without answering; the returned response is never written."""
    ex.dropped = True
    transport = request.transport
    if transport is not None:
        transport.close()
    return web.Response(status=500)
