"""Request and response types of the batch API, as msgspec Structs.

Requests omit every unset field (never ``null`` on the wire) and validate the limits the API
documents before anything is sent, raising :class:`~sarvam_async.errors.InvalidParameterError`.

Responses are frozen, ignore unknown fields, and decode unknown enum values instead of
failing: ``JobState("Archived")`` is a pseudo-member that keeps its raw string and compares
equal to it. Enum values are matched in any letter case (``JobState("completed") is
JobState.COMPLETED``: the webhook spells states in lower case). The live API already returns
``PartiallyCompleted``, which the published enum lacks; it is a member here. Counts and lists
that the docs or the official SDK allow to be ``null`` decode as their default (0, ``[]``).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

import msgspec
from msgspec.structs import force_setattr

from ._redact import redact_url
from .errors import InvalidParameterError

__all__ = [
    "MAX_FILES_PER_JOB",
    "BulkJobCallback",
    "BulkJobInitResponse",
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
]

MAX_FILES_PER_JOB = 20
"""The API accepts at most 20 input files per job (every batch guide says so)."""

_MAX_KEYTERMS = 50
_MAX_KEYTERM_CHARS = 64
_PSEUDO_MEMBER_CACHE = 256  # bound on remembered unknown values per enum (hostile input)


class _TolerantEnum(str, enum.Enum):
    """A string enum that accepts values it does not know, in any letter case.

    A known value in another letter case is its member (``"completed"`` is ``COMPLETED``).
    An unknown value becomes a pseudo-member whose ``value`` is the raw string, so decoding
    never fails on a state the API adds later, and ``member == "raw"`` still holds.
    """

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, str):
            return None
        folded = value.casefold()
        member = next((m for m in cls.__members__.values() if m.value.casefold() == folded), None)
        if member is None:
            member = str.__new__(cls, value)
            member._name_ = value
            member._value_ = value
        if len(cls._value2member_map_) < len(cls.__members__) + _PSEUDO_MEMBER_CACHE:
            cls._value2member_map_[value] = member
        return member

    def __str__(self) -> str:
        return str(self.value)

    @property
    def is_known(self) -> bool:
        """False for a value the published enum does not list."""
        return type(self).__members__.get(self._name_) is self


class JobState(_TolerantEnum):
    """State of a batch job. ``is_terminal`` is what to wait for."""

    ACCEPTED = "Accepted"
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETED = "Completed"
    PARTIALLY_COMPLETED = "PartiallyCompleted"  # returned live; absent from the published enum
    FAILED = "Failed"

    @property
    def is_terminal(self) -> bool:
        """True for Completed, PartiallyCompleted and Failed, in any letter case."""
        return self.value.lower() in _TERMINAL_STATES

    @property
    def has_outputs(self) -> bool:
        """True when outputs may be downloaded (Completed or PartiallyCompleted)."""
        return self.value.lower() in ("completed", "partiallycompleted")


_TERMINAL_STATES = frozenset({"completed", "partiallycompleted", "failed"})


class TaskState(_TolerantEnum):
    """State of one input file of a job. Only ``SUCCESS`` has an output."""

    SUCCESS = "Success"
    API_ERROR = "API Error"
    INTERNAL_SERVER_ERROR = "Internal Server Error"

    @property
    def is_success(self) -> bool:
        """True for ``Success`` in any letter case."""
        return self.value.lower() == "success"


class StorageContainerType(_TolerantEnum):
    """Where the presigned URLs point. Only Azure types need ``x-ms-blob-type``."""

    AZURE = "Azure"
    LOCAL = "Local"
    GOOGLE = "Google"
    AZURE_V1 = "Azure_V1"

    @property
    def is_azure(self) -> bool:
        """True for ``Azure`` and ``Azure_V1``."""
        return self.value.lower().startswith("azure")


class ErrorCode(_TolerantEnum):
    """``error.code`` of the API's error envelope."""

    INVALID_REQUEST_ERROR = "invalid_request_error"
    INTERNAL_SERVER_ERROR = "internal_server_error"
    UNPROCESSABLE_ENTITY_ERROR = "unprocessable_entity_error"
    INSUFFICIENT_QUOTA_ERROR = "insufficient_quota_error"
    INVALID_API_KEY_ERROR = "invalid_api_key_error"
    AUTHENTICATION_ERROR = "authentication_error"
    NOT_FOUND_ERROR = "not_found_error"
    RATE_LIMIT_EXCEEDED_ERROR = "rate_limit_exceeded_error"
    MODEL_CALL_ERROR = "model_call_error"
    GATEWAY_TIMEOUT_ERROR = "gateway_timeout_error"
    BILLING_SERVICE_UNAVAILABLE_ERROR = "billing_service_unavailable_error"


