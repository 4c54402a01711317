"""sarvam_async: a fast, strict asyncio client for Sarvam AI's speech-to-text batch job API.

The public API is what this module exports (``__all__``); everything in a module whose name
starts with ``_`` is private.
"""

from __future__ import annotations

import logging

from . import errors
from ._callback_http import CallbackServer, aiohttp_callback_handler
from ._callback_receiver import CallbackConfig, CallbackReceiver
from ._client import AsyncSarvam
from ._constants import VERSION as __version__
from ._limiter import ClientStats, SharedLimiter
from ._redis_limiter import RedisRateLimiter
from ._retry import RetryPolicy
from ._types import USE_CLIENT_DEFAULT
from .models import (
    MAX_FILES_PER_JOB,
    BulkJobCallback,
    BulkJobInitResponse,
    DiarizedEntry,
    DiarizedTranscript,
    ErrorCode,
    ErrorDetails,
    ErrorMessage,
    FilesDownloadResponse,
    FileSignedURLDetails,
    FilesRequest,
    FilesUploadResponse,
    InputAudioCodec,
    JobCallback,
    JobState,
    JobStatusResponse,
    Mode,
    SpeechToTextJobParameters,
    SpeechToTextLanguage,
    SpeechToTextModel,
    SpeechToTextTranslateJobParameters,
    SpeechToTextTranslateLanguage,
    SpeechToTextTranslateModel,
    StorageContainerType,
    TaskDetail,
    TaskFileDetails,
    TaskState,
    TimedText,
    TimestampGranularity,
    Timestamps,
    TranscriptionResult,
)

logging.getLogger("sarvam_async").addHandler(logging.NullHandler())

__all__ = [
    "MAX_FILES_PER_JOB",
    "USE_CLIENT_DEFAULT",
    "AsyncSarvam",
    "BulkJobCallback",
    "BulkJobInitResponse",
    "CallbackConfig",
    "CallbackReceiver",
    "CallbackServer",
    "ClientStats",
    "DiarizedEntry",
    "DiarizedTranscript",
    "ErrorCode",
    "ErrorDetails",
    "ErrorMessage",
    "FileSignedURLDetails",
    "FilesDownloadResponse",
    "FilesRequest",
    "FilesUploadResponse",
    "InputAudioCodec",
    "JobCallback",
    "JobState",
    "JobStatusResponse",
    "Mode",
    "RedisRateLimiter",
    "RetryPolicy",
    "SharedLimiter",
    "SpeechToTextJobParameters",
    "SpeechToTextLanguage",
    "SpeechToTextModel",
    "SpeechToTextTranslateJobParameters",
    "SpeechToTextTranslateLanguage",
    "SpeechToTextTranslateModel",
    "StorageContainerType",
    "TaskDetail",
    "TaskFileDetails",
    "TaskState",
    "TimedText",
    "TimestampGranularity",
    "Timestamps",
    "TranscriptionResult",
    "__version__",
    "aiohttp_callback_handler",
    "errors",
]
