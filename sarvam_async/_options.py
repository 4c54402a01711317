"""The client's and each call's options, checked before they are used.

A careless value must fail where it was passed, as a typed error that names it, not later
as a ``TypeError`` from deep inside aiohttp or a comparison. The client's constructor
raises ConfigurationError; a call's argument raises InvalidParameterError (nothing sent).
Messages never quote a secret: the API key and header values are described, not shown.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TypeVar

from . import _constants as C
from .errors import ConfigurationError, InvalidParameterError

__all__ = [
    "api_key",
    "call_timeout",
    "count",
    "extra_headers",
    "instance",
    "seconds",
]

T = TypeVar("T")

Fail = Callable[[str, str], Exception]


def configuration(name: str, message: str) -> Exception:
    """A constructor's option is wrong."""
    return ConfigurationError(f"{name} {message}")


def parameter(name: str, message: str) -> Exception:
    """A call's argument is wrong (nothing was sent)."""
    return InvalidParameterError(name, message)


def _header_safe(value: str) -> bool:
    """Printable ASCII only: what an HTTP header value can carry unchanged."""
    return all(" " <= ch <= "~" for ch in value)


def api_key(value: object, *, source: str) -> str:
    """The API key, as a header can carry it; ``source`` says where it came from."""
    if not isinstance(value, str):
        raise ConfigurationError(
            f"the API key from {source} must be a str, got {type(value).__name__}"
        )
    if value != value.strip():
        raise ConfigurationError(
            f"the API key from {source} has spaces or a line break around it (often a "
            "trailing newline read from a file): strip it"
        )
    if not _header_safe(value):
        raise ConfigurationError(
            f"the API key from {source} holds a control or non-ASCII character: copy it "
            "again from the Sarvam dashboard"
        )
    return value


def extra_headers(value: object) -> dict[str, str]:
    """``headers=``: a mapping of header names to values, both printable ASCII text."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"headers must be a mapping of names to values, got {type(value).__name__}"
        )
    checked: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not name or not _header_safe(name) or " " in name:
            raise ConfigurationError(f"headers: {name!r} is not a header name")
        if not isinstance(item, str) or not _header_safe(item):
            # the value may be a secret: name the header, never show the value
            raise ConfigurationError(f"headers: the value of {name!r} must be printable ASCII text")
        checked[name] = item
    return checked


def seconds(
    value: object,
    name: str,
    *,
    fail: Fail = configuration,
    none: bool = False,
    zero: bool = False,
) -> float | None:
    """A duration in seconds: a real number over 0 (``zero``: or 0), or None if ``none``.

    Infinity means no limit where None does; NaN is refused everywhere. A per-attempt
    timeout also has a floor, ``MIN_TIMEOUT``.
    """
    if value is None:
        if none:
            return None
        raise fail(name, "must be seconds, not None")
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise fail(name, f"must be a number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not zero):
        raise fail(name, f"must be {'0 or more' if zero else 'more than 0'} seconds, got {value}")
    return float(value)


def call_timeout(value: object, name: str = "timeout", fail: Fail = parameter) -> float | None:
    """A per-attempt timeout: None (no limit) or at least ``MIN_TIMEOUT`` seconds."""
    timeout = seconds(value, name, fail=fail, none=True)
    if timeout is not None and timeout < C.MIN_TIMEOUT:
        raise fail(
            name,
            f"is seconds per attempt and must be at least {C.MIN_TIMEOUT} (no call can be "
            f"sent in less), got {value}",
        )
    return timeout


def count(value: object, name: str, least: int = 1) -> int:
    """A whole number of at least ``least`` (a constructor's option)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{name} must be a whole number, got {value!r}")
    if value < least:
        raise ConfigurationError(f"{name} must be at least {least}, got {value}")
    return value


def instance(value: object, cls: type[T], name: str, fail: Fail = configuration) -> T:
    """``value`` if it is a ``cls``; else the error naming ``name``."""
    if not isinstance(value, cls):
        raise fail(name, f"must be a {cls.__name__}, got {type(value).__name__}")
    return value
