"""The client's and each call's options, checked before they are used.

A careless value must fail where it was passed, as a typed error that names it, not later
as a ``TypeError`` from deep inside aiohttp or a comparison. The client's constructor
raises ConfigurationError; a call's argument raises InvalidParameterError (nothing sent).
Messages never quote a secret: the API key and header values are described, not shown.
"""

from __future__ import annotations

import decimal
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Literal, TypeVar, cast, overload
from urllib.parse import SplitResult, urlsplit

from ._redact import redact_url
from .errors import ConfigurationError, InvalidParameterError

__all__ = [
    "api_key",
    "count",
    "extra_headers",
    "http_url",
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


_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
"""The characters of an HTTP header name (RFC 9110 token)."""


def _printable_ascii(value: str) -> bool:
    """What an API key is made of: visible ASCII and spaces."""
    return all(" " <= ch <= "~" for ch in value)


def _header_value_safe(value: str) -> bool:
    """No control character but tab (RFC 9110 field-value; obs-text above 0x7f allowed)."""
    return all(ch == "\t" or (ch >= " " and ch != "\x7f") for ch in value)


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
    if not _printable_ascii(value):
        raise ConfigurationError(
            f"the API key from {source} holds a control or non-ASCII character: copy it "
            "again from the Sarvam dashboard"
        )
    return value


def extra_headers(value: object) -> dict[str, str]:
    """``headers=``: a mapping of header names (HTTP tokens) to text values."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"headers must be a mapping of names to values, got {type(value).__name__}"
        )
    checked: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not name or not set(name) <= _TOKEN:
            # not quoted: a malformed name may be a whole "Authorization: Bearer ..." line
            raise ConfigurationError(
                "headers: a name is not an HTTP header name (letters, digits and "
                "!#$%&'*+-.^_`|~ only; the value goes in the mapping's value)"
            )
        if not isinstance(item, str) or not _header_value_safe(item):
            # the value may be a secret: name the header, never show the value
            raise ConfigurationError(
                f"headers: the value of {name!r} must be text without line breaks or other "
                "control characters"
            )
        checked[name] = item
    return checked


def _real(value: object) -> float | None:
    """A real number that is not a bool (int, float, Fraction, Decimal ...), or None.

    Returned as is, typed as a float: it compares, converts and prints as one.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real | decimal.Decimal):
        return None
    return cast(float, value)


@overload
def seconds(
    value: object,
    name: str,
    *,
    fail: Fail = ...,
    none: Literal[False] = ...,
    zero: bool = ...,
    finite: bool = ...,
) -> float: ...
@overload
def seconds(
    value: object,
    name: str,
    *,
    fail: Fail = ...,
    none: bool,
    zero: bool = ...,
    finite: bool = ...,
) -> float | None: ...
def seconds(
    value: object,
    name: str,
    *,
    fail: Fail = configuration,
    none: bool = False,
    zero: bool = False,
    finite: bool = False,
) -> float | None:
    """A duration in seconds: a real number over 0 (``zero``: or 0), or None if ``none``.

    Infinity (or a number too large for a float) means no limit, unless ``finite``: where
    no limit is no setting (a key that never expires, a safety poll that never comes).
    NaN is refused.
    """
    if value is None:
        if none:
            return None
        raise fail(name, "must be seconds, not None")
    real = _real(value)
    if real is None:
        raise fail(name, f"must be a number of seconds, got {type(value).__name__}")
    try:
        result = float(real)
    except OverflowError:  # an int past float's range: as good as no limit
        result = math.inf if real > 0 else -math.inf
    if math.isnan(result):
        raise fail(name, "must be a number of seconds, got NaN")
    if result < 0 or (result == 0 and not zero):
        raise fail(name, f"must be {'0 or more' if zero else 'more than 0'} seconds, got {value}")
    if finite and result == math.inf:
        raise fail(name, f"must be a finite number of seconds, got {value!r}")
    return result


def count(
    value: object, name: str, least: int = 1, *, fail: Fail = configuration, infinite: bool = False
) -> int | float:
    """A whole number of at least ``least`` (``3.0``, ``Decimal(3)`` count too); with
    ``infinite``, also ``math.inf`` (no cap), returned as a float."""
    real = _real(value)
    if real is not None:
        if infinite and real == math.inf:
            return math.inf
        if isinstance(real, int) or (math.isfinite(real) and real == int(real)):
            if real < least:
                raise fail(name, f"must be at least {least}, got {value}")
            return int(real)
    raise fail(name, f"must be a whole number, got {value!r}")


def http_url(value: object, name: str, example: str) -> SplitResult:
    """An http(s) URL with a host, split; ConfigurationError shows it without credentials."""
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a str, got {type(value).__name__}")
    try:
        parts = urlsplit(value)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 -- raises for a port past 65535
    except ValueError:  # "https://[::1": a bracket never closed; "h:99999"
        ok = False
    if not ok:
        raise ConfigurationError(
            f"{name} must be an http(s) URL such as {example}, got {redact_url(value)!r}"
        )
    return parts


def instance(value: object, cls: type[T], name: str, fail: Fail = configuration) -> T:
    """``value`` if it is a ``cls``; else the error naming ``name``."""
    if not isinstance(value, cls):
        raise fail(name, f"must be a {cls.__name__}, got {type(value).__name__}")
    return value
