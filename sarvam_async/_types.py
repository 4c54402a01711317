"""Types shared by the public signatures: the "use the client's default" sentinel."""

from __future__ import annotations

import enum
from typing import Final, Literal

__all__ = ["USE_CLIENT_DEFAULT", "Timeout", "UseClientDefault"]


class UseClientDefault(enum.Enum):
    """The type of :data:`USE_CLIENT_DEFAULT` (one member, so type checkers can narrow it)."""

    USE_CLIENT_DEFAULT = "USE_CLIENT_DEFAULT"

    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"


USE_CLIENT_DEFAULT: Final = UseClientDefault.USE_CLIENT_DEFAULT
"""A per-call ``timeout=`` left out: the client's ``timeout`` applies.

It tells "not passed" from ``None``, which on a call, as on the client, means no limit.
"""

Timeout = float | None | Literal[UseClientDefault.USE_CLIENT_DEFAULT]
"""A per-call ``timeout``: seconds per attempt, ``None`` for no limit, or the client's."""
