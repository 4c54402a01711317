"""Deterministic synthetic transcripts, shaped like the batch API's output files.

The same input bytes (by sha256) and job parameters always give the same output, apart from
the date prefix of ``request_id`` (the job's creation date). Transcripts are short sentences
picked from fixed lists: English for ``en-IN``, for ``mode="translate"`` and for the translate
flow; romanised, code-mixed or verbatim Hindi for those modes; Hindi otherwise. When the job's
``language_code`` is absent or ``unknown`` the "detected" language is ``hi-IN`` with a
``language_probability``; otherwise the code is echoed and the probability is null. With
``timestamp_granularity`` the output gains ``words`` (each chunk's time shared among its words
by length) or ``segments`` (one per chunk), as ``{text, start, end}`` in seconds.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec

_ENGLISH = (
    "Good morning, thank you for calling.",
    "The meeting has been moved to Thursday afternoon.",
    "Please send the report before the end of the day.",
    "We have received your payment for this month.",
    "The train to Chennai is running thirty minutes late.",
    "Could you repeat the account number once more?",
    "The new branch opens next Monday.",
    "I will call you back in ten minutes.",
    "Your order has been shipped and will arrive tomorrow.",
    "Let us review the budget in the next session.",
    "The weather in Bengaluru is pleasant today.",
    "Thank you, have a nice day.",
)
_HINDI = (
    "नमस्ते, कॉल करने के लिए धन्यवाद।",
    "मीटिंग गुरुवार दोपहर तक टाल दी गई है।",
    "कृपया रिपोर्ट आज शाम तक भेज दीजिए।",
    "हमें इस महीने का भुगतान मिल गया है।",
    "चेन्नई जाने वाली ट्रेन तीस मिनट देरी से चल रही है।",
    "क्या आप खाता संख्या एक बार फिर बता सकते हैं?",
    "नई शाखा अगले सोमवार को खुलेगी।",
    "मैं दस मिनट में आपको वापस फोन करूँगा।",
    "आपका ऑर्डर भेज दिया गया है और कल पहुँच जाएगा।",
    "अगले सत्र में बजट की समीक्षा करते हैं।",
    "आज बेंगलुरु का मौसम सुहावना है।",
    "धन्यवाद, आपका दिन शुभ हो।",
)
_TRANSLIT = (
    "Namaste, call karne ke liye dhanyavaad.",
    "Meeting guruvaar dopahar tak taal di gayi hai.",
    "Kripya report aaj shaam tak bhej dijiye.",
    "Humein is mahine ka bhugtaan mil gaya hai.",
    "Chennai jaane wali train tees minute deri se chal rahi hai.",
    "Kya aap khaata sankhya ek baar phir bata sakte hain?",
    "Nayi shaakha agle somvaar ko khulegi.",
    "Main das minute mein aapko wapas phone karunga.",
)
_CODEMIX = (
    "नमस्ते, call करने के लिए thank you।",
    "Meeting अब Thursday afternoon को होगी।",
    "Please report आज शाम तक भेज दीजिए।",
    "आपका order ship हो गया है, कल तक deliver होगा।",
    "Budget का review next session में करते हैं।",
    "मैं ten minutes में आपको call back करूँगा।",
    "नई branch next Monday को open होगी।",
    "Thank you, आपका दिन अच्छा हो।",
)
_VERBATIM = (
    "हाँ जी, उम्म, नमस्ते, कॉल करने के लिए धन्यवाद।",
    "वो, मीटिंग गुरुवार को, मतलब दोपहर को होगी।",
    "अं, रिपोर्ट आज शाम तक, हाँ, भेज दीजिए।",
    "खाता संख्या है चार दो सात नौ एक।",
    "मैं, उम्म, दस मिनट में फोन करता हूँ।",
    "अच्छा अच्छा, ठीक है, धन्यवाद।",
)

DETECTED_LANGUAGE = "hi-IN"


class _Draw:
    """A reproducible stream of small integers derived from a seed (sha256 in counter mode)."""

    __slots__ = ("_block", "_counter", "_pos", "_seed")

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._counter = 0
        self._block = b""
        self._pos = 0

    def below(self, n: int) -> int:
        if self._pos + 4 > len(self._block):
            counter = self._counter.to_bytes(4, "big")
            self._block = hashlib.sha256(self._seed + counter).digest()
            self._counter += 1
            self._pos = 0
        value = int.from_bytes(self._block[self._pos : self._pos + 4], "big")
        self._pos += 4
        return value % n


def _sentences(flow: str, params: Mapping[str, Any], language: str) -> tuple[str, ...]:
    if flow == "translate":
        return _ENGLISH
    mode = params.get("mode")
    if mode == "translate" or (mode in (None, "transcribe") and language == "en-IN"):
        return _ENGLISH
    if mode == "translit":
        return _TRANSLIT
    if mode == "codemix":
        return _CODEMIX
    if mode == "verbatim":
        return _VERBATIM
    return _HINDI


def _timed(
    chunks: list[str], starts: list[float], ends: list[float], granularity: object
) -> tuple[str, list[dict[str, Any]]] | None:
    """The ``words`` or ``segments`` key and its list, for the requested granularity."""
    if granularity == "segment":
        return "segments", [
            {"text": c, "start": s, "end": e} for c, s, e in zip(chunks, starts, ends, strict=True)
        ]
    if granularity != "word":
        return None
    words: list[dict[str, Any]] = []
    for chunk, start, end in zip(chunks, starts, ends, strict=True):
        parts = chunk.split()
        weights = [len(p) + 1 for p in parts]
        per = (end - start) / sum(weights)
        t = start
        for part, weight in zip(parts, weights, strict=True):
            words.append({"text": part, "start": round(t, 2), "end": round(t + weight * per, 2)})
            t += weight * per
    return "words", words


def render_output(digest: str, flow: str, params: Mapping[str, Any], date: str) -> bytes:
    """The output JSON (encoded) for one input file with sha256 ``digest``.

    ``flow`` is ``stt`` or ``translate``; ``params`` the job parameters as sent; ``date`` the
    ``YYYYMMDD`` prefix of ``request_id``. Translate outputs have no ``timestamps`` key.
    """
    canonical = msgspec.json.encode(dict(params), order="sorted")
    seed = hashlib.sha256(f"{digest}\n{flow}\n".encode() + canonical).digest()
    draw = _Draw(seed)

    requested = params.get("language_code") if flow == "stt" else None
    if isinstance(requested, str) and requested and requested != "unknown":
        language, probability = requested, None
    else:
        language, probability = DETECTED_LANGUAGE, round(0.8 + draw.below(2000) / 10000, 4)

    diarize = params.get("with_diarization") is True
    speakers = params.get("num_speakers")
    n_speakers = speakers if isinstance(speakers, int) and speakers > 0 else 2
    count = 2 + draw.below(3)
    if diarize:
        count = max(count, min(n_speakers, 12))

    pool = _sentences(flow, params, language)
    chunks: list[str] = []
    starts: list[float] = []
    ends: list[float] = []
    t = draw.below(30) / 100
    for _ in range(count):
        chunks.append(pool[draw.below(len(pool))])
        end = t + 1.2 + draw.below(360) / 100
        starts.append(round(t, 2))
        ends.append(round(end, 2))
        t = end + 0.1 + draw.below(50) / 100

    out: dict[str, Any] = {
        "request_id": f"{date}_{uuid.UUID(bytes=seed[:16], version=4)}",
        "transcript": " ".join(chunks),
        "language_code": language,
        "language_probability": probability,
    }
    if flow == "stt":
        out["timestamps"] = (
            {"words": chunks, "start_time_seconds": starts, "end_time_seconds": ends}
            if params.get("with_timestamps") is True
            else None
        )
        timed = _timed(chunks, starts, ends, params.get("timestamp_granularity"))
        if timed is not None:
            out[timed[0]] = timed[1]
    out["diarized_transcript"] = (
        {
            "entries": [
                {
                    "transcript": chunk,
                    "start_time_seconds": start,
                    "end_time_seconds": end,
                    "speaker_id": str(i % n_speakers),
                }
                for i, (chunk, start, end) in enumerate(zip(chunks, starts, ends, strict=True))
            ]
        }
        if diarize
        else None
    )
    return msgspec.json.encode(out)
