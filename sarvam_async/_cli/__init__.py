"""The ``sarvam-async`` command's implementation (private; the entry point is ``cli.main``).

``_main`` is the entry point; ``_parser`` builds the argument parser, ``_runner`` holds the
exit codes, the one-line errors and the Ctrl-C-safe runner. None of the three imports rich.
``_app`` (the commands), ``_demo`` and ``_display`` do, and are imported only once rich is
known to be there. Imports go one way: _main -> _app -> _demo/_display, all -> _runner.
"""
