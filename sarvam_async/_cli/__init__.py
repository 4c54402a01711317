"""The ``sarvam-async`` command's implementation (private; the entry point is ``cli.main``).

``_main`` parses arguments, turns errors into one line and Ctrl-C into a clean stop; it never
imports rich. The other modules do, and are imported only once rich is known to be there.
"""