class SpeechToTextModel(_TolerantEnum):
    """Models of speech-to-text batch jobs (``saaras:v3`` is the API's default)."""

    SAARAS_V3 = "saaras:v3"
    SAARAS_V4 = "saaras:v4"
    SAARIKA_V2_5 = "saarika:v2.5"  # legacy, still accepted
    SAARAS_V2_5 = "saaras:v2.5"  # legacy, still accepted


class SpeechToTextTranslateModel(_TolerantEnum):
    """Models of speech-to-text-translate jobs."""

    SAARAS_V2_5 = "saaras:v2.5"


class Mode(_TolerantEnum):
    """Output mode of saaras:v3 and v4 (``transcribe`` by default)."""

    TRANSCRIBE = "transcribe"
    TRANSLATE = "translate"
    VERBATIM = "verbatim"
    TRANSLIT = "translit"
    CODEMIX = "codemix"


class TimestampGranularity(_TolerantEnum):
    """``timestamp_granularity`` of a job: ``words`` or ``segments`` in every output.

    ``word`` needs ``saaras:v4`` in ``transcribe``, ``codemix``, ``verbatim`` or ``translit``
    mode; ``segment`` needs ``saaras:v3`` or ``saaras:v4``, any mode.
    """

    WORD = "word"
    SEGMENT = "segment"


_WORD_MODES = frozenset({"transcribe", "codemix", "verbatim", "translit"})
_SEGMENT_MODELS = frozenset({"saaras:v3", "saaras:v4"})


class SpeechToTextLanguage(_TolerantEnum):
    """BCP-47 input language of STT jobs; ``unknown`` means auto-detect."""

    UNKNOWN = "unknown"
    HI_IN = "hi-IN"
    BN_IN = "bn-IN"
    KN_IN = "kn-IN"
    ML_IN = "ml-IN"
    MR_IN = "mr-IN"
    OD_IN = "od-IN"
    PA_IN = "pa-IN"
    TA_IN = "ta-IN"
    TE_IN = "te-IN"
    EN_IN = "en-IN"
    GU_IN = "gu-IN"
    # saaras:v3 only
    AS_IN = "as-IN"
    UR_IN = "ur-IN"
    NE_IN = "ne-IN"
    KOK_IN = "kok-IN"
    KS_IN = "ks-IN"
    SD_IN = "sd-IN"
    SA_IN = "sa-IN"
    SAT_IN = "sat-IN"
    MNI_IN = "mni-IN"
    BRX_IN = "brx-IN"
    MAI_IN = "mai-IN"
    DOI_IN = "doi-IN"


class SpeechToTextTranslateLanguage(_TolerantEnum):
    """Source language reported by translate outputs (the STT codes without ``unknown``)."""

    HI_IN = "hi-IN"
    BN_IN = "bn-IN"
    KN_IN = "kn-IN"
    ML_IN = "ml-IN"
    MR_IN = "mr-IN"
    OD_IN = "od-IN"
    PA_IN = "pa-IN"
    TA_IN = "ta-IN"
    TE_IN = "te-IN"
    GU_IN = "gu-IN"
    EN_IN = "en-IN"
    AS_IN = "as-IN"
    UR_IN = "ur-IN"
    NE_IN = "ne-IN"
    KOK_IN = "kok-IN"
    KS_IN = "ks-IN"
    SD_IN = "sd-IN"
    SA_IN = "sa-IN"
    SAT_IN = "sat-IN"
    MNI_IN = "mni-IN"
    BRX_IN = "brx-IN"
    MAI_IN = "mai-IN"
    DOI_IN = "doi-IN"


class InputAudioCodec(_TolerantEnum):
    """Audio codec; set it only for raw PCM (16 kHz), other formats are detected."""

    WAV = "wav"
    X_WAV = "x-wav"
    WAVE = "wave"
    MP3 = "mp3"
    MPEG = "mpeg"
    MPEG3 = "mpeg3"
    X_MP3 = "x-mp3"
    X_MPEG_3 = "x-mpeg-3"
    AAC = "aac"
    X_AAC = "x-aac"
    AIFF = "aiff"
    X_AIFF = "x-aiff"
    OGG = "ogg"
    OPUS = "opus"
    FLAC = "flac"
    X_FLAC = "x-flac"
    MP4 = "mp4"
    X_M4A = "x-m4a"
    AMR = "amr"
    X_MS_WMA = "x-ms-wma"
    WEBM = "webm"
    PCM_S16LE = "pcm_s16le"
    PCM_L16 = "pcm_l16"
    PCM_RAW = "pcm_raw"


