"""What the batch workflow reports: progress events and per-file results and outcomes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec

from ._transport import decoder_for
from .errors import SarvamError
from .models import JobStatusResponse, TranscriptionResult

__all__ = [
    "FileOutcome",
    "FileResult",
    "ProgressCallback",
    "ProgressEvent",
    "emit",
    "file_results",
    "read_result",
]

logger = logging.getLogger("sarvam_async")
_result_decoder = decoder_for(TranscriptionResult)

ProgressKind = Literal[
    "planned",
    "job_created",
    "bytes_sent",
    "file_uploaded",
    "job_started",
    "job_finished",
    "file_downloaded",
    "file_failed",
]


@dataclass(frozen=True)
class ProgressEvent:
    """One step of progress, passed to a ``progress`` callback.

    ``planned`` gives ``total`` files and ``nbytes`` to upload; ``bytes_sent`` carries
    ``nbytes`` (negative when a retried upload starts over); ``job_finished`` carries the
    job's ``state``; the file events carry the file's API name in ``file``.
    """

    kind: ProgressKind
    job_id: str | None = None
    file: str | None = None
    nbytes: int = 0
    total: int = 0
    state: str | None = None


ProgressCallback = Callable[[ProgressEvent], None]


@dataclass(frozen=True)
class FileResult:
    """What a job's status says about one input: its state, output name and error."""

    name: str
    file_id: str | None
    state: str | None
    ok: bool
    output_name: str | None
    error_message: str | None


@dataclass(frozen=True)
class FileOutcome:
    """The end of one input file: transcribed (``ok``) or failed, and why.

    ``name`` is the file name sent to the API (made unique when inputs collide), ``path``
    the local input. On success ``output_path`` is ``<output_dir>/<name>.json`` and
    ``result`` its parsed content. On failure ``exception`` is the typed error (branch on
    its class: ``FileFailedError`` is the API's verdict on the file, ``StorageError`` a
    transfer, ``LocalWriteError`` the local disk, ...) and ``error`` its message.
    ``resumed`` marks outcomes taken from a manifest. ``duplicates`` lists the other paths
    the caller gave for this same file (a symlink, ``dir/../a.wav``): it was sent once.
    """

    name: str
    path: Path | None
    job_id: str | None
    ok: bool
    state: str | None = None
    output_path: Path | None = None
    result: TranscriptionResult | None = None
    error: str | None = None
    resumed: bool = False
    exception: SarvamError | None = None
    duplicates: tuple[Path, ...] = ()


def emit(progress: ProgressCallback | None, kind: ProgressKind, **kw: Any) -> None:
    """Report progress; a callback that raises is logged, never allowed to lose work."""
    if progress is not None:
        try:
            progress(ProgressEvent(kind, **kw))
        except Exception:
            logger.exception("the progress callback raised on a %r event; ignored", kind)


def read_result(path: Path) -> TranscriptionResult:
    """Parse a downloaded output (blocking); raises ValueError if it is not a transcript."""
    try:
        return _result_decoder.decode(path.read_bytes())
    except msgspec.MsgspecError as exc:
        raise ValueError(f"downloaded output is not a transcript ({exc})") from None
    except RecursionError:
        raise ValueError("downloaded output is not a transcript (nested too deeply)") from None


def file_results(status: JobStatusResponse) -> list[FileResult]:
    """Per-input results from a status (inputs without a name are skipped)."""
    results = []
    for detail in status.job_details:
        if not detail.inputs:
            continue
        first = detail.inputs[0]
        state = detail.state
        ok = state is not None and state.is_success and bool(detail.outputs)
        results.append(
            FileResult(
                name=first.file_name,
                file_id=first.file_id,
                state=state.value if state is not None else None,
                ok=ok,
                output_name=detail.outputs[0].file_name if detail.outputs else None,
                error_message=detail.error_message or None,
            )
        )
    return results
