"""Request-body validation for the batch API, with the error codes of the docs' table.

Schema failures (body not JSON, not an object, a missing required field, a wrong type, a
content type other than JSON, a ``ptu_id`` that is not an integer) answer 422
``invalid_request_error`` naming the field. A value outside what a field allows answers 400
``invalid_request_error``. A valid schema that breaks a business rule (one parameter ruling
out another: ``keyterms`` or word timestamps without ``saaras:v4``, a "saaras:v3 only"
language with a legacy model) answers 422 ``unprocessable_entity_error``. Where
the docs are silent the emulator chooses:

* ``null`` is accepted for every optional field (the official SDK sends explicit nulls).
* Unknown keys in ``job_parameters`` are accepted and ignored (the published models allow
  extra keys). STT-only fields sent to the translate flow (``language_code``, ``mode``,
  ``with_timestamps``, ``keyterms``) are therefore ignored there, not rejected.
* ``model`` absent means the documented default (``saaras:v3`` for STT, ``saaras:v2.5`` for
  translate). ``keyterms`` (non-empty) requires ``saaras:v4``; languages listed as "saaras:v3
  only" are rejected for the legacy ``saarika:v2.5``/``saaras:v2.5`` models.
* ``timestamp_granularity``: ``word`` needs ``saaras:v4`` and mode ``transcribe``,
  ``codemix``, ``verbatim`` or ``translit`` (unset: ``transcribe``); ``segment`` needs
  ``saaras:v3`` or ``saaras:v4``.
* ``num_speakers`` must be 1-20 (the widest documented range).
* A JSON body with a content type other than JSON is 422; a missing content type is accepted.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

from ._http import ApiError

_INTEGER: Final = re.compile(r"[+-]?[0-9]+")

MAX_FILES: Final = 20
MAX_KEYTERMS: Final = 50
MAX_KEYTERM_CHARS: Final = 64
MAX_SPEAKERS: Final = 20

STT_MODELS: Final = ("saaras:v3", "saaras:v4", "saarika:v2.5", "saaras:v2.5")
LEGACY_MODELS: Final = frozenset({"saarika:v2.5", "saaras:v2.5"})
TRANSLATE_MODELS: Final = ("saaras:v2.5",)
MODES: Final = ("transcribe", "translate", "verbatim", "translit", "codemix")
GRANULARITIES: Final = ("word", "segment")
WORD_MODES: Final = frozenset({"transcribe", "codemix", "verbatim", "translit"})
BASE_LANGUAGES: Final = (
    "unknown",
    "hi-IN",
    "bn-IN",
    "kn-IN",
    "ml-IN",
    "mr-IN",
    "od-IN",
    "pa-IN",
    "ta-IN",
    "te-IN",
    "en-IN",
    "gu-IN",
)
V3_LANGUAGES: Final = (
    "as-IN",
    "ur-IN",
    "ne-IN",
    "kok-IN",
    "ks-IN",
    "sd-IN",
    "sa-IN",
    "sat-IN",
    "mni-IN",
    "brx-IN",
    "mai-IN",
    "doi-IN",
)
CODECS: Final = (
    "wav",
    "x-wav",
    "wave",
    "mp3",
    "mpeg",
    "mpeg3",
    "x-mp3",
    "x-mpeg-3",
    "aac",
    "x-aac",
    "aiff",
    "x-aiff",
    "ogg",
    "opus",
    "flac",
    "x-flac",
    "mp4",
    "x-m4a",
    "amr",
    "x-ms-wma",
    "webm",
    "pcm_s16le",
    "pcm_l16",
    "pcm_raw",
)


class Callback(msgspec.Struct):
    """``BulkJobCallback``: where to POST when the job ends."""

    url: str
    auth_token: str | None = None


class _InitiateBody(msgspec.Struct):
    job_parameters: dict[str, Any]
    callback: Callback | None = None


class FilesBody(msgspec.Struct):
    """``FilesRequest`` for upload-files and download-files."""

    job_id: str
    files: list[str]


class _SttParams(msgspec.Struct):
    language_code: str | None = None
    model: str | None = None
    mode: str | None = None
    with_timestamps: bool | None = None
    with_diarization: bool | None = None
    num_speakers: int | None = None
    input_audio_codec: str | None = None
    keyterms: list[str] | None = None
    timestamp_granularity: str | None = None


class _TranslateParams(msgspec.Struct):
    prompt: str | None = None
    model: str | None = None
    with_diarization: bool | None = None
    num_speakers: int | None = None
    input_audio_codec: str | None = None


_initiate_decoder = msgspec.json.Decoder(_InitiateBody)
_files_decoder = msgspec.json.Decoder(FilesBody)


def _unprocessable(exc: msgspec.DecodeError, prefix: str = "$") -> ApiError:
    if isinstance(exc, msgspec.ValidationError):
        text = str(exc).replace("`$", f"`{prefix}")
        return _schema(f"Invalid request body: {text}")
    return _schema(f"Request body is not valid JSON: {exc}")


def _schema(message: str) -> ApiError:
    """A schema failure: 422 ``invalid_request_error`` (the docs' table)."""
    return ApiError(422, message, "invalid_request_error")


def _rule(message: str) -> ApiError:
    """A valid schema breaking a business rule: 422 ``unprocessable_entity_error``."""
    return ApiError(422, message, "unprocessable_entity_error")


def check_content_type(content_type: str) -> None:
    """Reject a body declared as something other than JSON (422)."""
    if content_type and content_type != "application/json" and not content_type.endswith("+json"):
        raise _schema(f"Content-Type must be application/json, got {content_type!r}")


def _bad(field: str, value: object, allowed: tuple[str, ...]) -> ApiError:
    return ApiError(
        400, f"Invalid value {value!r} for job_parameters.{field}; allowed: {', '.join(allowed)}"
    )


def _check_common(model: str, allowed_models: tuple[str, ...], p: Any) -> None:
    if model not in allowed_models:
        raise _bad("model", model, allowed_models)
    if p.num_speakers is not None and not 1 <= p.num_speakers <= MAX_SPEAKERS:
        raise ApiError(400, f"job_parameters.num_speakers must be between 1 and {MAX_SPEAKERS}")
    if p.input_audio_codec is not None and p.input_audio_codec not in CODECS:
        raise _bad("input_audio_codec", p.input_audio_codec, CODECS)


def _check_stt(params: dict[str, Any]) -> None:
    try:
        p = msgspec.convert(params, _SttParams)
    except msgspec.ValidationError as exc:
        raise _unprocessable(exc, "$.job_parameters") from None
    model = p.model if p.model is not None else "saaras:v3"
    _check_common(model, STT_MODELS, p)
    if p.mode is not None and p.mode not in MODES:
        raise _bad("mode", p.mode, MODES)
    if p.language_code is not None:
        if p.language_code in V3_LANGUAGES:
            if model in LEGACY_MODELS:
                raise _rule(
                    f"job_parameters.language_code {p.language_code!r} requires "
                    "model saaras:v3 or saaras:v4"
                )
        elif p.language_code not in BASE_LANGUAGES:
            raise _bad("language_code", p.language_code, BASE_LANGUAGES + V3_LANGUAGES)
    if p.keyterms:
        if len(p.keyterms) > MAX_KEYTERMS:
            raise ApiError(400, f"job_parameters.keyterms allows at most {MAX_KEYTERMS} items")
        for term in p.keyterms:
            if not term or len(term) > MAX_KEYTERM_CHARS:
                raise ApiError(
                    400,
                    "each item of job_parameters.keyterms must have 1 to "
                    f"{MAX_KEYTERM_CHARS} characters",
                )
        if model != "saaras:v4":
            raise _rule("job_parameters.keyterms is only supported by model saaras:v4")
    _check_granularity(p.timestamp_granularity, model, p.mode or "transcribe")


def _check_granularity(granularity: str | None, model: str, mode: str) -> None:
    if granularity is None:
        return
    if granularity not in GRANULARITIES:
        raise _bad("timestamp_granularity", granularity, GRANULARITIES)
    if granularity == "word":
        if model != "saaras:v4":
            raise _rule("timestamp_granularity 'word' is only supported by model saaras:v4")
        if mode not in WORD_MODES:
            raise _rule(
                f"timestamp_granularity 'word' is not supported in mode {mode!r}; use "
                f"{', '.join(sorted(WORD_MODES))}"
            )
    elif model not in ("saaras:v3", "saaras:v4"):
        raise _rule("timestamp_granularity 'segment' requires model saaras:v3 or saaras:v4")


def _check_translate(params: dict[str, Any]) -> None:
    try:
        p = msgspec.convert(params, _TranslateParams)
    except msgspec.ValidationError as exc:
        raise _unprocessable(exc, "$.job_parameters") from None
    model = p.model if p.model is not None else "saaras:v2.5"
    _check_common(model, TRANSLATE_MODELS, p)


def parse_initiate(flow: str, body: bytes) -> tuple[dict[str, Any], Callback | None]:
    """Validate an initiate body; return the job parameters as sent and the callback."""
    try:
        req = _initiate_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise _unprocessable(exc) from None
    if flow == "stt":
        _check_stt(req.job_parameters)
    else:
        _check_translate(req.job_parameters)
    if req.callback is not None and not req.callback.url.startswith(("http://", "https://")):
        raise ApiError(400, "callback.url must be an http(s) URL")
    return req.job_parameters, req.callback


def parse_files(body: bytes) -> FilesBody:
    """Validate the shape of a ``FilesRequest`` body (422 on failure)."""
    try:
        return _files_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise _unprocessable(exc) from None


def check_input_names(files: list[str]) -> None:
    """Semantic checks of upload-files names (400): 1-20 unique plain file names."""
    if not files:
        raise ApiError(400, "files must contain at least one file name")
    if len(files) > MAX_FILES:
        raise ApiError(400, f"A job accepts at most {MAX_FILES} files; got {len(files)}")
    if len(set(files)) != len(files):
        dupes = sorted({f for f in files if files.count(f) > 1})
        raise ApiError(400, f"Duplicate file names: {', '.join(dupes)}")
    for name in files:
        if not is_plain_file_name(name):
            raise ApiError(400, f"Invalid file name {name!r}: expected a plain file name")


def is_plain_file_name(name: str) -> bool:
    """One path component: not blank, ``.`` or ``..``; no separator or control character.

    The client's rule (``sarvam_async._filenames``), copied: the emulator imports nothing
    from the client. ``tests/test_filenames.py`` keeps the two copies in step.
    """
    return (
        bool(name.strip())
        and name not in (".", "..")
        and not any(c in "/\\" or ord(c) < 32 for c in name)
    )


def parse_ptu_id(value: str | None) -> int | None:
    """``ptu_id`` query value as an integer (422 when it is not one)."""
    if value is None:
        return None
    if not _INTEGER.fullmatch(value.strip()):
        raise _schema(f"Invalid query parameter ptu_id: {value!r} is not a valid integer")
    return int(value)