# --------------------------------------------------------------------------- requests


def _check_speakers(num_speakers: int | None) -> None:
    if num_speakers is None:
        return
    if isinstance(num_speakers, bool) or not isinstance(num_speakers, int):
        raise InvalidParameterError("job_parameters.num_speakers", "must be an integer")
    if num_speakers < 1:
        raise InvalidParameterError("job_parameters.num_speakers", "must be at least 1")


class SpeechToTextJobParameters(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """``job_parameters`` of a speech-to-text job; every field is optional.

    ``timestamp_granularity="word"`` or ``"segment"`` adds ``words`` or ``segments`` to every
    output; ``with_timestamps=True`` still gives the older chunk-level ``timestamps``.

    Raises InvalidParameterError for: ``num_speakers < 1``; more than 50 ``keyterms`` or one
    longer than 64 characters; ``keyterms`` without ``model="saaras:v4"``; ``mode`` with a
    legacy model; ``timestamp_granularity="word"`` without ``model="saaras:v4"`` or with
    ``mode="translate"``; ``"segment"`` without ``saaras:v3`` or ``saaras:v4`` (an unset
    model is the API's default, ``saaras:v3``).
    """

    language_code: str | None = None
    model: str | None = None
    mode: str | None = None
    with_timestamps: bool | None = None
    with_diarization: bool | None = None
    num_speakers: int | None = None
    input_audio_codec: str | None = None
    keyterms: list[str] | None = None
    timestamp_granularity: str | None = None

    def __post_init__(self) -> None:
        _check_speakers(self.num_speakers)
        self._check_granularity()
        if self.keyterms is not None:
            field = "job_parameters.keyterms"
            if not isinstance(self.keyterms, list) or not all(
                isinstance(t, str) for t in self.keyterms
            ):
                raise InvalidParameterError(field, "must be a list of strings")
            if len(self.keyterms) > _MAX_KEYTERMS:
                raise InvalidParameterError(field, f"at most {_MAX_KEYTERMS} terms are allowed")
            for term in self.keyterms:
                if not term or len(term) > _MAX_KEYTERM_CHARS:
                    raise InvalidParameterError(
                        field, f"each term must be 1 to {_MAX_KEYTERM_CHARS} characters: {term!r}"
                    )
            if self.keyterms and self.model != SpeechToTextModel.SAARAS_V4:
                raise InvalidParameterError(field, "keyterms need model='saaras:v4'")
        if self.mode is not None and self.model not in (
            None,
            SpeechToTextModel.SAARAS_V3,
            SpeechToTextModel.SAARAS_V4,
        ):
            raise InvalidParameterError("job_parameters.mode", "mode needs saaras:v3 or saaras:v4")

    def _check_granularity(self) -> None:
        """The documented rules of ``timestamp_granularity``; unknown values pass through."""
        value = self.timestamp_granularity
        if value is None:
            return
        field = "job_parameters.timestamp_granularity"
        if not isinstance(value, str):
            raise InvalidParameterError(field, "must be 'word' or 'segment'")
        granularity = TimestampGranularity(value)
        model = _canonical(SpeechToTextModel, self.model, SpeechToTextModel.SAARAS_V3)
        if granularity is TimestampGranularity.WORD:
            if model != SpeechToTextModel.SAARAS_V4:
                raise InvalidParameterError(field, "'word' needs model='saaras:v4'")
            mode = _canonical(Mode, self.mode, Mode.TRANSCRIBE)
            if mode not in _WORD_MODES:
                raise InvalidParameterError(
                    field,
                    f"'word' works in modes {', '.join(sorted(_WORD_MODES))}, not {mode!r}",
                )
        elif granularity is TimestampGranularity.SEGMENT and model not in _SEGMENT_MODELS:
            raise InvalidParameterError(field, "'segment' needs saaras:v3 or saaras:v4")


def _canonical(enum: type[_TolerantEnum], value: object, default: _TolerantEnum) -> str:
    """``value`` spelled as the API documents it (any letter case accepted), or ``default``."""
    member = enum(value) if isinstance(value, str) and value else default
    return str(member.value)


class SpeechToTextTranslateJobParameters(
    msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True
):
    """``job_parameters`` of a speech-to-text-translate job; every field is optional.

    Raises InvalidParameterError for ``num_speakers < 1``.
    """

    prompt: str | None = None
    model: str | None = None
    with_diarization: bool | None = None
    num_speakers: int | None = None
    input_audio_codec: str | None = None

    def __post_init__(self) -> None:
        _check_speakers(self.num_speakers)


class BulkJobCallback(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """Webhook called when the job ends; ``auth_token`` arrives as a request header.

    The token never appears in ``repr()``.
    """

    url: str
    auth_token: str | None = None

    def __repr__(self) -> str:
        token = "" if self.auth_token is None else ", auth_token='***'"
        return f"BulkJobCallback(url={redact_url(self.url)!r}{token})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        token = [] if self.auth_token is None else [("auth_token", "***")]
        return [("url", redact_url(self.url)), *token]


class JobCallback(msgspec.Struct, frozen=True):
    """The payload the API POSTs to ``callback.url`` when a job ends.

    ``job_state`` matches in any letter case (the cookbook's example sends ``completed``);
    unknown fields are ignored and the counts may be missing. Treat it as a prompt, not as
    the truth: confirm with ``get_status`` before acting (``wait_until_complete`` does).
    """

    job_id: str
    job_state: JobState
    created_at: str | None = None
    completed_at: str | None = None
    total_files: int | None = None
    processed_files: int | None = None
    failed_files: int | None = None


class FilesRequest(msgspec.Struct):
    """Body of upload-files and download-files: a job id and file names.

    Upload takes 1-20 unique input names (checked by the resource); download takes the
    output names of a finished job.
    """

    job_id: str
    files: list[str]


class InitiateRequest(msgspec.Struct, omit_defaults=True):
    """Body of the initiate endpoint (internal)."""

    job_parameters: SpeechToTextJobParameters | SpeechToTextTranslateJobParameters
    callback: BulkJobCallback | None = None


# --------------------------------------------------------------------------- responses


class FileSignedURLDetails(msgspec.Struct, frozen=True):
    """A presigned URL and its metadata. ``repr()`` hides the URL's signature."""

    file_url: str
    file_metadata: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"FileSignedURLDetails(file_url={redact_url(self.file_url)!r})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        return [("file_url", redact_url(self.file_url))]


def _normalise_urls(value: dict[str, Any]) -> dict[str, Any] | None:
    """Turn bare-string map values (the docs have shown both shapes) into details."""
    if not any(isinstance(v, str) for v in value.values()):
        return None
    return {k: FileSignedURLDetails(v) if isinstance(v, str) else v for k, v in value.items()}


class FilesUploadResponse(msgspec.Struct, frozen=True):
    """Answer of upload-files: one presigned PUT URL per input name."""

    job_id: str
    job_state: JobState
    if TYPE_CHECKING:
        upload_urls: dict[str, FileSignedURLDetails]
    else:  # the wire may carry a bare URL string per name; normalised after decoding
        upload_urls: dict[str, FileSignedURLDetails | str]
    storage_container_type: StorageContainerType

    def __post_init__(self) -> None:
        fixed = _normalise_urls(self.upload_urls)
        if fixed is not None:
            force_setattr(self, "upload_urls", fixed)


class FilesDownloadResponse(msgspec.Struct, frozen=True):
    """Answer of download-files: one presigned GET URL per output name."""

    job_id: str
    job_state: JobState
    if TYPE_CHECKING:
        download_urls: dict[str, FileSignedURLDetails]
    else:  # the wire may carry a bare URL string per name; normalised after decoding
        download_urls: dict[str, FileSignedURLDetails | str]
    storage_container_type: StorageContainerType

    def __post_init__(self) -> None:
        fixed = _normalise_urls(self.download_urls)
        if fixed is not None:
            force_setattr(self, "download_urls", fixed)


class BulkJobInitResponse(msgspec.Struct, frozen=True):
    """Answer of initiate: the new job's id and its parameters as the server understood them."""

    job_id: str
    storage_container_type: StorageContainerType
    job_state: JobState
    job_parameters: dict[str, Any] = {}


class TaskFileDetails(msgspec.Struct, frozen=True):
    """One input or output file of a task."""

    file_name: str
    file_id: str


def _nulls_to_defaults(obj: msgspec.Struct, fields: tuple[str, ...]) -> None:
    """Replace a ``null`` the wire sent for any of ``fields`` with the field's default."""
    for name in fields:
        if getattr(obj, name) is None:
            force_setattr(obj, name, _NULL_DEFAULTS[name]())


_NULL_DEFAULTS: dict[str, Any] = {
    "inputs": list,
    "outputs": list,
    "job_details": list,
    "total_files": int,
    "successful_files_count": int,
    "failed_files_count": int,
    "words": list,
    "segments": list,
}


class TaskDetail(msgspec.Struct, frozen=True):
    """What happened to one input file; ``outputs`` names its result file (``0.json``).

    ``inputs`` and ``outputs`` sent as ``null`` (the official SDK allows it) decode as ``[]``.
    """

    if TYPE_CHECKING:
        inputs: list[TaskFileDetails] = []
        outputs: list[TaskFileDetails] = []
    else:  # the wire may carry null; normalised after decoding
        inputs: list[TaskFileDetails] | None = []
        outputs: list[TaskFileDetails] | None = []
    state: TaskState | None = None
    error_message: str | None = None
    exception_name: str | None = None

    def __post_init__(self) -> None:
        if self.inputs is None or self.outputs is None:
            _nulls_to_defaults(self, ("inputs", "outputs"))


_STATUS_NULLABLE = ("total_files", "successful_files_count", "failed_files_count", "job_details")


class JobStatusResponse(msgspec.Struct, frozen=True):
    """Status of a job (answer of start and status). It never contains transcripts.

    The three counts and ``job_details`` sent as ``null`` (the docs allow it, and the live
    API does so before a job starts) decode as 0 and ``[]``.
    """

    job_id: str
    job_state: JobState
    storage_container_type: StorageContainerType
    created_at: str | None = None
    updated_at: str | None = None
    if TYPE_CHECKING:
        total_files: int = 0
        successful_files_count: int = 0
        failed_files_count: int = 0
    else:  # the wire may carry null; normalised after decoding
        total_files: int | None = 0
        successful_files_count: int | None = 0
        failed_files_count: int | None = 0
    error_message: str | None = None
    if TYPE_CHECKING:
        job_details: list[TaskDetail] = []
    else:
        job_details: list[TaskDetail] | None = []

    def __post_init__(self) -> None:
        if (
            self.total_files is None
            or self.successful_files_count is None
            or self.failed_files_count is None
            or self.job_details is None
        ):
            _nulls_to_defaults(self, _STATUS_NULLABLE)


class ErrorDetails(msgspec.Struct, frozen=True):
    """The ``error`` object of an error answer."""

    message: str = ""
    code: ErrorCode | None = None
    request_id: str | None = None


class ErrorMessage(msgspec.Struct, frozen=True):
    """An error answer: ``{"error": {"message", "code", "request_id"}}``."""

    error: ErrorDetails


# --------------------------------------------------------------------------- outputs


class Timestamps(msgspec.Struct, frozen=True):
    """Chunk-level timestamps: three parallel arrays (``words`` holds chunks, not words)."""

    words: list[str] = []
    start_time_seconds: list[float] = []
    end_time_seconds: list[float] = []


class DiarizedEntry(msgspec.Struct, frozen=True):
    """One speaker turn; ``speaker_id`` is a string (``"0"``, or ``SPEAKER_00`` on old jobs)."""

    transcript: str
    start_time_seconds: float
    end_time_seconds: float
    speaker_id: str


class DiarizedTranscript(msgspec.Struct, frozen=True):
    """Speaker turns of a diarized job."""

    entries: list[DiarizedEntry] = []


class TimedText(msgspec.Struct, frozen=True):
    """One word or segment of a transcript, timed in seconds from the start of the audio."""

    text: str
    start: float
    end: float


class TranscriptionResult(msgspec.Struct, frozen=True):
    """The content of one output file (``0.json``) of a job.

    ``words`` (one per word) and ``segments`` (one per chunk of audio) are filled when the
    job asked for ``timestamp_granularity="word"`` or ``"segment"``; otherwise, or when the
    output has ``null``, they are ``[]``. ``timestamps`` is the older chunk-level form of
    ``with_timestamps=True``.
    """

    transcript: str
    request_id: str | None = None
    language_code: str | None = None
    language_probability: float | None = None
    timestamps: Timestamps | None = None
    diarized_transcript: DiarizedTranscript | None = None
    if TYPE_CHECKING:
        words: list[TimedText] = []
        segments: list[TimedText] = []
    else:  # the wire may carry null; normalised after decoding
        words: list[TimedText] | None = []
        segments: list[TimedText] | None = []

    def __post_init__(self) -> None:
        if self.words is None or self.segments is None:
            _nulls_to_defaults(self, ("words", "segments"))
