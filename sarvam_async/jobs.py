"""The batch workflow's public types: the job handle, progress events, per-file outcomes.

:class:`BatchJob` drives one job (names mirror the official SDK's job handle).
``AsyncSarvam.transcribe_files`` runs any number of files through jobs of at most 20 and
yields one :class:`FileOutcome` per input, passing :class:`ProgressEvent` s to a
``progress`` callback on the way.
"""

from __future__ import annotations

from ._batch_job import BatchJob
from ._results import FileOutcome, FileResult, ProgressCallback, ProgressEvent, ProgressKind

__all__ = [
    "BatchJob",
    "FileOutcome",
    "FileResult",
    "ProgressCallback",
    "ProgressEvent",
    "ProgressKind",
]
