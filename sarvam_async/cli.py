"""The ``sarvam-async`` command (also ``python -m sarvam_async``); see ``sarvam-async --help``.

The command needs the optional ``cli`` extra (``pip install -e '.[cli]'`` in a checkout) for its
display; the library itself never imports it.
"""

from __future__ import annotations

from ._cli._main import main

__all__ = ["main"]
