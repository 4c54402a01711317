"""Models: tolerant enums, redacted reprs, URL-map shapes, local validation."""

from __future__ import annotations

import msgspec

from sarvam_async import (
    BulkJobCallback,
    FileSignedURLDetails,
    FilesUploadResponse,
    JobState,
    StorageContainerType,
    TaskState,
)


def test_unknown_enum_value_keeps_raw_string() -> None:
    state = JobState("Archived")
    assert state == "Archived" and state.value == "Archived" and str(state) == "Archived"
    assert not state.is_known and not state.is_terminal
    assert JobState("Archived") is JobState("Archived")


def test_partially_completed_and_case_insensitive_terminal() -> None:
    assert JobState("PartiallyCompleted") is JobState.PARTIALLY_COMPLETED
    assert JobState("PartiallyCompleted") == "PartiallyCompleted"
    for raw in ["Completed", "completed", "PARTIALLYCOMPLETED", "Failed", "failed"]:
        assert JobState(raw).is_terminal, raw
    for raw in ["Accepted", "Pending", "Running", "running"]:
        assert not JobState(raw).is_terminal, raw
    assert JobState.PARTIALLY_COMPLETED.has_outputs and not JobState.FAILED.has_outputs
    assert TaskState("success").is_success and not TaskState.API_ERROR.is_success
    assert StorageContainerType.AZURE_V1.is_azure and not StorageContainerType.GOOGLE.is_azure


def test_presigned_urls_are_redacted_in_repr() -> None:
    d = FileSignedURLDetails("https://acct.blob.example/c/a.wav?sv=1&sig=SECRETSIG")
    assert "SECRETSIG" not in repr(d)
    assert "a.wav" in repr(d)
    cb = BulkJobCallback(url="https://h/x", auth_token="TOKEN123")
    assert "TOKEN123" not in repr(cb)


def test_url_maps_accept_string_or_object_values() -> None:
    raw = (
        b'{"job_id":"j","job_state":"Accepted","storage_container_type":"Azure",'
        b'"upload_urls":{"a.wav":"https://h/a?sig=1","b.wav":{"file_url":"https://h/b?sig=2",'
        b'"file_metadata":{"contentType":"audio/wav"}}}}'
    )
    res = msgspec.json.decode(raw, type=FilesUploadResponse)
    assert res.upload_urls["a.wav"] == FileSignedURLDetails("https://h/a?sig=1")
    assert res.upload_urls["b.wav"].file_metadata == {"contentType": "audio/wav"}


def test_wrong_types_are_invalid_parameter_errors() -> None:
    import pytest

    from sarvam_async import SpeechToTextJobParameters
    from sarvam_async.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError):
        SpeechToTextJobParameters(num_speakers="2")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError):
        SpeechToTextJobParameters(keyterms="abc", model="saaras:v4")  # type: ignore[arg-type]


def test_rich_repr_is_redacted_too() -> None:
    d = FileSignedURLDetails("https://h/a.wav?sig=SECRETSIG")
    assert "SECRETSIG" not in str(list(d.__rich_repr__()))
